// Building the page from DOM nodes, never from HTML strings: text a message or the API
// gives is always text (textContent), so nothing it holds can become markup.
type Child = Node | string | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | ((e: Event) => void)>;

/** An element with attributes (`on…` functions become listeners; false/null leave it out) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Array<Child | Child[]>): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

/** Replaces the children of `el`. */
export function fill(el: Element, ...children: Array<Child | Child[]>): void {
  el.replaceChildren(...(children.flat().filter((c) => c !== null && c !== undefined && c !== false) as Array<Node | string>));
}

/** Says `message` to screen readers (the page's polite live region). */
export function announce(message: string): void {
  const live = document.getElementById('annonce');
  if (live) live.textContent = message;
}

const dateFr = new Intl.DateTimeFormat('fr-FR', { dateStyle: 'short', timeStyle: 'short' });
const longFr = new Intl.DateTimeFormat('fr-FR', { dateStyle: 'full', timeStyle: 'short' });
export const shortDate = (iso: string | null) => (iso ? dateFr.format(new Date(iso)) : '');
export const longDate = (iso: string | null) => (iso ? longFr.format(new Date(iso)) : '');

const units = ['octets', 'Ko', 'Mo', 'Go'];
export function size(n: number): string {
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1).replace('.', ',')} ${units[i]}`;
}
