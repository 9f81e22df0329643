-- A structure's LDAP entry (annuaire_ldap_structures, 0130) takes its name and address from
-- the first mailbox naming it. When that mailbox row carries none (the MSSanté extraction
-- leaves "Raison Sociale structure BAL" and the address lines empty on some rows), they
-- now come from the practice site of the same key in annuaire_structures — the entry
-- showed the bare id before. Sites without a technical id are stored there under their
-- FINESS or SIRET in the national form (1 + FINESS, 3 + SIRET: annuaire/import/site-key.ts),
-- the form "Identification Structure" uses, so a box naming such a site finds it. The name
-- and the address are taken as two blocks, never mixed line by line between sources.
-- Same columns, types and collations as 0130's view, as CREATE OR REPLACE VIEW requires.
CREATE OR REPLACE VIEW annuaire_ldap_structures AS
SELECT a.key, a.structure_id, a.structure_id_type,
       CASE WHEN a.named OR s.structure_id IS NULL THEN a.raison_sociale ELSE s.raison_sociale END AS raison_sociale,
       CASE WHEN a.named OR s.structure_id IS NULL THEN a.enseigne ELSE s.enseigne END AS enseigne,
       CASE WHEN a.located OR s.structure_id IS NULL THEN a.complement_localisation ELSE s.complement_destinataire END AS complement_localisation,
       CASE WHEN a.located OR s.structure_id IS NULL THEN a.complement_distribution ELSE s.complement_geo END AS complement_distribution,
       CASE WHEN a.located OR s.structure_id IS NULL THEN a.numero_voie ELSE s.numero_voie END AS numero_voie,
       CASE WHEN a.located OR s.structure_id IS NULL THEN a.complement_numero_voie ELSE s.indice_repetition END AS complement_numero_voie,
       CASE WHEN a.located OR s.structure_id IS NULL THEN a.type_voie ELSE s.type_voie END AS type_voie,
       CASE WHEN a.located OR s.structure_id IS NULL THEN a.libelle_voie ELSE s.voie END AS libelle_voie,
       CASE WHEN a.located OR s.structure_id IS NULL THEN a.lieu_dit_mention ELSE s.mention_distribution END AS lieu_dit_mention,
       CASE WHEN a.located OR s.structure_id IS NULL THEN a.ligne_acheminement
            ELSE coalesce(s.bureau_cedex, nullif(concat_ws(' ', s.code_postal, upper(s.commune)), '')) END AS ligne_acheminement,
       CASE WHEN a.located OR s.structure_id IS NULL THEN a.code_postal ELSE s.code_postal END AS code_postal,
       CASE WHEN a.located OR s.structure_id IS NULL THEN a.pays ELSE s.pays END AS pays
FROM (
  SELECT DISTINCT ON (a.structure_id)
         a.structure_id AS key, a.structure_id, a.structure_id_type, a.raison_sociale, a.enseigne,
         a.complement_localisation, a.complement_distribution, a.numero_voie, a.complement_numero_voie,
         a.type_voie, a.libelle_voie, a.lieu_dit_mention, a.ligne_acheminement, a.code_postal, a.pays,
         (a.raison_sociale IS NOT NULL OR a.enseigne IS NOT NULL) AS named,
         (a.libelle_voie IS NOT NULL OR a.ligne_acheminement IS NOT NULL OR a.code_postal IS NOT NULL OR a.lieu_dit_mention IS NOT NULL) AS located
  FROM annuaire_mss_addresses a
  WHERE a.active AND NOT a.liste_rouge AND a.structure_id IS NOT NULL
  ORDER BY a.structure_id, lower(a.address)
) a
LEFT JOIN annuaire_structures s ON s.structure_id = a.key AND s.active AND NOT (a.named AND a.located);
