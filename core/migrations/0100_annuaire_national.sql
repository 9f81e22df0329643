-- The national directory as published by the Annuaire Santé (annuaire/import). Written
-- only by `mss annuaire import`; read by the LDAP feeder and the recipient lookups.
--
--   annuaire_persons        one row per professional (key idnps = type digit + RPPS/ADELI
--                           id), from PS_LibreAcces_Personne_activite. Profession, category
--                           and savoir-faire are those of the person's first activity in
--                           (profession code, savoir-faire code) order; every activity keeps
--                           its own in annuaire_activities.
--   annuaire_structures     one row per place of practice (key structure_id = "Identifiant
--                           technique de la structure"): SIRET/SIREN/FINESS, names, postal
--                           address, phones, e-mail, sector.
--   annuaire_activities     one row per professional × activity (key activity_key = idnps |
--                           structure_id | profession | savoir-faire type and code | mode |
--                           role | genre codes); idnps and structure_id link it. No foreign
--                           keys: a row may outlive its person's deactivation, and bulk
--                           loading stays one set-based statement per table.
--   annuaire_mss_addresses  one row per national MSSanté BAL (Extraction_Correspondance_MSSante),
--                           the unique key is lower(address): SMTP's recipient check is one
--                           index probe. Type PER/CAB carry the owner's idnps, ORG/APP the
--                           structure id (+ service). Lines repeating an address are merged.
--                           liste_rouge: the national file only publishes public boxes, so it
--                           is false for every imported row; the column lets the LDAP feeder
--                           apply one rule to these and to the operator's own boxes.
--   annuaire_import_files   one row per applied file: kind, name, SHA-256, extraction date
--                           (from the file name), counts, the journal event that records it.
--                           An older extraction is refused over a newer one of the same kind.
--
-- Every national row has: hash (64-bit content hash of the imported fields, hex: a changed
-- row is found without comparing 30 columns), active, first_seen / last_seen (extraction
-- dates), deactivated_at (extraction date of the first file it was missing from; rows are
-- never deleted — a vanished entry is deactivated and comes back active if it reappears),
-- source_file (the file that last inserted, changed or deactivated it). Empty fields are NULL.
-- Keys are COLLATE "C": identifiers and addresses compare bytewise, and their indexes and
-- sorts skip locale-aware comparison (several times faster on the bulk paths).

CREATE TABLE annuaire_import_files (
  id               bigserial PRIMARY KEY,
  kind             text NOT NULL CHECK (kind IN ('activity', 'mssante')),
  file_name        text NOT NULL,
  sha256           text NOT NULL,
  extraction_date  timestamptz NOT NULL,
  encoding         text NOT NULL,
  forced           boolean NOT NULL DEFAULT false,
  lines            bigint NOT NULL,
  rejected         bigint NOT NULL,
  counts           jsonb NOT NULL,
  actor            text NOT NULL,
  journal_seq      bigint,
  imported_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX annuaire_import_files_kind_date ON annuaire_import_files (kind, extraction_date);

CREATE TABLE annuaire_persons (
  idnps                   text COLLATE "C" PRIMARY KEY,
  id_type                 text NOT NULL,
  id_pp                   text NOT NULL,
  civilite_exercice_code  text,
  civilite_exercice       text,
  civilite_code           text,
  civilite                text,
  nom                     text,
  prenom                  text,
  profession_code         text,
  profession              text,
  categorie_code          text,
  categorie               text,
  savoir_faire_type_code  text,
  savoir_faire_type       text,
  savoir_faire_code       text,
  savoir_faire            text,
  hash                    text NOT NULL,
  active                  boolean NOT NULL DEFAULT true,
  first_seen              timestamptz NOT NULL,
  last_seen               timestamptz NOT NULL,
  deactivated_at          timestamptz,
  source_file             text NOT NULL
);

CREATE TABLE annuaire_structures (
  structure_id             text COLLATE "C" PRIMARY KEY,
  siret                    text,
  siren                    text,
  finess_site              text,
  finess_ej                text,
  raison_sociale           text,
  enseigne                 text,
  complement_destinataire  text,
  complement_geo           text,
  numero_voie              text,
  indice_repetition        text,
  type_voie_code           text,
  type_voie                text,
  voie                     text,
  mention_distribution     text,
  bureau_cedex             text,
  code_postal              text,
  commune_code             text,
  commune                  text,
  pays_code                text,
  pays                     text,
  telephone                text,
  telephone2               text,
  telecopie                text,
  email                    text,
  departement_code         text,
  departement              text,
  ancien_id                text,
  autorite_enregistrement  text,
  secteur_code             text,
  secteur                  text,
  hash                     text NOT NULL,
  active                   boolean NOT NULL DEFAULT true,
  first_seen               timestamptz NOT NULL,
  last_seen                timestamptz NOT NULL,
  deactivated_at           timestamptz,
  source_file              text NOT NULL
);

CREATE TABLE annuaire_activities (
  activity_key             text COLLATE "C" PRIMARY KEY,
  idnps                    text COLLATE "C" NOT NULL,
  structure_id             text COLLATE "C",
  profession_code          text,
  profession               text,
  categorie_code           text,
  categorie                text,
  savoir_faire_type_code   text,
  savoir_faire_type        text,
  savoir_faire_code        text,
  savoir_faire             text,
  mode_exercice_code       text,
  mode_exercice            text,
  section_pharmacien_code  text,
  section_pharmacien       text,
  role_code                text,
  role                     text,
  genre_code               text,
  genre                    text,
  hash                     text NOT NULL,
  active                   boolean NOT NULL DEFAULT true,
  first_seen               timestamptz NOT NULL,
  last_seen                timestamptz NOT NULL,
  deactivated_at           timestamptz,
  source_file              text NOT NULL
);
CREATE INDEX annuaire_activities_idnps ON annuaire_activities (idnps);
CREATE INDEX annuaire_activities_structure ON annuaire_activities (structure_id);

CREATE TABLE annuaire_mss_addresses (
  address                  text COLLATE "C" NOT NULL,
  bal_type                 text NOT NULL CHECK (bal_type IN ('PER', 'ORG', 'APP', 'CAB')),
  id_type                  text,
  id_pp                    text,
  idnps                    text COLLATE "C",
  structure_id_type        text,
  structure_id             text COLLATE "C",
  service                  text,
  civilite_exercice        text,
  nom                      text,
  prenom                   text,
  categorie_code           text,
  categorie                text,
  profession_code          text,
  profession               text,
  savoir_faire_code        text,
  savoir_faire             text,
  dematerialisation        text,
  raison_sociale           text,
  enseigne                 text,
  complement_localisation  text,
  complement_distribution  text,
  numero_voie              text,
  complement_numero_voie   text,
  type_voie                text,
  libelle_voie             text,
  lieu_dit_mention         text,
  ligne_acheminement       text,
  code_postal              text,
  departement              text,
  pays                     text,
  liste_rouge              boolean NOT NULL DEFAULT false,
  hash                     text NOT NULL,
  active                   boolean NOT NULL DEFAULT true,
  first_seen               timestamptz NOT NULL,
  last_seen                timestamptz NOT NULL,
  deactivated_at           timestamptz,
  source_file              text NOT NULL
);
CREATE UNIQUE INDEX annuaire_mss_addresses_address ON annuaire_mss_addresses (lower(address));
CREATE INDEX annuaire_mss_addresses_idnps ON annuaire_mss_addresses (idnps);
CREATE INDEX annuaire_mss_addresses_structure ON annuaire_mss_addresses (structure_id);
