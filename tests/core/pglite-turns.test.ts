import { describe, expect, it } from 'vitest';
import { openPglite } from '../../core/db/index.js';
import { BACKGROUND_EVERY, Turns, type TurnClass } from '../../core/db/pglite-turns.js';

/** A promise and the function that settles it: a job held open until the test says so. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

describe('turns on the embedded database (core/db/pglite-turns)', () => {
  it('gives the next turn to waiting interactive work before background work asked earlier', async () => {
    const turns = new Turns();
    const order: string[] = [];
    const first = gate();
    const held = turns.run('background', async () => first.wait);
    const jobs = [
      turns.run('background', async () => void order.push('import slice 1')),
      turns.run('background', async () => void order.push('import slice 2')),
      turns.run('interactive', async () => void order.push('login')),
      turns.run('interactive', async () => void order.push('250')),
    ];
    expect(turns.queued).toEqual({ interactive: 2, background: 2 });
    first.open();
    await Promise.all([held, ...jobs]);
    expect(order).toEqual(['login', '250', 'import slice 1', 'import slice 2']);
  });

  it("a login's next statement, asked for as its previous one ends, goes before waiting background work", async () => {
    const turns = new Turns();
    const order: string[] = [];
    const first = gate();
    const held = turns.run('interactive', async () => first.wait);
    const slice = turns.run('background', async () => void order.push('import slice'));
    const login = (async () => {
      await turns.run('interactive', async () => void order.push('login: reserve'));
      await turns.run('interactive', async () => void order.push('login: check'));
      await turns.run('interactive', async () => void order.push('login: settle'));
    })();
    first.open();
    await Promise.all([held, slice, login]);
    expect(order).toEqual(['login: reserve', 'login: check', 'login: settle', 'import slice']);
  });

  it('a steady stream of interactive work still lets background work through, once in BACKGROUND_EVERY turns', async () => {
    const turns = new Turns();
    const order: TurnClass[] = [];
    const first = gate();
    const held = turns.run('interactive', async () => first.wait);
    const n = 3 * BACKGROUND_EVERY;
    const jobs = [
      ...Array.from({ length: 2 }, () => turns.run('background', async () => void order.push('background'))),
      ...Array.from({ length: n }, () => turns.run('interactive', async () => void order.push('interactive'))),
    ];
    first.open();
    await Promise.all([held, ...jobs]);
    const at = order.flatMap((c, i) => (c === 'background' ? [i] : []));
    expect(at).toEqual([BACKGROUND_EVERY - 1, 2 * BACKGROUND_EVERY - 1]);
    expect(order).toHaveLength(n + 2);
  });

  it('a job that throws passes its turn on', async () => {
    const turns = new Turns();
    await expect(turns.run('interactive', async () => Promise.reject(new Error('refused')))).rejects.toThrow('refused');
    await expect(turns.run('background', async () => 'next')).resolves.toBe('next');
    expect(turns.queued).toEqual({ interactive: 0, background: 0 });
  });

  it("PGlite: a login's statement runs before the background transactions queued ahead of it, and each transaction stays whole", async () => {
    const db = await openPglite();
    try {
      await db.exec('CREATE TABLE seen (n serial PRIMARY KEY, what text NOT NULL)');
      const bg = db.background();
      const first = gate();
      // A background transaction holds the connection until the test opens the gate.
      const holding = bg.transaction(async (tx) => {
        await tx.query("INSERT INTO seen (what) VALUES ('import: begin')");
        await first.wait;
        await tx.query("INSERT INTO seen (what) VALUES ('import: end')");
      });
      await new Promise((r) => setImmediate(r));
      const queued = [1, 2].map((k) => bg.transaction(async (tx) => void (await tx.query('INSERT INTO seen (what) VALUES ($1)', [`slice ${k}`]))));
      const login = db.query("INSERT INTO seen (what) VALUES ('login')");
      first.open();
      await Promise.all([holding, ...queued, login]);
      const { rows } = await db.query<{ what: string }>('SELECT what FROM seen ORDER BY n');
      expect(rows.map((r) => r.what)).toEqual(['import: begin', 'import: end', 'login', 'slice 1', 'slice 2']);
      expect(db.background()).toBe(bg);
    } finally {
      await db.close();
    }
  });
});
