// The expiry gauges (core/metrics.ts) from what the platform loaded at start: its TLS
// certificate, the CRLs it checks client certificates against, the timestamping
// authority's certificate. The start warns about each once (tls.ts); these let an
// operator's alerting see the dates for as long as the platform runs.
import { X509Certificate } from 'node:crypto';
import { certificateNotAfter, crlNextUpdate } from '../core/metrics.js';
import type { TlsMaterial } from './tls.js';
import { crlIssuer, oneLine } from './trust.js';

const unix = (d: Date) => d.getTime() / 1000;

export function recordExpiries(tls: Pick<TlsMaterial, 'leaf' | 'crls' | 'anchors' | 'intermediates'>, others: Array<{ certificate: string; pem: string }> = []): void {
  certificateNotAfter.set({ certificate: 'tls' }, unix(new Date(tls.leaf.validTo)));
  for (const o of others) certificateNotAfter.set({ certificate: o.certificate }, unix(new Date(new X509Certificate(o.pem).validTo)));
  tls.crls.forEach((crl, i) => {
    const next = crl.nextUpdate?.value;
    if (!next) return;
    const issuer = crlIssuer(crl, [...tls.anchors, ...tls.intermediates]);
    crlNextUpdate.set({ issuer: issuer ? oneLine(issuer.subject) : `CRL #${i + 1} (issuer not trusted)` }, unix(next));
  });
}
