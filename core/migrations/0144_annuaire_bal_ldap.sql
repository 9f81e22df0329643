-- The operator's own mailboxes join the LDAP directory (annuaire/ldap reads only its views,
-- 0130): annuaire_ldap_bal becomes the national mailboxes plus the local ones, active and
-- not on the liste rouge. A local box wins over a national row of the same address: it is
-- ours, and more recent than the last extraction (a box closed here leaves the directory
-- at once, even while the national file still lists it). Column names, types and
-- collations are those of 0130's view, as CREATE OR REPLACE VIEW requires.
CREATE OR REPLACE VIEW annuaire_ldap_bal AS
SELECT lower(a.address) AS key, a.address, a.bal_type, a.idnps, a.civilite_exercice, a.nom, a.prenom,
       a.profession_code, a.profession, a.savoir_faire_code, a.savoir_faire,
       a.structure_id_type, a.structure_id, a.service, a.raison_sociale, a.enseigne,
       a.complement_localisation, a.complement_distribution, a.numero_voie, a.complement_numero_voie,
       a.type_voie, a.libelle_voie, a.lieu_dit_mention, a.ligne_acheminement, a.code_postal, a.pays
FROM annuaire_mss_addresses a
WHERE a.active AND NOT a.liste_rouge
  AND NOT EXISTS (SELECT 1 FROM bal_mailboxes b WHERE lower(b.address) = lower(a.address))
UNION ALL
SELECT lower(b.address), b.address COLLATE "C", b.type,
       (CASE WHEN b.type IN ('PER', 'CAB') THEN b.owner_id END) COLLATE "C",
       NULL, COALESCE(p.nom, n.nom), COALESCE(p.prenom, n.prenom),
       n.profession_code, n.profession, n.savoir_faire_code, n.savoir_faire,
       CASE WHEN b.structure_id LIKE '3%' THEN 'SIRET' WHEN b.structure_id IS NOT NULL THEN 'FINESS' END,
       b.structure_id COLLATE "C", b.service,
       CASE WHEN b.type IN ('ORG', 'APP') THEN COALESCE(b.display_name, b.description) END, NULL,
       NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM bal_mailboxes b
LEFT JOIN bal_persons p ON b.type IN ('PER', 'CAB') AND p.idnps = b.owner_id
LEFT JOIN annuaire_persons n ON b.type IN ('PER', 'CAB') AND n.idnps = b.owner_id
WHERE b.status = 'active' AND NOT b.liste_rouge;
