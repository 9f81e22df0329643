// Searching the annuaire for the admin API: the operator's own mailboxes (annuaire/bal) and
// the national MSSanté addresses (annuaire/import's tables, read-only).
import type { Queryable } from '../../core/db/index.js';

export interface NationalAddress {
  address: string;
  type: string;
  idnps: string | null;
  nom: string | null;
  prenom: string | null;
  profession: string | null;
  structureId: string | null;
  raisonSociale: string | null;
  service: string | null;
  active: boolean;
}

const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => '\\' + c);

/**
 * National addresses by free text (name, address, structure name), exact mail, or RPPS /
 * IDNPS. Text matching is a case-insensitive substring: admins type fragments.
 */
export async function searchNational(q: Queryable, f: { text?: string; mail?: string; rpps?: string; limit?: number }): Promise<NationalAddress[]> {
  const where: string[] = [];
  const p: unknown[] = [];
  if (f.mail) {
    p.push(f.mail.trim());
    where.push(`lower(address) = lower($${p.length})`);
  }
  if (f.rpps) {
    const id = f.rpps.trim();
    p.push(/^\d{11}$/.test(id) ? '8' + id : id);
    where.push(`idnps = $${p.length}`);
  }
  if (f.text) {
    p.push(escapeLike(f.text.trim()));
    const n = p.length;
    where.push(`(address ILIKE '%' || $${n} || '%' OR nom ILIKE '%' || $${n} || '%' OR prenom ILIKE '%' || $${n} || '%' OR raison_sociale ILIKE '%' || $${n} || '%')`);
  }
  if (!where.length) return [];
  p.push(Math.min(f.limit ?? 50, 500));
  const { rows } = await q.query<{
    address: string;
    bal_type: string;
    idnps: string | null;
    nom: string | null;
    prenom: string | null;
    profession: string | null;
    structure_id: string | null;
    raison_sociale: string | null;
    service: string | null;
    active: boolean;
  }>(
    `SELECT address, bal_type, idnps, nom, prenom, profession, structure_id, raison_sociale, service, active
       FROM annuaire_mss_addresses WHERE ${where.join(' AND ')} ORDER BY address LIMIT $${p.length}`,
    p,
  );
  return rows.map((r) => ({
    address: r.address,
    type: r.bal_type,
    idnps: r.idnps,
    nom: r.nom,
    prenom: r.prenom,
    profession: r.profession,
    structureId: r.structure_id,
    raisonSociale: r.raison_sociale,
    service: r.service,
    active: r.active,
  }));
}
