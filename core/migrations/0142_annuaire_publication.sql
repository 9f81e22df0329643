-- Publication of the operator's mailboxes to the national annuaire (annuaire/publication).
--   publication_queue  one row per BAL change to publish (an outbox: inserted in the same
--                      transaction as the change). target = the FHIR conditional-PATCH URL
--                      of the resource carrying the BAL (Practitioner by IDNPS,
--                      Organization by national structure id); payload = the FHIR Patch
--                      `Parameters`. status: pending → sent, or failed once attempts reach
--                      the limit or the endpoint refuses it for good (4xx); last_error says
--                      why. Rows of one address are sent in id order.
CREATE TABLE publication_queue (
  id               bigserial PRIMARY KEY,
  address          text NOT NULL,
  bal_version      int NOT NULL,
  change           text NOT NULL CHECK (change IN ('insert', 'replace', 'delete')),
  target           text NOT NULL,
  payload          jsonb NOT NULL,
  status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
  attempts         int NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz NOT NULL DEFAULT now(),
  last_error       text,
  response_status  int,
  created_at       timestamptz NOT NULL DEFAULT now(),
  sent_at          timestamptz
);
CREATE INDEX publication_queue_due ON publication_queue (next_attempt_at) WHERE status = 'pending';
CREATE INDEX publication_queue_address ON publication_queue (lower(address), id);
