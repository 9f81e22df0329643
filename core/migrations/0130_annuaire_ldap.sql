-- The LDAP directory's view of the annuaire (annuaire/ldap). The directory is fed from
-- these views only — never from the annuaire tables directly — so the rule "what is
-- public" is written once, here, and the operator's own mailboxes (local BALs) join the
-- directory by being added to annuaire_ldap_bal.
--
--   annuaire_ldap_bal         one row per published mailbox: active and not liste rouge.
--                             key = lower(address), the RDN of mail=<key>,ou=bal,<base>.
--   annuaire_ldap_persons     one row per active professional holding a published mailbox.
--                             key = idnps.
--   annuaire_ldap_structures  one row per structure named by a published mailbox, its
--                             details taken from the first of its mailboxes (by address)
--                             so that the choice is stable. key = structure id.
--   annuaire_ldap_pending     the changes the directory has yet to apply. Writers insert
--                             keys in the same transaction as their change
--                             (queueLdapChanges); the platform drains it within a second
--                             and deletes what it applied. A crash between the database
--                             commit and the LDAP write leaves the row: applied next time.

CREATE VIEW annuaire_ldap_bal AS
SELECT lower(a.address) AS key, a.address, a.bal_type, a.idnps, a.civilite_exercice, a.nom, a.prenom,
       a.profession_code, a.profession, a.savoir_faire_code, a.savoir_faire,
       a.structure_id_type, a.structure_id, a.service, a.raison_sociale, a.enseigne,
       a.complement_localisation, a.complement_distribution, a.numero_voie, a.complement_numero_voie,
       a.type_voie, a.libelle_voie, a.lieu_dit_mention, a.ligne_acheminement, a.code_postal, a.pays
FROM annuaire_mss_addresses a
WHERE a.active AND NOT a.liste_rouge;

CREATE VIEW annuaire_ldap_persons AS
SELECT p.idnps AS key, p.idnps, p.civilite_exercice, p.nom, p.prenom,
       p.profession_code, p.profession, p.savoir_faire_code, p.savoir_faire
FROM annuaire_persons p
WHERE p.active
  AND EXISTS (SELECT 1 FROM annuaire_mss_addresses a WHERE a.idnps = p.idnps AND a.active AND NOT a.liste_rouge);

CREATE VIEW annuaire_ldap_structures AS
SELECT DISTINCT ON (a.structure_id)
       a.structure_id AS key, a.structure_id, a.structure_id_type, a.raison_sociale, a.enseigne,
       a.complement_localisation, a.complement_distribution, a.numero_voie, a.complement_numero_voie,
       a.type_voie, a.libelle_voie, a.lieu_dit_mention, a.ligne_acheminement, a.code_postal, a.pays
FROM annuaire_mss_addresses a
WHERE a.active AND NOT a.liste_rouge AND a.structure_id IS NOT NULL
ORDER BY a.structure_id, lower(a.address);

CREATE TABLE annuaire_ldap_pending (
  id         bigserial PRIMARY KEY,
  kind       text NOT NULL CHECK (kind IN ('bal', 'person', 'structure')),
  key        text NOT NULL,
  queued_at  timestamptz NOT NULL DEFAULT now()
);
