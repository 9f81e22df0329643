// ITI-41 (Provide and Register Document Set-b) over SOAP 1.2 with MTOM/XOP: the client that
// hands documents to the DMP, and the pieces the stand-in DMP reads requests with.
export { submitToDmp, sendProvideAndRegister, type DmpResult, type DmpTls, type SubmitOptions } from './client.js';
export { buildProvideAndRegister, readProvideAndRegister, type OutgoingDocument, type ReceivedDocument, type ReceivedRequest } from './pnr.js';
export {
  ERROR_SEVERITY,
  ITI41_ACTION,
  ITI41_RESPONSE_ACTION,
  RESPONSE_STATUS,
  SoapError,
  envelope,
  faultEnvelope,
  readAnswer,
  registryResponseXml,
  type RegistryError,
  type SoapAnswer,
} from './soap.js';
export { MimeError, buildRelated, parseContentType, parseRelated, type MimeLimits } from './mime.js';
