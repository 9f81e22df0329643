// The encryption keyring shared by the nodes of one database (issues 16 and 17): each node
// has its own data directory and only the master key in common — nothing under keys/ is
// copied. What one node seals, another opens; a rotation on one reaches the other without a
// restart; a node given another master key refuses to start; nodes starting together on an
// empty database make one keyring.
import { mkdtempSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Keyring, keysDir, spoolCipher, watchKeyring } from '../../core/crypt/index.js';
import { migrate, openPg, openPglite, type Db } from '../../core/db/index.js';
import { claimDue, readSpoolBody, spoolMessages } from '../../smtp/spool.js';
import { poll } from '../helpers/nodes.js';
import { testPostgres } from '../helpers/pg-cluster.js';

/** Two nodes' database handles: two connection pools on PostgreSQL; one PGlite, the embedded database having one process. */
interface Shared {
  name: string;
  nodes: [Db, Db];
  dispose(): Promise<void>;
}

const targets: Array<{ name: string; open(): Promise<Shared> }> = [
  {
    name: 'PostgreSQL',
    async open() {
      const server = await testPostgres();
      const a = await openPg({ url: server.url, poolSize: 3 });
      await migrate(a);
      const b = await openPg({ url: server.url, poolSize: 3 });
      return {
        name: 'pg',
        nodes: [a, b],
        async dispose() {
          await a.close();
          await b.close();
          await server.drop();
        },
      };
    },
  },
  {
    name: 'PGlite',
    async open() {
      const db = await openPglite();
      await migrate(db);
      return { name: 'pglite', nodes: [db, db], dispose: () => db.close() };
    },
  },
];

const dataDir = () => mkdtempSync(join(tmpdir(), 'mss-keyring-node-'));
const rec = (body: Buffer) => ({ front: 'mx' as const, envFrom: 'labo@peer.fr', localRcpts: ['dr.x@mssante.localhost'], body, peer: {} });

