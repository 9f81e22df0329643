-- The national liste blanche (annuaire/whitelist): the operator domains of the espace de
-- confiance. Written only by `mss whitelist import` / the admin API; read through
-- annuaire/whitelist's lookups (SMTP: is this domain inside the trust space).
--
--   whitelist_domains  the list in place, one row per domain. domain = the A-label form,
--                      lower-case (what SMTP and certificates carry, the lookup key);
--                      domain_unicode = the U-label form (what people read; equal to
--                      domain for ASCII names). operator_dn = DNCertificatOperateur, the
--                      subject of the operator's server certificate. date_maj as published.
--   whitelist_imports  one row per applied list: its generation date (DateDeGeneration;
--                      an older list is refused), where it came from, its SHA-256, counts.
CREATE TABLE whitelist_domains (
  domain               text PRIMARY KEY,
  domain_unicode       text NOT NULL,
  description          text,
  operator_dn          text,
  responsable_contact  text,
  support_contact      text,
  date_maj             text,
  import_id            bigint NOT NULL
);

CREATE TABLE whitelist_imports (
  id              bigserial PRIMARY KEY,
  generated_at    timestamptz NOT NULL,
  generated_raw   text NOT NULL,
  source          text NOT NULL,
  sha256          text NOT NULL,
  domains         int NOT NULL,
  added           int NOT NULL,
  removed         int NOT NULL,
  changed         int NOT NULL,
  rejected        int NOT NULL,
  actor           text NOT NULL,
  imported_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX whitelist_imports_generated ON whitelist_imports (generated_at);
