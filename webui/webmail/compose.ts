// Writing a message: from a box the person may send as (their own, an organisational box
// they are a member of: the submission server decides, core/policy), recipients picked in
// the annuaire as they type (GET /api/v1/annuaire, the ARIA 1.2 combobox pattern) or typed
// whole. Whether an address may receive MSSanté mail is the platform's decision: a refused
// recipient comes back with the server's reason, shown as is.
import { ApiError, messageOf, type ApiClient } from '../common/api.js';
import { announce, fill, h } from '../common/dom.js';
import type { Bal } from './types.js';

interface Recipient {
  name: string;
  mail: string;
  profession: string | null;
  organisation: string | null;
  service: string | null;
}
interface Sent {
  accepted: string[];
  rejected: Array<{ address: string; reply: string }>;
  sentFolder: string | null;
}

const ADDRESS = /^[^\s@<>,;:"()[\]\\]+@[^\s@<>,;:"()[\]\\]+$/;
const describe = (r: Recipient) => [r.profession, r.service, r.organisation].filter(Boolean).join(' — ');

/** A recipients field (À, Cc): the chosen addresses as a list with a remove button each, and the search box. */
function recipientsField(api: ApiClient, id: string, label: string): { el: HTMLElement; addresses(): string[]; pending(): string } {
  const chosen: string[] = [];
  const list = h('ul', { class: 'choisis', 'aria-label': `Destinataires (${label})` });
  const listbox = h('ul', { id: `${id}-propositions`, role: 'listbox', class: 'propositions', 'aria-label': `Propositions de l'annuaire (${label})`, hidden: true });
  const input = h('input', {
    id,
    type: 'text',
    role: 'combobox',
    'aria-autocomplete': 'list',
    'aria-expanded': 'false',
    'aria-controls': listbox.id,
    'aria-describedby': `${id}-aide`,
    autocomplete: 'off',
    spellcheck: 'false',
    maxlength: 254,
  });
  const hint = h('p', { id: `${id}-aide`, class: 'aide' }, "Tapez un nom, une profession, une ville ou une adresse (2 caractères au moins) ; flèches haut et bas pour choisir, Entrée pour ajouter.");
  let options: Recipient[] = [];
  let active = -1;
  let asked = 0;
  let timer: number | undefined;

  const redraw = () => {
    fill(
      list,
      chosen.map((a, i) => {
        const remove = h('button', { type: 'button', class: 'retirer', 'aria-label': `Retirer ${a}` }, '×');
        remove.addEventListener('click', () => {
          chosen.splice(i, 1);
          redraw();
          announce(`${a} retiré`);
          input.focus();
        });
        return h('li', {}, h('span', {}, a), remove);
      }),
    );
  };
  const close = () => {
    listbox.hidden = true;
    input.setAttribute('aria-expanded', 'false');
    input.removeAttribute('aria-activedescendant');
    active = -1;
  };
  const add = (address: string) => {
    const a = address.trim();
    if (!a) return;
    if (!chosen.some((c) => c.toLowerCase() === a.toLowerCase())) chosen.push(a);
    input.value = '';
    close();
    redraw();
    announce(`${a} ajouté`);
  };
  const highlight = (i: number) => {
    active = i;
    listbox.querySelectorAll('[role=option]').forEach((o, j) => o.setAttribute('aria-selected', String(j === i)));
    if (i >= 0) input.setAttribute('aria-activedescendant', `${id}-option-${i}`);
    else input.removeAttribute('aria-activedescendant');
  };
  const show = (found: Recipient[], truncated: boolean) => {
    options = found;
    fill(
      listbox,
      found.map((r, i) => {
        const o = h('li', { id: `${id}-option-${i}`, role: 'option', 'aria-selected': 'false' }, h('span', { class: 'nom' }, `${r.name} <${r.mail}>`), describe(r) ? h('span', { class: 'detail' }, describe(r)) : null);
        // mousedown, not click: the input keeps the focus.
        o.addEventListener('mousedown', (e) => {
          e.preventDefault();
          add(r.mail);
        });
        return o;
      }),
    );
    listbox.hidden = found.length === 0;
    input.setAttribute('aria-expanded', String(found.length > 0));
    highlight(-1);
    announce(found.length === 0 ? "Aucune proposition dans l'annuaire" : `${found.length} proposition${found.length > 1 ? 's' : ''}${truncated ? ' (liste tronquée, précisez)' : ''}`);
  };
  const search = async (q: string) => {
    const turn = ++asked;
    try {
      const r = await api.get<{ results: Recipient[]; truncated: boolean }>(`/api/v1/annuaire?q=${encodeURIComponent(q)}`);
      if (turn === asked && input.value.trim() === q) show(r.results.filter((x) => x.mail), r.truncated);
    } catch (e) {
      if (turn === asked) announce(messageOf(e));
    }
  };
  input.addEventListener('input', () => {
    window.clearTimeout(timer);
    const q = input.value.trim();
    if (q.length < 2) return close();
    // A short pause after the last key: one search per word typed, not per letter.
    timer = window.setTimeout(() => void search(q), 250);
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown' && options.length) {
      e.preventDefault();
      if (listbox.hidden) return show(options, false);
      highlight(Math.min(active + 1, options.length - 1));
    } else if (e.key === 'ArrowUp' && options.length && !listbox.hidden) {
      e.preventDefault();
      highlight(Math.max(active - 1, 0));
    } else if (e.key === 'Enter') {
      if (active >= 0 && !listbox.hidden) {
        e.preventDefault();
        add(options[active].mail);
      } else if (ADDRESS.test(input.value.trim())) {
        e.preventDefault();
        add(input.value);
      }
    } else if (e.key === 'Escape' && !listbox.hidden) {
      e.preventDefault();
      close();
    }
  });
  input.addEventListener('blur', () => close());
  const el = h('div', { class: 'champ destinataires' }, h('label', { for: id }, label), list, hint, h('div', { class: 'combo' }, input, listbox));
  return { el, addresses: () => [...chosen], pending: () => input.value.trim() };
}

