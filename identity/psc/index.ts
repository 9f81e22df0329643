// identity/psc — Pro Santé Connect for every front: the client (token check, browser login),
// the stand-in provider, and the settings read from core/config.
import type { Config } from '../../core/config/index.js';
import type { PscSettings } from './client.js';

export { PscClient, nationalIdOf, randomSecret, type PscCheck, type PscIdentity, type PscSettings } from './client.js';
export { httpsFetch, type Fetch } from './fetch.js';
export { startStandinPsc, STANDIN_ACR, STANDIN_MEANS, type StandinPsc, type StandinProfessional } from './standin.js';

/** psc.* as the client needs it; the issuer and secret given when the stand-in supplies them. */
export function pscSettings(c: Pick<Config, 'psc'>, issuer: string, clientSecret?: string): PscSettings {
  return {
    issuer,
    clientId: c.psc.clientId,
    clientSecret: clientSecret ?? c.psc.clientSecret,
    audience: c.psc.audience || c.psc.clientId,
    scopes: c.psc.scopes,
    acrValues: c.psc.acrValues,
    idClaims: c.psc.idClaims,
    algorithms: c.psc.algorithms.filter((a) => a !== 'none' && !/^HS/i.test(a)),
    introspection: c.psc.introspection,
    clockToleranceMs: c.psc.clockTolerance,
  };
}
export { personOf, pscLevel, PSC_CALLBACK_PATH, PSC_START_PATH, type PscLogin, type PersonByNationalId } from './login.js';
