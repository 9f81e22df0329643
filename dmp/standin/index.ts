export { ITI41_PATH, startStandinDmp, type StandinDmp, type StandinOptions, type StoredSubmission } from './server.js';
export { INS_OIDS, RPPS_OID, checkSubmission, dtmIsReal, rppsOf, type RegistryState, type Verdict } from './validate.js';
