// A PSC token or browser login → the operator's person: the national id the provider vouches
// for, mapped to the local account holding it (annuaire, injected). Which box that person may
// open or send as stays core/policy's, as with a password.
import type { TokenFailure } from '../../core/errors.js';
import type { PersonPrincipal } from '../../core/policy/index.js';
import type { PscCheck } from './client.js';

/** Where PSC sends the browser back, on the webmail's and the console's listeners alike. */
export const PSC_START_PATH = '/api/v1/web/psc/start';
export const PSC_CALLBACK_PATH = '/api/v1/web/psc/callback';

export type PscLogin = { ok: true; principal: PersonPrincipal } | { ok: false; failure: TokenFailure; idnps?: string };

export type PersonByNationalId = (idnps: string, level: { acr?: string; amr?: string[] }) => Promise<PersonPrincipal | null>;

export async function personOf(check: PscCheck, personFor: PersonByNationalId): Promise<PscLogin> {
  if (!check.ok) return check;
  const principal = await personFor(check.idnps, { acr: check.acr, amr: check.amr });
  return principal ? { ok: true, principal } : { ok: false, failure: 'no-account', idnps: check.idnps };
}

/** The journal's fields for a PSC login: method psc (as password / certificate logins record theirs), acr, amr. */
export const pscLevel = (p: PersonPrincipal) => ({ ...(p.acr ? { acr: p.acr } : {}), ...(p.amr ? { amr: p.amr } : {}) });
