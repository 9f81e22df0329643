// The operator's monthly activity figures (issue 15 §4), per mail domain and for the whole
// operator: boxes active in the month by type, messages by direction, refusals by reason,
// DMP hand-offs by outcome, people logged in by method. Boxes come from the annuaire's
// own table; everything else from the journal — the record every front writes — read by
// type and time (its (type, at) index), aggregated in SQL so a month of traffic is never
// loaded row by row.
import type { Queryable } from '../../core/db/index.js';
import { MssError } from '../../core/errors.js';
import { normaliseDomain, type AdminScope } from '../../core/policy/index.js';

export const BOX_TYPES = ['PER', 'ORG', 'APP', 'CAB'] as const;
/** Login methods always listed, whether or not anyone used them (psc: Pro Santé Connect). */
export const LOGIN_METHODS = ['password', 'certificate', 'psc'] as const;

export interface IndicatorRow {
  /** A mail domain of the operator, or `*` for the whole operator (national scope only). */
  domain: string;
  /** Boxes open at some time in the month, by type. */
  boxes: Record<(typeof BOX_TYPES)[number], number>;
  /**
   * Messages accepted in the month (one per message, whatever its number of recipients):
   * sentInside — submitted from this domain to at least one box of the operator;
   * receivedInside — submitted by a box of the operator to at least one box of this domain;
   * toOperators / toPatients — submitted from this domain for another operator / a patient's
   * Mon Espace Santé box; fromOperators / fromPatients — received at the MX for this domain.
   */
  messages: { sentInside: number; receivedInside: number; toOperators: number; fromOperators: number; toPatients: number; fromPatients: number };
  /** SMTP refusals by catalogue code (the MX's and submission's, and the policy's at submission). */
  refused: Record<string, number>;
  /** DMP hand-offs of this domain's boxes by outcome. */
  dmp: { success: number; failure: number };
  /** Distinct people who logged in, by method, and by any method (`any`). */
  logins: Record<string, number>;
}

export interface Indicators {
  month: string;
  from: string;
  to: string;
  scope: 'national' | 'regional';
  patientDomain: string;
  rows: IndicatorRow[];
}

/** "2026-11" → [2026-11-01T00:00Z, 2026-12-01T00:00Z). Months are counted in UTC. */
export function monthRange(month: string): { from: Date; to: Date } {
  const m = /^(\d{4})-(0[1-9]|1[0-2])$/.exec(month);
  if (!m) throw new MssError('BAD_REQUEST', { reason: `the month must be written YYYY-MM (e.g. 2026-11), got ${JSON.stringify(month).slice(0, 40)}` });
  const y = Number(m[1]);
  const mo = Number(m[2]) - 1;
  return { from: new Date(Date.UTC(y, mo, 1)), to: new Date(Date.UTC(y, mo + 1, 1)) };
}

/**
 * How a login event says the person proved who they are, as one of LOGIN_METHODS or the
 * event's own word: its `method` (PLAIN, EXTERNAL, XOAUTH2…), else its `auth`. A login made
 * with a webmail session token (the webmail's own IMAP and SMTP connections) is not a login
 * of its own: null.
 */
export function loginMethod(d: { method?: unknown; auth?: unknown }): string | null {
  if (d.auth === 'token') return null;
  const v = String(d.method ?? d.auth ?? 'unknown').toLowerCase();
  if (['plain', 'login', 'password', 'password+totp'].includes(v)) return 'password';
  if (['external', 'certificate'].includes(v)) return 'certificate';
  if (['oauthbearer', 'xoauth2', 'psc', 'oidc', 'bearer'].includes(v)) return 'psc';
  return v;
}

const domainOfSql = (expr: string) => `lower(substring(${expr} from '@([^@]*)$'))`;

