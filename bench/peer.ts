// The one peer operator every bench's inbound mail comes from: a liste blanche naming it,
// imported the way an operator imports the national one.
import { importWhitelist } from '../annuaire/whitelist/index.js';
import type { Db } from '../core/db/index.js';
import type { Journal } from '../core/journal/index.js';

export async function trustPeer(db: Db, journal: Journal, peer: string): Promise<void> {
  const xml = `<?xml version="1.0" encoding="UTF-8"?>
<ListeBlanche xmlns="https://listeblanche.mssante.fr/schema">
  <DateDeGeneration>2026-02-01T03:00:00</DateDeGeneration>
  <Domaines>
    <Domaine><Nom>${peer}</Nom><Description>Opérateur pair (bench)</Description><DNCertificatOperateur>CN=${peer}</DNCertificatOperateur><ResponsableContact>r@${peer}</ResponsableContact><SupportContact>s@${peer}</SupportContact><DateMAJ>2026-01-15</DateMAJ></Domaine>
  </Domaines>
</ListeBlanche>
`;
  await importWhitelist(db, journal, Buffer.from(xml), 'bench', 'bench');
}
