-- The SMTP spool and outbound queue (smtp/). The contract is smtp/spool.ts: one writer
-- per state change, documented states.
--   smtp_spool     every message accepted with 250: written (body included) BEFORE the 250,
--                  then delivered over LMTP to Dovecot (local recipients) and/or handed to
--                  smtp_outbound (other operators). The body is dropped once done.
--   smtp_outbound  one row per (message, destination domain): delivered by the outbound
--                  worker with back-off, bounced with a DSN after a permanent failure or
--                  too long.
CREATE TABLE smtp_spool (
  id              bigserial PRIMARY KEY,
  received_at     timestamptz NOT NULL DEFAULT now(),
  -- queued: recipients pending; done: every recipient delivered or handed on; failed: given up
  state           text NOT NULL CHECK (state IN ('queued', 'done', 'failed')),
  front           text NOT NULL,               -- mx | submission
  message_id      text,
  env_from        text NOT NULL,               -- '' for a bounce
  local_rcpts     text[] NOT NULL DEFAULT '{}',-- still to deliver over LMTP
  delivered_rcpts text[] NOT NULL DEFAULT '{}',
  failed_rcpts    jsonb NOT NULL DEFAULT '[]',
  size            int NOT NULL,
  body            bytea,                       -- NULL once done
  peer            jsonb NOT NULL DEFAULT '{}', -- address, TLS, certificate subject, authenticated user
  dsn             jsonb,                       -- RET / ENVID / per-recipient NOTIFY and ORCPT
  attempts        int NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  last_error      text
);
CREATE INDEX smtp_spool_due ON smtp_spool (next_attempt_at) WHERE state = 'queued';

CREATE TABLE smtp_outbound (
  id              bigserial PRIMARY KEY,
  spool_id        bigint REFERENCES smtp_spool (id),
  created_at      timestamptz NOT NULL DEFAULT now(),
  -- queued → sending → sent | deferred (→ sending …) | bounced
  state           text NOT NULL CHECK (state IN ('queued', 'sending', 'deferred', 'sent', 'bounced')),
  domain          text NOT NULL,
  env_from        text NOT NULL,
  rcpts           text[] NOT NULL,
  message_id      text,
  body            bytea,
  dsn             jsonb,
  attempts        int NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  expires_at      timestamptz NOT NULL,
  last_reply      text,
  done_at         timestamptz
);
CREATE INDEX smtp_outbound_due ON smtp_outbound (next_attempt_at) WHERE state IN ('queued', 'deferred');
