// A consumer's lag behind its provider, from the two contextCSN sets (annuaire/ldap/replication.ts):
// what /health and mss_ldap_replication_lag_seconds report on a consumer node.
import { describe, expect, it } from 'vitest';
import { csnTime, replicationLag } from '../../annuaire/ldap/replication.js';

const csn = (time: string, sid: string) => `${time}#000000#${sid}#000000`;
const map = (...csns: string[]) => new Map(csns.map((c) => [c.split('#')[2], c]));

describe('replication lag from contextCSN', () => {
  it('reads the time of a CSN, to the millisecond', () => {
    expect(csnTime(csn('20261207021500.123456Z', '000'))).toBe(Date.UTC(2026, 11, 7, 2, 15, 0, 123));
    expect(csnTime(csn('20261207021500Z', '000'))).toBe(Date.UTC(2026, 11, 7, 2, 15, 0, 0));
    expect(csnTime('not a csn')).toBeNaN();
  });

  it('a consumer holding what the provider holds (or newer) is caught up', () => {
    const p = map(csn('20261207021500.000000Z', '000'));
    expect(replicationLag(p, map(csn('20261207021500.000000Z', '000')))).toEqual({ caughtUp: true, lagSeconds: 0 });
    expect(replicationLag(p, map(csn('20261207021501.000000Z', '000')))).toEqual({ caughtUp: true, lagSeconds: 0 });
  });

  it('behind: the newest missing change is that much newer than the newest held, the worst server counts', () => {
    const p = map(csn('20261207021530.500000Z', '000'), csn('20261207021600.000000Z', '001'));
    const c = map(csn('20261207021500.000000Z', '000'), csn('20261207021559.000000Z', '001'));
    expect(replicationLag(p, c)).toEqual({ caughtUp: false, lagSeconds: 30.5 });
  });

  it('nothing held from one of the provider\'s servers: behind by an unknown amount', () => {
    const p = map(csn('20261207021500.000000Z', '000'), csn('20261207021600.000000Z', '001'));
    expect(replicationLag(p, map(csn('20261207021500.000000Z', '000')))).toEqual({ caughtUp: false, lagSeconds: null });
    expect(replicationLag(p, new Map())).toEqual({ caughtUp: false, lagSeconds: null });
  });
});
