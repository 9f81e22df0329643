// annuaire/publication — BAL changes published to the national annuaire (FHIR Patch), queued
// in the change's own transaction and sent with retries.
export { publicationFor, carrierOf, contactPoint, metadataExtension, URL_MAILBOX_METADATA, type Publication, type FhirParameters, type PatchKind } from './payload.js';
export { enqueuePublication, listPublications, sendDuePublications, startPublicationSender, transactionBundle, type QueuedPublication, type SenderOptions, type SendReport } from './queue.js';
