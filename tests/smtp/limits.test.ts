import { describe, expect, it } from 'vitest';
import { WindowCounter, windowLabel } from '../../smtp/limits.js';

// The sliding-window counter behind the unknown-recipient limit and the submission rate,
// on a clock the test moves: no waiting.

describe('WindowCounter', () => {
  const clock = () => {
    let t = 1_000_000;
    return { now: () => t, advance: (ms: number) => (t += ms) };
  };

  it('is full at the limit; add() says true once, on the event that filled it', () => {
    const c = clock();
    const w = new WindowCounter(3, 60_000, 100, c.now);
    expect([w.add('a'), w.add('a')]).toEqual([false, false]);
    expect(w.full('a')).toBe(false);
    expect(w.add('a')).toBe(true);
    expect(w.full('a')).toBe(true);
    expect(w.add('a')).toBe(false);
    expect(w.full('b')).toBe(false);
  });

  it('forgets events as the window slides past them', () => {
    const c = clock();
    const w = new WindowCounter(2, 60_000, 100, c.now);
    w.add('a');
    c.advance(30_000);
    w.add('a');
    expect(w.full('a')).toBe(true);
    c.advance(30_000); // the first event is now exactly one window old
    expect(w.full('a')).toBe(false);
    expect(w.add('a')).toBe(true);
    c.advance(60_001);
    expect(w.full('a')).toBe(false);
  });

  it('holds at most maxKeys keys, dropping the least recently counted', () => {
    const c = clock();
    const w = new WindowCounter(1, 60_000, 2, c.now);
    w.add('a');
    w.add('b');
    w.add('c');
    expect([w.full('a'), w.full('b'), w.full('c')]).toEqual([false, true, true]);
  });
});

describe('windowLabel', () => {
  it('says a window the way a sentence does', () => {
    expect([windowLabel(3_600_000), windowLabel(7_200_000), windowLabel(600_000), windowLabel(45_000)]).toEqual(['1 h', '2 h', '10 min', '45 s']);
  });
});
