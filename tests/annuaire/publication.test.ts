import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../core/db/index.js';
import { Journal } from '../../core/journal/index.js';
import { closeBal, createBal, reopenBal, updateBal, type BalContext } from '../../annuaire/bal/index.js';
import { enqueuePublication, listPublications, publicationFor, sendDuePublications, URL_MAILBOX_METADATA } from '../../annuaire/publication/index.js';
import { dbTargets } from '../helpers/db.js';

describe('publication payloads (FHIR Patch Parameters)', () => {
  const base = {
    id: 1,
    domain: 'a.fr',
    structureId: null,
    displayName: null,
    rank: null,
    status: 'active' as const,
    createdAt: new Date(),
    closedAt: null,
    reopenedAt: null,
    updatedAt: new Date(),
    version: 1,
    members: [],
    certificates: [],
    description: 'Secrétariat',
    service: 'Cardiologie',
    responsible: 'Dr Martin',
    listeRouge: false,
  };

  it('a new PER box is an insert into Practitioner.telecom, found by IDNPS; PER carries no description', () => {
    const p = publicationFor({ kind: 'created', bal: { ...base, address: "o'neil@a.fr", type: 'PER', ownerId: '899999999901' } })!;
    expect(p.target).toBe('Practitioner?identifier=urn:oid:1.2.250.1.71.4.2.1|899999999901');
    expect(p.change).toBe('insert');
    expect(p.payload).toEqual({
      resourceType: 'Parameters',
      parameter: [
        {
          name: 'operation',
          part: [
            { name: 'type', valueCode: 'insert' },
            { name: 'path', valueString: 'Practitioner.telecom' },
            { name: 'index', valueInteger: 0 },
            {
              name: 'value',
              valueContactPoint: {
                extension: [
                  { url: 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-contact-point-email-type', valueCoding: { system: 'https://mos.esante.gouv.fr/NOS/TRE_R256-TypeMessagerie/FHIR/TRE-R256-TypeMessagerie', code: 'MSSANTE' } },
                  {
                    url: URL_MAILBOX_METADATA,
                    extension: [
                      { url: 'type', valueCodeableConcept: { coding: [{ system: 'https://mos.esante.gouv.fr/NOS/TRE_R257-TypeBAL/FHIR/TRE-R257-TypeBAL', code: 'PER' }] } },
                      { url: 'listeRouge', valueBoolean: false },
                    ],
                  },
                ],
                system: 'email',
                value: "o'neil@a.fr",
              },
            },
          ],
        },
      ],
    });
  });

  it('ORG/APP go to Organization by national structure id with description, service, responsible; close is a delete', () => {
    const bal = { ...base, address: "sec'@a.fr", type: 'ORG' as const, ownerId: '1750000001', listeRouge: true };
    const upd = publicationFor({ kind: 'updated', bal })!;
    expect(upd.target).toBe('Organization?identifier=urn:oid:1.2.250.1.71.4.2.2|1750000001');
    expect(upd.payload.parameter[0].part[1]).toEqual({ name: 'path', valueString: "Organization.telecom.where(value = 'sec\\'@a.fr')" });
    const meta = ((upd.payload.parameter[0].part[2].valueContactPoint as { extension: Array<{ extension?: unknown[] }> }).extension[1].extension as Array<{ url: string }>).map((e) => e.url);
    expect(meta).toEqual(['type', 'description', 'service', 'responsible', 'listeRouge']);
    const del = publicationFor({ kind: 'closed', bal: { ...bal, status: 'closed' } })!;
    expect(del.change).toBe('delete');
    expect(del.payload.parameter[0].part).toEqual([
      { name: 'type', valueCode: 'delete' },
      { name: 'path', valueString: "Organization.telecom.where(value = 'sec\\'@a.fr')" },
    ]);
    expect(publicationFor({ kind: 'members', bal })).toBeNull();
    expect(publicationFor({ kind: 'updated', bal: { ...bal, status: 'closed' } })).toBeNull();
  });
});

describe.each(dbTargets())('publication queue on $name', (target) => {
  let db: Db;
  let dispose: () => Promise<void>;
  let journal: Journal;
  let ctx: BalContext;
  let server: Server;
  let url: string;
  const received: Array<{ body: any; auth?: string; type?: string }> = [];
  /** Status codes the receiver answers with, in turn; 200 once exhausted. */
  let script: number[] = [];

  beforeAll(async () => {
    ({ db, dispose } = await target.open());
    journal = new Journal(db);
    ctx = { db, journal, hooks: { inTransaction: [async (tx, c) => void (await enqueuePublication(tx, c))] } };
    server = createServer(async (req: IncomingMessage, res) => {
      let body = '';
      for await (const chunk of req) body += chunk;
      const status = script.shift() ?? 200;
      if (status === 200) received.push({ body: JSON.parse(body), auth: req.headers.authorization, type: req.headers['content-type'] });
      res.writeHead(status, { 'content-type': 'application/fhir+json' }).end(status === 200 ? '{"resourceType":"Bundle","type":"transaction-response"}' : '{"resourceType":"OperationOutcome"}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/fhir`;
  });
  afterAll(async () => {
    server?.close();
    await dispose?.();
  });

  const send = (now = new Date(), extra: Partial<Parameters<typeof sendDuePublications>[2]> = {}) =>
    sendDuePublications(db, journal, { url, token: 'secret-token', maxAttempts: 3, retryBaseMs: 60_000, ...extra }, now);

  it('queues create / update / close in the change transaction and delivers them in order', async () => {
    await createBal(ctx, { address: 'secretariat@a.fr', type: 'ORG', owner: '750000001', description: 'Secrétariat' }, 'admin:root');
    await updateBal(ctx, 'secretariat@a.fr', { service: 'Cardiologie' }, 'admin:root');
    await closeBal(ctx, 'secretariat@a.fr', 'admin:root');
    expect((await listPublications(db)).map((p) => [p.change, p.balVersion, p.status])).toEqual([
      ['delete', 3, 'pending'],
      ['replace', 2, 'pending'],
      ['insert', 1, 'pending'],
    ]);
    // One per address per round: an insert is never overtaken by its own delete.
    expect(await send()).toEqual({ sent: 1, retried: 0, failed: 0 });
    expect(await send()).toEqual({ sent: 1, retried: 0, failed: 0 });
    expect(await send()).toEqual({ sent: 1, retried: 0, failed: 0 });
    expect(await send()).toEqual({ sent: 0, retried: 0, failed: 0 });
    expect(received.map((r) => r.body.entry[0].resource.parameter[0].part[0].valueCode)).toEqual(['insert', 'replace', 'delete']);
    expect(received[0]).toMatchObject({ auth: 'Bearer secret-token', type: 'application/fhir+json', body: { resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'PATCH', url: 'Organization?identifier=urn:oid:1.2.250.1.71.4.2.2|1750000001' } }] } });
    expect((await listPublications(db, { address: 'secretariat@a.fr' })).every((p) => p.status === 'sent' && p.responseStatus === 200)).toBe(true);
    expect((await journal.list({ type: 'publication.sent', subject: 'secretariat@a.fr' })).length).toBe(3);
  });

  it('retries a failed delivery after its back-off, then gives up after maxAttempts', async () => {
    await reopenBal(ctx, 'secretariat@a.fr', 'admin:root');
    const t0 = new Date();
    script = [503];
    expect(await send(t0)).toEqual({ sent: 0, retried: 1, failed: 0 });
    const [p] = await listPublications(db, { status: 'pending' });
    expect(p).toMatchObject({ attempts: 1, responseStatus: 503, lastError: expect.stringContaining('HTTP 503') });
    // Not due before its back-off…
    expect(await send(new Date(t0.getTime() + 30_000))).toEqual({ sent: 0, retried: 0, failed: 0 });
    // …delivered once it is.
    expect(await send(new Date(t0.getTime() + 61_000))).toEqual({ sent: 1, retried: 0, failed: 0 });
    expect((await listPublications(db, { address: 'secretariat@a.fr' }))[0]).toMatchObject({ status: 'sent', attempts: 2, change: 'insert' });

    await createBal(ctx, { address: 'labo@a.fr', type: 'APP', owner: '12345678901234' }, 'admin:root');
    script = [500, 500, 500];
    const far = (n: number) => new Date(t0.getTime() + n * 3_600_000);
    expect(await send(far(1))).toMatchObject({ retried: 1 });
    expect(await send(far(2))).toMatchObject({ retried: 1 });
    expect(await send(far(3))).toMatchObject({ failed: 1 });
    expect((await listPublications(db, { address: 'labo@a.fr' }))[0]).toMatchObject({ status: 'failed', attempts: 3 });
    expect((await journal.list({ type: 'publication.failed' }))[0]).toMatchObject({ subject: 'labo@a.fr', details: { status: 500, attempts: 3 } });
  });

  it('a refusal (4xx) fails at once; an unreachable endpoint is retried', async () => {
    await updateBal(ctx, 'secretariat@a.fr', { description: 'changée' }, 'admin:root');
    script = [422];
    expect(await send(new Date(Date.now() + 1000))).toEqual({ sent: 0, retried: 0, failed: 1 });
    await updateBal(ctx, 'secretariat@a.fr', { description: 'encore' }, 'admin:root');
    expect(await send(new Date(Date.now() + 1000), { url: 'http://127.0.0.1:1/unreachable' })).toEqual({ sent: 0, retried: 1, failed: 0 });
    expect((await listPublications(db, { status: 'pending' }))[0].lastError).toBeTruthy();
  });
});
