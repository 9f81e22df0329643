-- DMP hand-off (dmp/handoff.ts): one row per attempt to hand a message's documents to the
-- DMP, whatever its outcome, so the webmail shows it on the message and an operator can
-- see what was sent where. Written only by dmp/handoff.ts, in the same transaction as the
-- journal event (journal_seq) that records it.
--
--   dmp_submissions  bal/folder/uid (+ message_id when the message has one): the message.
--                    attachment: the file the documents came from (IHE_XDM.zip, a CDA);
--                    document_ids: the documents' XDS uniqueIds (none when refused before
--                    sending); masking: the DMP visibility asked for (null: as the
--                    documents say); status success|failure; errors: the registry's
--                    RegistryErrorList or why nothing was sent, as [{code, context,
--                    severity, location?}]; endpoint/request_id/http_status: the exchange
--                    (null when nothing was sent).
--   dmp_rules        per-BAL rule "hand every document arriving in this box to the DMP,
--                    with this masking"; read by the rule watcher (dmp/watcher.ts).
CREATE TABLE dmp_submissions (
  id            bigserial PRIMARY KEY,
  bal           text NOT NULL,
  folder        text NOT NULL,
  uid           bigint NOT NULL,
  message_id    text,
  actor         text NOT NULL,
  attachment    text,
  kind          text,
  document_ids  text[] NOT NULL DEFAULT '{}',
  masking       text CHECK (masking IN ('normal', 'masque-ps', 'invisible-patient', 'invisible-representants-legaux')),
  status        text NOT NULL CHECK (status IN ('success', 'failure')),
  errors        jsonb NOT NULL DEFAULT '[]',
  endpoint      text,
  request_id    text,
  http_status   int,
  submitted_at  timestamptz NOT NULL DEFAULT now(),
  journal_seq   bigint NOT NULL
);
CREATE INDEX dmp_submissions_message ON dmp_submissions (bal, message_id);
CREATE INDEX dmp_submissions_uid ON dmp_submissions (bal, folder, uid);

CREATE TABLE dmp_rules (
  bal         text PRIMARY KEY,
  masking     text NOT NULL CHECK (masking IN ('normal', 'masque-ps', 'invisible-patient', 'invisible-representants-legaux')),
  enabled     boolean NOT NULL DEFAULT true,
  created_by  text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
