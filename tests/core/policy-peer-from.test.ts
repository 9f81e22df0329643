import { describe, expect, it } from 'vitest';
import { decidePeerFrom, type PeerPrincipal, type TrustSpaceEntry } from '../../core/policy/index.js';

// Which header From domains a peer operator may deliver: its own — named by its certificate,
// or recorded with its certificate's subject on the liste blanche — inside the trust space,
// never one of ours.

const SUBJECT = 'CN=mx.operateur.fr, OU=30000000000001, O=Operateur Regional, ST=Paris (75), C=FR';
const peer: PeerPrincipal = { kind: 'peer', domain: 'operateur.mssante.fr', subject: SUBJECT };
const certNames = ['mx.operateur.fr', 'operateur.mssante.fr'];
const ours = ['mssante.localhost'];
const entry = (domain: string, operatorDn: string | null): TrustSpaceEntry => ({ domain, operatorDn });

describe('decidePeerFrom', () => {
  it('allows a domain its certificate names', () => {
    expect(decidePeerFrom(peer, certNames, 'Operateur.MSSante.fr', entry('operateur.mssante.fr', null), ours)).toEqual({ ok: true });
  });

  it('allows another domain the liste blanche records with its certificate subject (one operator, several domains)', () => {
    const dn = 'CN=mx.operateur.fr,OU=30000000000001,O=Operateur Regional,ST=Paris (75),C=FR';
    expect(decidePeerFrom(peer, certNames, 'clinique.mssante.fr', entry('clinique.mssante.fr', dn), ours)).toEqual({ ok: true });
    // The openssl one-attribute-per-line form of the same subject, in another order.
    expect(decidePeerFrom(peer, certNames, 'clinique.mssante.fr', entry('clinique.mssante.fr', 'C=FR\nST=Paris (75)\nO=Operateur Regional\nOU=30000000000001\nCN=mx.operateur.fr'), ours)).toEqual({ ok: true });
  });

  it("refuses another operator's domain, and a listed domain with no operator DN recorded", () => {
    const other = decidePeerFrom(peer, certNames, 'hopital.mssante.fr', entry('hopital.mssante.fr', 'CN=mx.autre.fr,O=Autre,C=FR'), ours);
    expect(other).toMatchObject({ ok: false, code: 'FROM_NOT_PEER_DOMAIN' });
    expect(!other.ok && other.reason).toBe(
      'message refused: the From header domain hopital.mssante.fr is not one of the domains of the operator delivering it (operateur.mssante.fr); an operator delivers the mail of its own domains only',
    );
    expect(decidePeerFrom(peer, certNames, 'hopital.mssante.fr', entry('hopital.mssante.fr', null), ours)).toMatchObject({ ok: false, code: 'FROM_NOT_PEER_DOMAIN' });
  });

  it('refuses one of our own domains (a forged local sender), even if the certificate named it', () => {
    expect(decidePeerFrom(peer, [...certNames, 'mssante.localhost'], 'mssante.localhost', null, ours)).toMatchObject({ ok: false, code: 'FROM_NOT_PEER_DOMAIN' });
  });

  it('refuses a domain outside the trust space with the trust-space sentence', () => {
    const v = decidePeerFrom(peer, certNames, 'banque-en-ligne.example', null, ours);
    expect(v).toMatchObject({ ok: false, code: 'DOMAIN_NOT_WHITELISTED', reason: 'From header domain banque-en-ligne.example is not in the MSSanté trust space (it is not on the liste blanche)' });
  });

  it('compares IDN names in one form (U-label in the certificate, A-label in the header)', () => {
    expect(decidePeerFrom(peer, ['hôpital.mssante.fr'], 'xn--hpital-ixa.mssante.fr', entry('xn--hpital-ixa.mssante.fr', null), ours)).toEqual({ ok: true });
  });
});