describe.each(targets)('nodes sharing one keyring on $name', (target) => {
  let shared: Shared | undefined;
  afterEach(async () => {
    await shared?.dispose();
    shared = undefined;
  });

  it('a row sealed on node A opens on node B; after a rotation on A, B opens rows of the new generation and gets its Dovecot key pair', async () => {
    shared = await target.open();
    const [dbA, dbB] = shared.nodes;
    const masterKey = randomBytes(32).toString('hex');
    const [dirA, dirB] = [dataDir(), dataDir()];
    const a = await Keyring.open(dbA, dirA, masterKey);
    const b = await Keyring.open(dbB, dirB, masterKey);
    expect([a.ids, b.ids]).toEqual([['k1'], ['k1']]);
    // B's local copy, written from the database: the files Dovecot reads are A's.
    for (const f of ['dovecot-k1.pub.pem', 'dovecot-k1.key.pem']) expect(readFileSync(join(keysDir(dirB), f), 'utf8')).toBe(readFileSync(join(keysDir(dirA), f), 'utf8'));

    const body = Buffer.from(`Subject: d'un nœud à l'autre\r\n\r\n${randomBytes(8).toString('hex')}\r\n`);
    const [first] = await spoolMessages(dbA, [rec(body)], spoolCipher(a, true));
    expect((await readSpoolBody(dbB, first, spoolCipher(b, true)))!.equals(body)).toBe(true);

    const added: string[][] = [];
    b.onChange((ids) => added.push(ids));
    expect(await a.rotate()).toBe('k2');
    const [second] = await spoolMessages(dbA, [rec(body)], spoolCipher(a, true));
    expect((await dbA.query<{ body_key: string }>('SELECT body_key FROM smtp_spool WHERE id = $1', [second])).rows[0].body_key).toBe('k2');
    // B has not read the keyring since: the row's unknown generation makes it read it once, then the row opens.
    expect(b.ids).toEqual(['k1']);
    const claimed = await claimDue(dbB, 10, 'worker-b', spoolCipher(b, true));
    expect(claimed.map((r) => [r.id, r.body?.equals(body)])).toEqual([
      [first, true],
      [second, true],
    ]);
    expect([b.ids, b.current, added]).toEqual([['k1', 'k2'], 'k2', [['k2']]]);
    // What B seals now is sealed with the new generation, and its Dovecot's files are there.
    expect(b.sealBody(body, 'smtp_spool:0').key).toBe('k2');
    expect(b.dovecotKeys().map((k) => [k.id, readFileSync(k.publicPemFile, 'utf8')])).toEqual(a.dovecotKeys().map((k) => [k.id, readFileSync(k.publicPemFile, 'utf8')]));
    expect(b.dovecotKeys().map((k) => k.password)).toEqual(a.dovecotKeys().map((k) => k.password));
  });

  it('a node whose master key is not the one the keyring was made with refuses to start, saying so', async () => {
    shared = await target.open();
    const [dbA, dbB] = shared.nodes;
    await Keyring.open(dbA, dataDir(), randomBytes(32).toString('hex'));
    const dirB = dataDir();
    await expect(Keyring.open(dbB, dirB, randomBytes(32).toString('hex'))).rejects.toMatchObject({
      code: 'CRYPT_MASTER_KEY_WRONG',
      message: expect.stringMatching(/the master key does not open the keyring the crypt_keyring table of the database .* every node of one database must be given the same crypt\.masterKey \(MSS_CRYPT_MASTER_KEY\)/),
    });
    // Nor without any: a development master.key is only made for a database without a keyring.
    await expect(Keyring.open(dbB, dirB, undefined)).rejects.toMatchObject({ code: 'CRYPT_MASTER_KEY_MISSING' });
    expect((await dbA.query<{ n: number }>('SELECT count(*)::int AS n FROM crypt_keyring')).rows[0].n).toBe(1);
  });

  it('nodes starting at once on an empty database end with one generation, the same on each', async () => {
    shared = await target.open();
    const [dbA, dbB] = shared.nodes;
    const masterKey = randomBytes(32).toString('hex');
    const dirs = [dataDir(), dataDir(), dataDir()];
    const rings = await Promise.all(dirs.map((d, i) => Keyring.open(i % 2 ? dbB : dbA, d, masterKey)));
    expect(rings.map((r) => r.ids)).toEqual([['k1'], ['k1'], ['k1']]);
    expect((await dbA.query<{ id: string; current: boolean }>('SELECT id, current FROM crypt_keyring')).rows).toEqual([{ id: 'k1', current: true }]);
    const pems = dirs.map((d) => readFileSync(join(keysDir(d), 'dovecot-k1.pub.pem'), 'utf8'));
    expect(new Set(pems).size).toBe(1);
    const sealed = rings[0].sealBody(Buffer.from('un seul trousseau'), 'smtp_spool:1');
    for (const r of rings) expect(r.openBody(sealed.key, sealed.data, 'smtp_spool:1').toString()).toBe('un seul trousseau');
  });

  it('a rotation on A reaches B by polling on PostgreSQL, with no row to open; the embedded database is not polled', async () => {
    shared = await target.open();
    const [dbA, dbB] = shared.nodes;
    const masterKey = randomBytes(32).toString('hex');
    const a = await Keyring.open(dbA, dataDir(), masterKey);
    const b = await Keyring.open(dbB, dataDir(), masterKey);
    const errors: unknown[] = [];
    const stop = watchKeyring(b, dbB, 50, { error: (o: unknown) => void errors.push(o) } as never);
    try {
      if (dbB.kind === 'pglite') return void expect(stop).toBeUndefined();
      expect(stop).toBeTypeOf('function');
      const added: string[][] = [];
      b.onChange((ids) => added.push(ids));
      await a.rotate();
      await poll('node B to read the new generation', async () => added.length > 0, { tries: 400, everyMs: 50, detail: async () => ({ ids: b.ids, errors }) });
      expect([added, b.current, b.dovecotKeys().map((k) => k.id), errors]).toEqual([[['k2']], 'k2', ['k2', 'k1'], []]);
    } finally {
      stop?.();
    }
  });
});
