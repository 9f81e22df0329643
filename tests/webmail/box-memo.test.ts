import { describe, expect, it } from 'vitest';
import { BoxMemo } from '../../webmail-api/box-memo.js';

describe('BoxMemo: what the webmail process fetched from a box, shared by its connections', () => {
  it('one memo per box (case aside), folder, UIDVALIDITY and kind', () => {
    const memo = new BoxMemo(100);
    memo.memo<number>('Dr.Martin@hopital.mssante.fr', 'INBOX', '7', 'sort date').set(1, 10);
    expect(memo.memo<number>('dr.martin@hopital.mssante.fr', 'INBOX', '7', 'sort date').get(1)).toBe(10);
    expect(memo.memo<number>('dr.martin@hopital.mssante.fr', 'INBOX', '7', 'meta').has(1)).toBe(false);
    expect(memo.memo<number>('dr.martin@hopital.mssante.fr', 'Sent', '7', 'sort date').has(1)).toBe(false);
    expect(memo.memo<number>('secretariat@hopital.mssante.fr', 'INBOX', '7', 'sort date').has(1)).toBe(false);
    expect(memo.size).toBe(1);
  });

  it('a new UIDVALIDITY of a folder drops what was kept under the old one (its UIDs name other messages)', () => {
    const memo = new BoxMemo(100);
    const old = memo.memo<string>('a@x.fr', 'INBOX', '1', 'summary');
    old.set(5, 'old five');
    memo.memo<string>('a@x.fr', 'Sent', '1', 'summary').set(5, 'sent five');
    const now = memo.memo<string>('a@x.fr', 'INBOX', '2', 'summary');
    expect(now.has(5)).toBe(false);
    expect(memo.memo<string>('a@x.fr', 'INBOX', '1', 'summary').has(5)).toBe(false);
    expect(memo.memo<string>('a@x.fr', 'Sent', '1', 'summary').get(5)).toBe('sent five');
    // A caller still holding the old memo adds nothing that counts.
    old.set(6, 'late');
    expect(memo.size).toBe(1);
  });

  it('bounded in UIDs, all boxes together: the box used least recently goes, never the one being filled', () => {
    const memo = new BoxMemo(10);
    const a = memo.memo<number>('a@x.fr', 'INBOX', '1', 'meta');
    for (let u = 1; u <= 4; u++) a.set(u, u);
    const b = memo.memo<number>('b@x.fr', 'INBOX', '1', 'meta');
    for (let u = 1; u <= 4; u++) b.set(u, u);
    memo.memo('a@x.fr', 'INBOX', '1', 'meta'); // a used again: b is now the least recent
    const c = memo.memo<number>('c@x.fr', 'INBOX', '1', 'meta');
    for (let u = 1; u <= 3; u++) c.set(u, u);
    expect(memo.size).toBeLessThanOrEqual(10);
    expect(memo.memo<number>('b@x.fr', 'INBOX', '1', 'meta').size).toBe(0);
    expect(memo.memo<number>('a@x.fr', 'INBOX', '1', 'meta').get(4)).toBe(4);
    expect(memo.memo<number>('c@x.fr', 'INBOX', '1', 'meta').get(3)).toBe(3);
    // One box alone past the bound keeps filling (a list needs its folder's keys) and pushes out every other.
    const big = memo.memo<number>('big@x.fr', 'INBOX', '1', 'sort date');
    for (let u = 1; u <= 12; u++) big.set(u, u);
    expect(big.size).toBe(12);
    expect(memo.size).toBe(12);
    // Setting a UID again does not count twice; clearing gives its count back.
    big.set(1, 100);
    expect(memo.size).toBe(12);
    big.clear();
    expect(memo.size).toBe(0);
  });
});
