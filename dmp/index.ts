// The dmp/ module: clinical documents carried by MSSanté messages (IHE_XDM, CDA R2), their
// XDS metadata, and their hand-off to the DMP by ITI-41 (or to the local stand-in DMP).
// What the rest of the platform uses; the files below hold the rest.
export type { Author, Coded, DocumentEntry, Masking, PatientId, Submission, SubmissionSet } from './types.js';
export { MASKINGS, maskingCodes, maskingOf, withMasking } from './masking.js';
export { readSubmitObjectsRequest, writeSubmitObjectsRequest, type MetadataSet } from './ebrim.js';
export { buildCdaDocument, readCdaHeader, type CdaInput } from './cda.js';
export { buildXdm, XDM_ATTACHMENT_NAME } from './xdm/build.js';
export { readXdm, xdmLimits, type XdmLimits } from './xdm/read.js';
export { composeXdmMessage, documentsOfMessage, submissionFromCda, xdmSubject, type MessageDocument } from './documents.js';
export { submitToDmp, type DmpResult, type DmpTls, type RegistryError, type SubmitOptions } from './iti41/index.js';
export { startStandinDmp, type StandinDmp, type StandinOptions, type StoredSubmission } from './standin/index.js';
export {
  DEFAULT_SOURCE_ID,
  dmpRules,
  dmpStatus,
  handoffMessage,
  listDmpRules,
  removeDmpRule,
  setDmpRule,
  type DmpOutcome,
  type DmpRuleRow,
  type HandoffDeps,
  type HandoffRequest,
  type HandoffResult,
  type HandoffSubmission,
} from './handoff.js';
export { startDmpWatcher, type DmpWatcher, type WatcherDeps } from './watcher.js';
export { clinicalViews, withViews, type ClinicalAttachmentView, type ClinicalDocumentView } from './view.js';
export { cdaNarrative } from './narrative.js';
