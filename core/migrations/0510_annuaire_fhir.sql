-- The FHIR annuaire API's view of the annuaire (annuaire/fhir). Like the LDAP feeder (0130),
-- it reads views only, built on annuaire_ldap_bal — the one place that says which mailboxes
-- are published (active, not on the liste rouge, local boxes over national rows) — so the
-- liste rouge is honoured by FHIR exactly as by LDAP.
--
--   annuaire_fhir_mailboxes      the published mailboxes, with the city and postal code of
--                                their address lines split out (FHIR Address.city).
--   annuaire_fhir_practitioners  Practitioner: an active professional of the national
--                                register holding at least one published PER/CAB mailbox
--                                (LDAP's ou=personnes rule; a holder whose only mailbox is
--                                on the liste rouge is not served). key = idnps.
--   annuaire_fhir_roles          PractitionerRole: the active activities (situations
--                                d'exercice) of those professionals. key = activity_key,
--                                which begins with "idnps|": a professional's roles are one
--                                range of the primary key. organization_key: the activity's
--                                structure when it is an active one (else no reference).
--   annuaire_fhir_organizations  Organization: every active structure of the national
--                                extraction (open data; the structures the roles point to),
--                                plus the structures named by published mailboxes that the
--                                extraction does not hold (LDAP's ou=structures). key =
--                                structure id. The liste rouge hides mailboxes: an
--                                Organization shows only its published ORG/APP mailboxes.
-- Keys are COLLATE "C", as in the tables: keyset paging compares them bytewise.

CREATE VIEW annuaire_fhir_mailboxes AS
SELECT b.key, b.address, b.bal_type, b.idnps, b.structure_id, b.service,
       nullif(concat_ws(' ', b.numero_voie, b.complement_numero_voie, b.type_voie, b.libelle_voie), '') AS line,
       coalesce(b.code_postal, substring(b.ligne_acheminement FROM '^([0-9]{5})')) AS postal_code,
       nullif(btrim(regexp_replace(regexp_replace(b.ligne_acheminement, '^[0-9]{5}\s*', ''), '\s+CEDEX(\s+[0-9]+)?$', '', 'i')), '') AS city,
       b.pays AS country
FROM annuaire_ldap_bal b;

CREATE VIEW annuaire_fhir_practitioners AS
SELECT p.idnps AS key, p.idnps, p.id_type, p.id_pp, p.civilite_exercice_code, p.civilite_code, p.nom, p.prenom,
       p.profession_code, p.profession, p.categorie_code, p.categorie,
       p.savoir_faire_type_code, p.savoir_faire_code, p.savoir_faire, p.last_seen
FROM annuaire_persons p
WHERE p.active
  -- OFFSET 0 keeps this a per-row probe (the idnps index of each branch of the view): as a
  -- semi-join the planner hashed every published box for each page (~0.3 s per 100,000).
  AND EXISTS (SELECT 1 FROM annuaire_ldap_bal b WHERE b.idnps = p.idnps AND b.bal_type IN ('PER', 'CAB') OFFSET 0);

CREATE VIEW annuaire_fhir_roles AS
SELECT a.activity_key AS key, a.idnps, a.structure_id, a.profession_code, a.profession, a.categorie_code, a.categorie,
       a.savoir_faire_type_code, a.savoir_faire_code, a.savoir_faire, a.mode_exercice_code, a.mode_exercice,
       a.role_code, a.role, a.genre_code, a.genre, a.last_seen, s.structure_id AS organization_key
FROM annuaire_activities a
JOIN annuaire_fhir_practitioners p ON p.idnps = a.idnps
LEFT JOIN annuaire_structures s ON s.structure_id = a.structure_id AND s.active
WHERE a.active;

CREATE VIEW annuaire_fhir_organizations AS
SELECT s.structure_id AS key,
       -- A site stored under its national id (no technical id: annuaire/import/site-key.ts).
       CASE WHEN s.structure_id IN ('1' || s.finess_site, '3' || s.siret) THEN s.structure_id END AS idnst,
       s.finess_site AS finess, s.finess_ej, s.siret,
       coalesce(s.raison_sociale, s.enseigne) AS name, s.enseigne,
       nullif(concat_ws(' ', s.numero_voie, s.indice_repetition, s.type_voie, s.voie), '') AS line,
       s.code_postal AS postal_code, s.commune AS city, s.pays AS country,
       s.telephone AS phone, s.telecopie AS fax, s.secteur_code, s.secteur, s.last_seen
FROM annuaire_structures s
WHERE s.active
UNION ALL
SELECT l.key,
       -- "Identification Structure" is the national id: type digit (1 FINESS, 3 SIRET) + id.
       l.key,
       CASE WHEN l.key LIKE '1%' THEN substr(l.key, 2) END,
       NULL,
       CASE WHEN l.key LIKE '3%' THEN substr(l.key, 2) END,
       coalesce(l.raison_sociale, l.enseigne), l.enseigne,
       nullif(concat_ws(' ', l.numero_voie, l.complement_numero_voie, l.type_voie, l.libelle_voie), ''),
       coalesce(l.code_postal, substring(l.ligne_acheminement FROM '^([0-9]{5})')),
       nullif(btrim(regexp_replace(regexp_replace(l.ligne_acheminement, '^[0-9]{5}\s*', ''), '\s+CEDEX(\s+[0-9]+)?$', '', 'i')), ''),
       l.pays, NULL, NULL, NULL, NULL, NULL
FROM annuaire_ldap_structures l
WHERE NOT EXISTS (SELECT 1 FROM annuaire_structures s WHERE s.structure_id = l.key AND s.active);
