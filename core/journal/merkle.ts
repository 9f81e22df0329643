import { createHash } from 'node:crypto';

// RFC 6962-style Merkle tree: leaves and inner nodes get different prefixes so a leaf can
// never pass for a node. One timestamp per batch then covers every event in it, and one
// event is proven by its path alone.

const sha = (...parts: Buffer[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const leafHash = (leaf: Buffer) => sha(Buffer.from([0]), leaf);
const nodeHash = (l: Buffer, r: Buffer) => sha(Buffer.from([1]), l, r);

export function merkleRoot(leaves: Buffer[]): Buffer {
  if (leaves.length === 0) throw new Error('merkle tree of nothing');
  let level: Buffer[] = leaves.map(leafHash);
  while (level.length > 1) {
    const next: Buffer[] = [];
    for (let i = 0; i < level.length; i += 2) next.push(i + 1 < level.length ? nodeHash(level[i], level[i + 1]) : level[i]);
    level = next;
  }
  return level[0];
}

export interface ProofStep {
  /** Where the sibling sits: combine as H(1 || sibling || acc) when 'left'. */
  side: 'left' | 'right';
  hash: string;
}

export function merkleProof(leaves: Buffer[], index: number): ProofStep[] {
  const proof: ProofStep[] = [];
  let level: Buffer[] = leaves.map(leafHash);
  let i = index;
  while (level.length > 1) {
    const sibling = i % 2 === 0 ? i + 1 : i - 1;
    if (sibling < level.length) proof.push({ side: i % 2 === 0 ? 'right' : 'left', hash: level[sibling].toString('hex') });
    const next: Buffer[] = [];
    for (let j = 0; j < level.length; j += 2) next.push(j + 1 < level.length ? nodeHash(level[j], level[j + 1]) : level[j]);
    level = next;
    i = Math.floor(i / 2);
  }
  return proof;
}

export function rootFromProof(leaf: Buffer, proof: ProofStep[]): Buffer {
  let acc = leafHash(leaf);
  for (const step of proof) {
    const sib = Buffer.from(step.hash, 'hex');
    acc = step.side === 'left' ? nodeHash(sib, acc) : nodeHash(acc, sib);
  }
  return acc;
}
