// FHIR search parameters: parsing the query string strictly (FHIR's handling=strict: an
// unknown parameter or modifier is refused, never ignored) and turning each parameter
// into one SQL condition over a resource's view. Values are always bound parameters.
//
// Semantics (FHIR R4 §3.1.1.4): a repeated parameter is AND, a comma-separated list is OR;
// string parameters match the start of the value, case- and accent-insensitively
// (:exact — the whole value, as written; :contains — anywhere); token parameters are
// [system|]code; reference parameters are [Type/]id.
import { MssError } from '../../core/errors.js';

export type ParamType = 'string' | 'token' | 'reference';

export interface Token {
  /** undefined: no system given; '': the "|code" form (no system). */
  system?: string;
  code: string;
}

/** Bound values for one statement: p(v) returns its placeholder. */
export class Sql {
  readonly values: unknown[] = [];
  p(v: unknown): string {
    this.values.push(v);
    return `$${this.values.length}`;
  }
}

export interface ParamDef {
  type: ParamType;
  /** Modifiers accepted besides none. */
  modifiers?: readonly string[];
  /** Resource type a reference parameter points to. */
  target?: string;
  /** The condition one value puts on the view's row (alias r). */
  where(value: string | Token, sql: Sql, modifier: string | undefined): string;
  /** What the CapabilityStatement says of it. */
  doc: string;
}

export interface ParsedParam {
  name: string;
  modifier?: string;
  /** Alternatives (OR). */
  values: Array<string | Token>;
}

export const MAX_COUNT = 100;
/** Bounds on one search's size: parameters, and alternatives in one parameter (each becomes SQL). */
export const MAX_PARAMS = 32;
export const MAX_VALUES = 50;
export const DEFAULT_COUNT = 20;

/** Parameters every search takes besides the resource's own. */
export const CONTROL_PARAMS = ['_count', '_total', '_include', '_revinclude', '_format', '_cursor'] as const;

export interface Control {
  count: number;
  total: boolean;
  include: string[];
  revinclude: string[];
  cursor?: string;
}

const bad = (reason: string) => new MssError('FHIR_PARAM_INVALID', { reason });