/** The compose page; `done` is told where the person goes next. */
export function composeView(api: ApiClient, main: HTMLElement, bals: Bal[], from: string, done: (notice: string) => void): string {
  const fromSelect = h('select', { id: 'de', name: 'de' }, bals.map((b) => h('option', { value: b.address, selected: b.address === from }, b.description ? `${b.description} <${b.address}>` : b.address)));
  const to = recipientsField(api, 'a', 'À');
  const cc = recipientsField(api, 'cc', 'Cc');
  const subject = h('input', { id: 'objet', name: 'objet', type: 'text', maxlength: 998, required: true });
  const text = h('textarea', { id: 'texte', name: 'texte', rows: 12 });
  const error = h('div', { class: 'erreur', role: 'alert' });
  const submit = h('button', { type: 'submit' }, 'Envoyer');
  const form = h(
    'form',
    { class: 'redaction', 'aria-labelledby': 'titre-redaction', novalidate: true },
    h('div', { class: 'champ' }, h('label', { for: 'de' }, 'De'), fromSelect),
    to.el,
    cc.el,
    h('div', { class: 'champ' }, h('label', { for: 'objet' }, 'Objet'), subject),
    h('div', { class: 'champ' }, h('label', { for: 'texte' }, 'Message'), text),
    error,
    submit,
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    fill(error);
    // An address typed whole but not yet added counts.
    const typed = [to.pending(), cc.pending()];
    const toList = [...to.addresses(), ...(ADDRESS.test(typed[0]) ? [typed[0]] : [])];
    const ccList = [...cc.addresses(), ...(ADDRESS.test(typed[1]) ? [typed[1]] : [])];
    if (!toList.length) return void fill(error, 'Ajoutez au moins un destinataire.');
    if (!subject.value.trim()) {
      fill(error, "Indiquez l'objet du message.");
      return subject.focus();
    }
    submit.disabled = true;
    submit.textContent = 'Envoi…';
    try {
      const r = await api.send<Sent>('POST', `/api/v1/bals/${encodeURIComponent(fromSelect.value)}/send`, { to: toList, cc: ccList, subject: subject.value, text: text.value });
      if (r.rejected.length) {
        fill(error, h('p', {}, `Envoyé à ${r.accepted.join(', ')}. Refusé pour :`), h('ul', {}, r.rejected.map((x) => h('li', {}, `${x.address} — ${x.reply}`))));
        submit.disabled = false;
        submit.textContent = 'Envoyer';
        return;
      }
      done(`Message envoyé à ${r.accepted.join(', ')}.`);
    } catch (e) {
      const refused = e instanceof ApiError && (e.code === 'WEBMAIL_SEND_REFUSED' || e.code === 'WEBMAIL_SEND_FORBIDDEN');
      fill(error, refused ? `Envoi refusé par la plateforme : ${e.detail}` : messageOf(e));
      submit.disabled = false;
      submit.textContent = 'Envoyer';
    }
  });
  fill(main, h('h1', { id: 'titre-redaction', tabindex: -1 }, 'Nouveau message'), form);
  return 'Nouveau message';
}