export async function computeIndicators(q: Queryable, o: { month: string; scope: AdminScope; localDomains: readonly string[]; patientDomain: string; domain?: string }): Promise<Indicators> {
  const { from, to } = monthRange(o.month);
  const patients = normaliseDomain(o.patientDomain);
  const national = o.scope.kind === 'everywhere';
  // The rows: the operator's domains and those of its boxes, narrowed to the scope and the asked domain.
  const known = new Set(o.localDomains.map(normaliseDomain));
  for (const r of (await q.query<{ domain: string }>('SELECT DISTINCT lower(domain) AS domain FROM bal_mailboxes')).rows) known.add(r.domain);
  let domains = [...known].sort();
  if (o.scope.kind === 'within') {
    const s = o.scope;
    domains = domains.filter((d) => s.domains.includes(d));
  }
  if (o.domain) domains = domains.filter((d) => d === normaliseDomain(o.domain!));
  const rows = new Map<string, IndicatorRow>();
  const keys = [...(national && !o.domain ? ['*'] : []), ...domains];
  for (const d of keys) {
    rows.set(d, {
      domain: d,
      boxes: { PER: 0, ORG: 0, APP: 0, CAB: 0 },
      messages: { sentInside: 0, receivedInside: 0, toOperators: 0, fromOperators: 0, toPatients: 0, fromPatients: 0 },
      refused: {},
      dmp: { success: 0, failure: 0 },
      logins: Object.fromEntries([...LOGIN_METHODS, 'any'].map((m) => [m, 0])),
    });
  }
  /** The row of domain d, when it is shown; `total` (the `*` row) is counted apart, once per event. */
  const rowOf = (d: string | null | undefined) => (d ? rows.get(d) : undefined);
  const total = rows.get('*');

  // Boxes open at some time in the month: created before its end, not closed before its start.
  const boxes = await q.query<{ domain: string; type: (typeof BOX_TYPES)[number]; n: number }>(
    `SELECT lower(domain) AS domain, type, count(*)::int AS n FROM bal_mailboxes
      WHERE created_at < $2 AND NOT (status = 'closed' AND closed_at < $1) GROUP BY 1, 2`,
    [from, to],
  );
  for (const b of boxes.rows) {
    for (const r of [rowOf(b.domain), total]) if (r) r.boxes[b.type] += b.n;
  }

  // Messages: one smtp.received event per accepted message, grouped by its shape.
  const msgs = await q.query<{ front: string; from_domain: string | null; local_domains: string[]; remote_domains: string[]; n: number }>(
    `SELECT details->>'front' AS front, ${domainOfSql(`details->>'from'`)} AS from_domain,
            ARRAY(SELECT DISTINCT ${domainOfSql('x')} FROM jsonb_array_elements_text(coalesce(details->'local', '[]'::jsonb)) x ORDER BY 1) AS local_domains,
            ARRAY(SELECT DISTINCT ${domainOfSql('x')} FROM jsonb_array_elements_text(coalesce(details->'remote', '[]'::jsonb)) x ORDER BY 1) AS remote_domains,
            count(*)::int AS n
       FROM journal_events WHERE type = 'smtp.received' AND at >= $1 AND at < $2 GROUP BY 1, 2, 3, 4`,
    [from, to],
  );
  for (const m of msgs.rows) {
    const local = m.local_domains ?? [];
    const remote = m.remote_domains ?? [];
    if (m.front === 'submission') {
      const inside = local.some((d) => d !== patients);
      const toPatients = local.includes(patients) || remote.includes(patients);
      const toOperators = remote.some((d) => d !== patients);
      for (const r of [rowOf(m.from_domain), total]) {
        if (!r) continue;
        if (inside) r.messages.sentInside += m.n;
        if (toOperators) r.messages.toOperators += m.n;
        if (toPatients) r.messages.toPatients += m.n;
      }
      if (total && inside) total.messages.receivedInside += m.n;
      for (const d of local) {
        const r = d === patients ? undefined : rowOf(d);
        if (r) r.messages.receivedInside += m.n;
      }
    } else if (m.front === 'mx') {
      const key = m.from_domain === patients ? 'fromPatients' : 'fromOperators';
      if (total) total.messages[key] += m.n;
      for (const d of local) {
        const r = rowOf(d);
        if (r) r.messages[key] += m.n;
      }
    }
  }

  // Refusals: the fronts' own (smtp.refused; a tripped limit's tally carries its count) and
  // the policy's at submission, which the submission front does not journal a second time.
  const refused = await q.query<{ code: string; domain: string | null; n: number }>(
    `SELECT details->>'code' AS code, ${domainOfSql('subject')} AS domain, sum(coalesce((details->>'count')::int, 1))::int AS n
       FROM journal_events
      WHERE at >= $1 AND at < $2 AND (type = 'smtp.refused' OR (type = 'policy.refused' AND details->>'front' = 'smtp-submission'))
      GROUP BY 1, 2`,
    [from, to],
  );
  for (const x of refused.rows) {
    for (const r of [rowOf(x.domain), total]) if (r) r.refused[x.code] = (r.refused[x.code] ?? 0) + x.n;
  }

  // DMP hand-offs (dmp/handoff.ts journals each outcome).
  const dmp = await q.query<{ type: string; domain: string | null; n: number }>(
    `SELECT type, ${domainOfSql(`details->>'bal'`)} AS domain, count(*)::int AS n FROM journal_events
      WHERE type IN ('dmp.submitted', 'dmp.failed') AND at >= $1 AND at < $2 GROUP BY 1, 2`,
    [from, to],
  );
  for (const x of dmp.rows) {
    for (const r of [rowOf(x.domain), total]) if (r) r.dmp[x.type === 'dmp.submitted' ? 'success' : 'failure'] += x.n;
  }

  // People who logged in: every front's login event of a person. A person counts for the
  // domains of the boxes they hold or are a member of.
  const logins = await q.query<{ login: string; method: string | null; auth: string | null }>(
    // The actor is "person:<login>" (principalActor) or, in smtp.auth, "person <login>" (principalLabel).
    `SELECT DISTINCT lower(substr(actor, 8)) AS login, details->>'method' AS method, details->>'auth' AS auth FROM journal_events
      WHERE type IN ('imap.login', 'smtp.auth', 'webmail.login') AND (actor LIKE 'person:%' OR actor LIKE 'person %') AND at >= $1 AND at < $2`,
    [from, to],
  );
  const byPerson = new Map<string, Set<string>>();
  for (const l of logins.rows) {
    const m = loginMethod({ method: l.method ?? undefined, auth: l.auth ?? undefined });
    if (m) byPerson.set(l.login, (byPerson.get(l.login) ?? new Set()).add(m));
  }
  const personDomains = new Map<string, Set<string>>();
  if (byPerson.size) {
    const held = await q.query<{ login: string; domain: string }>(
      `SELECT DISTINCT lower(p.login) AS login, lower(b.domain) AS domain FROM bal_persons p
         JOIN bal_mailboxes b ON (b.type IN ('PER', 'CAB') AND b.owner_id = p.idnps) OR b.id IN (SELECT bal_id FROM bal_members WHERE person_id = p.id)
        WHERE lower(p.login) = ANY($1)`,
      [[...byPerson.keys()]],
    );
    for (const h of held.rows) personDomains.set(h.login, (personDomains.get(h.login) ?? new Set()).add(h.domain));
  }
  for (const [login, methods] of byPerson) {
    const targets = [total, ...[...(personDomains.get(login) ?? [])].map(rowOf)];
    for (const r of targets) {
      if (!r) continue;
      for (const m of methods) r.logins[m] = (r.logins[m] ?? 0) + 1;
      r.logins.any += 1;
    }
  }

  // Refusal codes in a stable order (the CSV, the JSON and the console's chart read the same).
  for (const r of rows.values()) r.refused = Object.fromEntries(Object.entries(r.refused).sort(([x], [y]) => (x < y ? -1 : 1)));
  return { month: o.month, from: from.toISOString(), to: to.toISOString(), scope: national ? 'national' : 'regional', patientDomain: patients, rows: [...rows.values()] };
}

/** One line per figure: month,domain,indicator,key,value — what a spreadsheet pivots. */
export function indicatorsCsv(x: Indicators): string {
  const lines = ['month,domain,indicator,key,value'];
  const esc = (s: string) => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  for (const r of x.rows) {
    const add = (indicator: string, o: Record<string, number>) => {
      for (const k of Object.keys(o).sort()) lines.push([x.month, r.domain, indicator, k, String(o[k])].map(esc).join(','));
    };
    add('boxes', r.boxes);
    add('messages', r.messages);
    add('refused', r.refused);
    add('dmp', r.dmp);
    add('logins', r.logins);
  }
  return lines.join('\r\n') + '\r\n';
}