/** Splits a FHIR parameter value on commas not escaped with a backslash; \, \| \$ \\ unescaped. */
export function splitValues(v: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < v.length; i++) {
    const c = v[i];
    if (c === '\\' && i + 1 < v.length) cur += v[++i];
    else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

function token(raw: string): Token {
  // The system|code split happens on the first unescaped bar; splitValues already unescaped,
  // so token values are split before unescaping (see parseValue).
  const i = raw.indexOf('|');
  return i < 0 ? { code: raw } : { system: raw.slice(0, i), code: raw.slice(i + 1) };
}

function parseValue(name: string, def: ParamDef, raw: string): Array<string | Token> {
  // For tokens, an escaped \| stays part of the code: split on bars first, marking escaped ones.
  const parts = splitValues(def.type === 'token' ? raw.replace(/\\\|/g, '\u0000') : raw);
  if (parts.length > MAX_VALUES) throw bad(`the parameter ${name} has more than ${MAX_VALUES} values`);
  return parts.map((p) => {
    if (!p.trim()) throw bad(`the parameter ${name} has an empty value`);
    if (p.length > 256) throw bad(`a value of the parameter ${name} is longer than 256 characters`);
    if (def.type !== 'token') return p;
    const t = token(p);
    const unmark = (s: string) => s.replace(/\u0000/g, '|');
    if (!t.code) throw bad(`the parameter ${name} has a value without a code (${JSON.stringify(raw.slice(0, 60))})`);
    return { ...(t.system !== undefined ? { system: unmark(t.system) } : {}), code: unmark(t.code) };
  });
}

/**
 * The resource's parameters and the control ones, from the raw query string. Throws
 * FHIR_PARAM_UNKNOWN for a name or modifier the resource does not define, FHIR_PARAM_INVALID
 * for a value that cannot be read.
 */
export function parseSearch(query: string, type: string, defs: Readonly<Record<string, ParamDef>>, allowed: { include: readonly string[]; revinclude: readonly string[] }): { params: ParsedParam[]; control: Control } {
  const params: ParsedParam[] = [];
  const control: Control = { count: DEFAULT_COUNT, total: false, include: [], revinclude: [] };
  const seen = new Set<string>();
  let entries: Array<[string, string]>;
  try {
    entries = [...new URLSearchParams(query)];
  } catch {
    throw bad('the query string cannot be read');
  }
  if (entries.length > MAX_PARAMS) throw bad(`a search takes at most ${MAX_PARAMS} parameters, got ${entries.length}`);
  for (const [rawName, value] of entries) {
    if (/[\u0000\p{Cs}]/u.test(rawName + value)) throw bad('the query string contains a NUL character or invalid Unicode');
    const [name, modifier, ...rest] = rawName.split(':');
    if ((CONTROL_PARAMS as readonly string[]).includes(name)) {
      if (modifier !== undefined) throw new MssError('FHIR_PARAM_UNKNOWN', { param: rawName, type, reason: `${name} takes no modifier` });
      if (name !== '_include' && name !== '_revinclude') {
        if (seen.has(name)) throw bad(`the parameter ${name} is given more than once`);
        seen.add(name);
      }
      controlParam(name, value, control, type, allowed);
      continue;
    }
    const def = Object.hasOwn(defs, name) ? defs[name] : undefined;
    if (!def) throw new MssError('FHIR_PARAM_UNKNOWN', { param: rawName.slice(0, 60), type, reason: `the parameters ${type} takes are listed in /metadata` });
    if (rest.length || (modifier !== undefined && !def.modifiers?.includes(modifier))) {
      throw new MssError('FHIR_PARAM_UNKNOWN', { param: rawName.slice(0, 60), type, reason: `the modifiers ${name} takes are ${def.modifiers?.map((m) => ':' + m).join(', ') || 'none'}` });
    }
    params.push({ name, ...(modifier !== undefined ? { modifier } : {}), values: parseValue(name, def, value) });
  }
  return { params, control };
}

function controlParam(name: string, value: string, c: Control, type: string, allowed: { include: readonly string[]; revinclude: readonly string[] }): void {
  switch (name) {
    case '_count':
      if (!/^[0-9]{1,6}$/.test(value)) throw bad(`_count must be a whole number from 0 to ${MAX_COUNT}, got ${JSON.stringify(value.slice(0, 20))}`);
      // Above the cap the server pages at the cap (FHIR lets a server return fewer); the self link says so.
      c.count = Math.min(Number(value), MAX_COUNT);
      return;
    case '_total':
      if (!['none', 'estimate', 'accurate'].includes(value)) throw bad('_total must be none, estimate or accurate');
      c.total = value !== 'none';
      return;
    case '_include':
    case '_revinclude': {
      const list = name === '_include' ? allowed.include : allowed.revinclude;
      if (!list.includes(value)) throw bad(`${name}=${value.slice(0, 60)} is not supported on ${type}${list.length ? ` (supported: ${list.join(', ')})` : ''}`);
      const target = name === '_include' ? c.include : c.revinclude;
      if (!target.includes(value)) target.push(value);
      return;
    }
    case '_cursor':
      if (!/^[A-Za-z0-9_-]{1,400}$/.test(value)) throw bad('_cursor is not one of the links this server gave');
      c.cursor = value;
      return;
    case '_format':
      return; // content negotiation (format.ts) has read it already
  }
}

/** The conditions of all parameters, ANDed; each parameter's values ORed. */
export function conditions(params: ParsedParam[], defs: Readonly<Record<string, ParamDef>>, sql: Sql): string[] {
  return params.map((p) => {
    const def = defs[p.name];
    const alts = p.values.map((v) => def.where(v, sql, p.modifier));
    return alts.length === 1 ? alts[0] : `(${alts.join(' OR ')})`;
  });
}

// --- building blocks for the resources' definitions ------------------------------------

const UPPER = 'ÀÂÄÁÃÅÇÉÈÊËÍÌÎÏÑÓÒÔÖÕÚÙÛÜÝŸ';
const LOWER = 'àâäáãåçéèêëíìîïñóòôöõúùûüýÿ';
const PLAIN = 'AAAAAACEEEEIIIINOOOOOUUUUYY' + 'aaaaaaceeeeiiiinooooouuuuyy';
/** Case and accents folded the same way on both sides of a comparison (lower() alone is ASCII-only under the C locale). */
export const fold = (expr: string) => `lower(translate(${expr}, '${UPPER}${LOWER}', '${PLAIN}'))`;
const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => '\\' + c);

/** A FHIR string match of one column. */
export function stringMatch(col: string, value: string, sql: Sql, modifier: string | undefined): string {
  if (modifier === 'exact') return `${col} = ${sql.p(value)}`;
  const v = sql.p(escapeLike(value));
  return modifier === 'contains' ? `${fold(col)} LIKE '%' || ${fold(v)} || '%'` : `${fold(col)} LIKE ${fold(v)} || '%'`;
}

/** A token parameter that matches a code column, with a fixed system (or none given). */
export function codeMatch(col: string, system: string, t: Token, sql: Sql): string {
  if (t.system !== undefined && t.system !== system) return 'false';
  return `${col} = ${sql.p(t.code)}`;
}

/** The rows of these professionals: a range of the key per idnps (the activities' primary key begins with "idnps|"). */
export function idnpsRanges(col: string, ids: readonly string[], sql: Sql): string {
  if (!ids.length) return 'false';
  return `(${ids.map((id) => `(${col} >= ${sql.p(id + '|')} AND ${col} < ${sql.p(id + '}')})`).join(' OR ')})`;
}

/** [Type/]id of a reference parameter; a reference to another type matches nothing. */
export function referenceId(value: string, target: string): string | null {
  const m = /^(?:([A-Za-z]+)\/)?([^/]+)$/.exec(value);
  if (!m) throw bad(`${JSON.stringify(value.slice(0, 60))} is not a reference ([Type/]id)`);
  if (m[1] && m[1] !== target) return null;
  return m[2];
}
