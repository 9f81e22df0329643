// The stand-in DMP and the ITI-41 client against each other over real HTTP on 127.0.0.1:
// every answer the client reports is what the server's RegistryResponse (or fault) said.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../core/logger.js';
import { freePort } from '../../core/net.js';
import { writeSubmitObjectsRequest } from '../../dmp/ebrim.js';
import { sendProvideAndRegister, submitToDmp } from '../../dmp/iti41/client.js';
import { buildRelated } from '../../dmp/iti41/mime.js';
import { ITI41_ACTION, envelope, readAnswer } from '../../dmp/iti41/soap.js';
import { NS } from '../../dmp/iti41/xml.js';
import { startStandinDmp, type StandinDmp } from '../../dmp/standin/index.js';
import type { Submission } from '../../dmp/types.js';
import { sampleSubmission } from '../fixtures/dmp/sample.js';
import { testPki } from '../helpers/pki.js';

let dmp: StandinDmp;
let counter = 0;

/** The sample submission with unique ids of its own (the registry never takes a uniqueId twice). */
function fresh(count = 1): Submission {
  const s = sampleSubmission(count);
  const n = ++counter;
  s.set.uniqueId = `${s.set.uniqueId}.${n}`;
  for (const d of s.documents) d.uniqueId = `${d.uniqueId}.${n}`;
  return s;
}

const docsOf = (s: Submission) => s.documents.map((d) => ({ id: d.entryUuid, mimeType: d.mimeType, bytes: s.contents.get(d.entryUuid)! }));
const sorOf = (s: Submission) => writeSubmitObjectsRequest({ set: s.set, documents: s.documents });
const opts = { timeoutMs: 10_000 };

beforeAll(async () => {
  dmp = await startStandinDmp({ host: '127.0.0.1', port: 0, log: silentLogger });
});
afterAll(async () => {
  await dmp?.stop();
});

describe('stand-in DMP: accepted submissions', () => {
  it('answers Success to a correct submission and keeps it, bytes and metadata as sent', async () => {
    const sub = fresh(2);
    const before = dmp.submissions().length;
    const r = await submitToDmp(dmp.url, sub, opts);
    expect(r).toEqual({ status: 'success', errors: [], httpStatus: 200, requestId: expect.stringMatching(/^urn:uuid:/) });
    const all = dmp.submissions();
    expect(all).toHaveLength(before + 1);
    const got = all.at(-1)!;
    expect(got.requestId).toBe(r.requestId);
    expect(got.set).toEqual(sub.set);
    expect(got.documents).toEqual(sub.documents);
    for (const d of sub.documents) expect(got.contents.get(d.entryUuid)!.equals(sub.contents.get(d.entryUuid)!)).toBe(true);

    const listed = (await (await fetch(dmp.url.replace('/dmp/iti41', '/dmp/submissions'))).json()) as Array<{ requestId: string; documents: Array<{ uniqueId: string }> }>;
    expect(listed.at(-1)!.requestId).toBe(r.requestId);
    expect(listed.at(-1)!.documents.map((d) => d.uniqueId)).toEqual(sub.documents.map((d) => d.uniqueId));
  });

  it('takes documents without hash and size (the repository computes them)', async () => {
    const sub = fresh(1);
    sub.documents[0]!.hash = '';
    sub.documents[0]!.size = -1;
    const r = await submitToDmp(dmp.url, sub, opts);
    expect(r.status).toBe('success');
  });
});

describe('stand-in DMP over https', () => {
  it('is reached with the platform CA, and refused without it', async () => {
    const pki = await testPki();
    const leaf = pki.paths.leaves.server;
    const secure = await startStandinDmp({ log: silentLogger, tls: { cert: readFileSync(leaf.cert, 'utf8') + readFileSync(pki.paths.intermediate, 'utf8'), key: readFileSync(leaf.key) } });
    try {
      expect(secure.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/dmp\/iti41$/);
      const ok = await submitToDmp(secure.url, fresh(1), { ...opts, tls: { ca: readFileSync(pki.paths.ca) } });
      expect(ok).toMatchObject({ status: 'success', httpStatus: 200 });
      expect(secure.submissions()).toHaveLength(1);
      const untrusted = await submitToDmp(secure.url, fresh(1), opts);
      expect(untrusted).toMatchObject({ status: 'failure', httpStatus: 0, errors: [{ code: 'DMP_UNREACHABLE', context: expect.stringMatching(/certificate/i) }] });
      expect(secure.submissions()).toHaveLength(1);
    } finally {
      await secure.stop();
    }
  });
});

describe('stand-in DMP: refusals, each with its XDS error code', () => {
  const refused = async (sor: string, documents: ReturnType<typeof docsOf>) => {
    const before = dmp.submissions().length;
    const r = await sendProvideAndRegister(dmp.url, { submitObjectsRequest: sor, documents }, opts);
    expect(r.status).toBe('failure');
    expect(r.httpStatus).toBe(200);
    expect(dmp.submissions()).toHaveLength(before); // nothing kept
    return r.errors;
  };

  it('XDSNonIdenticalHash and XDSNonIdenticalSize when the bytes are not the ones described', async () => {
    const sub = fresh(1);
    const d = sub.documents[0]!;
    d.hash = createHash('sha1').update('other bytes').digest('hex');
    d.size += 1;
    const errors = await refused(sorOf(sub), docsOf(sub));
    expect(errors.map((e) => e.code)).toEqual(['XDSNonIdenticalHash', 'XDSNonIdenticalSize']);
    expect(errors[0]).toMatchObject({ severity: 'error', location: 'Document01' });
    expect(errors[0]!.context).toContain(d.hash);
    expect(errors[1]!.context).toContain(`size ${d.size}`);
  });

  it('XDSMissingDocument when a document is described but not attached, or its xop:Include names no part', async () => {
    const sub = fresh(2);
    expect((await refused(sorOf(sub), docsOf(sub).slice(0, 1))).map((e) => [e.code, e.location])).toEqual([['XDSMissingDocument', 'Document02']]);

    // An xop:Include to a part the message does not carry.
    const sub1 = fresh(1);
    const xml = envelope(
      { action: ITI41_ACTION, messageId: 'urn:uuid:00000000-0000-4000-8000-000000000001', to: dmp.url },
      `<xdsb:ProvideAndRegisterDocumentSetRequest xmlns:xdsb="${NS.xdsb}">${sorOf(sub1).replace(/^<\?xml[^>]*\?>\s*/, '')}<xdsb:Document id="Document01"><xop:Include xmlns:xop="${NS.xop}" href="cid:missing@x"/></xdsb:Document></xdsb:ProvideAndRegisterDocumentSetRequest>`,
    );
    const m = buildRelated([{ contentType: 'application/xop+xml; charset=UTF-8; type="application/soap+xml"', contentId: 'root@x', body: Buffer.from(xml) }], { type: 'application/xop+xml', startInfo: 'application/soap+xml' });
    const res = await fetch(dmp.url, { method: 'POST', headers: { 'content-type': m.contentType }, body: m.body });
    expect(res.status).toBe(200);
    const answer = readAnswer(Buffer.from(await res.arrayBuffer()), res.headers.get('content-type') ?? undefined);
    expect(answer).toMatchObject({ kind: 'registry', status: 'failure', relatesTo: 'urn:uuid:00000000-0000-4000-8000-000000000001' });
    expect(answer.kind === 'registry' && answer.errors).toEqual([
      { code: 'XDSMissingDocument', context: 'document Document01 (' + sub1.documents[0]!.uniqueId + ') is not attached: the xop:Include names the part <missing@x>, which the message does not carry', severity: 'error', location: 'Document01' },
    ]);
  });

  it('XDSMissingDocumentMetadata for an attached document the metadata does not describe', async () => {
    const sub = fresh(1);
    const errors = await refused(sorOf(sub), [...docsOf(sub), { id: 'Extra01', mimeType: 'text/plain', bytes: Buffer.from('x') }]);
    expect(errors.map((e) => [e.code, e.location])).toEqual([['XDSMissingDocumentMetadata', 'Extra01']]);
  });

  it('XDSPatientIdDoesNotMatch when a document belongs to another patient than the set', async () => {
    const sub = fresh(2);
    // The writer refuses this (one patient per submission), so the metadata is edited after writing.
    const ok = await submitToDmp(dmp.url, { ...sub, documents: sub.documents.map((d, i) => (i === 1 ? { ...d, patientId: { id: '180012345678901', oid: d.patientId.oid } } : d)) }, opts);
    expect(ok.status).toBe('failure');
    expect(ok.errors[0]!.code).toBe('XDS_METADATA_INVALID'); // refused by our own writer, never sent
    const sor = sorOf(sub);
    const docPatient = new RegExp(`(identificationScheme="urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"[^>]*value=")279035121518989(\\^)`, 'g');
    let k = 0;
    const edited = sor.replace(docPatient, (all, a: string, b: string) => (++k === 2 ? `${a}180012345678901${b}` : all));
    expect(k).toBe(2);
    const errors = await refused(edited, docsOf(sub));
    expect(errors.map((e) => [e.code, e.location])).toEqual([['XDSPatientIdDoesNotMatch', 'Document02']]);
    expect(errors[0]!.context).toContain('180012345678901');
  });

  it('XDSUnknownPatientId when the patient id is not an INS', async () => {
    const sub = fresh(1);
    sub.set.patientId = { id: '12345', oid: '1.2.250.1.999.7' };
    sub.documents[0]!.patientId = { id: '12345', oid: '1.2.250.1.999.7' };
    const errors = await refused(sorOf(sub), docsOf(sub));
    expect(errors.map((e) => e.code)).toEqual(['XDSUnknownPatientId', 'XDSUnknownPatientId']);
    expect(errors[1]!.context).toMatch(/1\.2\.250\.1\.999\.7, which is not an INS authority/);
  });

  it('XDSRegistryMetadataError: no RPPS author, a creation time that is no date, a missing classCode, no HasMember', async () => {
    const sub = fresh(1);
    sub.documents[0]!.authors = [{ person: '12345^DOE^John^^^^^^&1.2.250.1.999.1&ISO', institution: ['LABO^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^312345'] }];
    sub.documents[0]!.creationTime = '20241341120000';
    let errors = await refused(sorOf(sub), docsOf(sub));
    expect(errors.map((e) => e.code)).toEqual(['XDSRegistryMetadataError', 'XDSRegistryMetadataError']);
    expect(errors[0]!.context).toMatch(/no author identified by a national professional id/);
    expect(errors[1]!.context).toMatch(/creationTime "20241341120000" is not a real date-time/);

    const good = fresh(1);
    const noClass = sorOf(good).replace('classificationScheme="urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"', 'classificationScheme="urn:uuid:00000000-0000-0000-0000-000000000000"');
    errors = await refused(noClass, docsOf(good));
    expect(errors.map((e) => [e.code, e.location])).toEqual([['XDSRegistryMetadataError', 'Document01']]);
    expect(errors[0]!.context).toMatch(/classCode/);

    const noMember = sorOf(good).replace(/<rim:Association [\s\S]*?<\/rim:Association>/, '');
    errors = await refused(noMember, docsOf(good));
    expect(errors.map((e) => [e.code, e.location])).toEqual([['XDSRegistryMetadataError', 'Document01']]);
    expect(errors[0]!.context).toMatch(/no HasMember association/);
  });

  it('XDSDuplicateUniqueIdInRegistry when the same documents come again', async () => {
    const sub = fresh(1);
    expect((await submitToDmp(dmp.url, sub, opts)).status).toBe('success');
    const again = await submitToDmp(dmp.url, sub, opts);
    expect(again.status).toBe('failure');
    expect(again.errors.map((e) => e.code)).toEqual(['XDSDuplicateUniqueIdInRegistry', 'XDSDuplicateUniqueIdInRegistry']);
  });
});

describe('stand-in DMP: what is not ITI-41 SOAP gets a SOAP fault', () => {
  const post = async (body: string | Buffer, contentType?: string) => {
    const res = await fetch(dmp.url, { method: 'POST', headers: contentType ? { 'content-type': contentType } : {}, body });
    const bytes = Buffer.from(await res.arrayBuffer());
    return { status: res.status, type: res.headers.get('content-type') ?? '', answer: readAnswer(bytes, res.headers.get('content-type') ?? undefined) };
  };

  it('415 for a body that is not SOAP, 400 for broken or hostile SOAP', async () => {
    const plain = await post('hello', 'text/plain');
    expect(plain.status).toBe(415);
    expect(plain.type).toMatch(/^application\/soap\+xml/);
    expect(plain.answer).toMatchObject({ kind: 'fault', code: 'Sender', reason: expect.stringMatching(/not text\/plain/) });

    const json = await post('{"a":1}', 'application/json');
    expect(json.status).toBe(415);

    const broken = await post('<soap:Envelope', 'application/soap+xml');
    expect([broken.status, broken.answer.kind === 'fault' && broken.answer.reason]).toEqual([400, expect.stringMatching(/not well-formed/)]);

    const xxe = await post(`<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]><soap:Envelope xmlns:soap="${NS.soap12}"><soap:Body>&x;</soap:Body></soap:Envelope>`, 'application/soap+xml');
    expect([xxe.status, xxe.answer.kind === 'fault' && xxe.answer.reason]).toEqual([400, expect.stringMatching(/DTD/)]);

    const noMessageId = await post(`<soap:Envelope xmlns:soap="${NS.soap12}" xmlns:wsa="${NS.wsa}"><soap:Header><wsa:Action>${ITI41_ACTION}</wsa:Action></soap:Header><soap:Body><xdsb:ProvideAndRegisterDocumentSetRequest xmlns:xdsb="${NS.xdsb}"><lcm:SubmitObjectsRequest xmlns:lcm="${NS.lcm}"/></xdsb:ProvideAndRegisterDocumentSetRequest></soap:Body></soap:Envelope>`, 'application/soap+xml');
    expect([noMessageId.status, noMessageId.answer.kind === 'fault' && noMessageId.answer.reason]).toEqual([400, expect.stringMatching(/MessageID header is missing/)]);
  });

  it('413 with a fault for a body past the limit', async () => {
    const small = await startStandinDmp({ log: silentLogger, maxBodyBytes: 2048 });
    try {
      const r = await submitToDmp(small.url, fresh(1), opts);
      expect(r).toMatchObject({ status: 'failure', httpStatus: 413 });
      expect(r.errors[0]!.code).toBe('soap:Sender');
    } finally {
      await small.stop();
    }
  });
});

describe('ITI-41 client: every failure is an outcome', () => {
  let other: Server;
  let otherUrl: string;
  let answer: (res: import('node:http').ServerResponse) => void = () => {};

  beforeAll(async () => {
    other = createServer((req, res) => {
      req.resume();
      req.on('end', () => answer(res));
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    otherUrl = `http://127.0.0.1:${(other.address() as AddressInfo).port}/dmp`;
  });
  afterAll(async () => {
    other.closeAllConnections();
    await new Promise((r) => other.close(r));
  });

  it('a non-SOAP answer', async () => {
    answer = (res) => res.writeHead(502, { 'content-type': 'text/html' }).end('<html><body>Bad gateway</body></html>');
    const r = await submitToDmp(otherUrl, fresh(1), opts);
    expect(r).toMatchObject({ status: 'failure', httpStatus: 502 });
    expect(r.errors).toEqual([{ code: 'DMP_BAD_ANSWER', severity: 'error', context: expect.stringMatching(/answered HTTP 502 \(text\/html\) that is not an ITI-41 answer: .*text\/html.*; it starts with "<html><body>Bad gateway/) }]);
  });

  it('an answer to another request', async () => {
    answer = (res) =>
      res
        .writeHead(200, { 'content-type': 'application/soap+xml' })
        .end(envelope({ action: 'x', messageId: 'urn:uuid:9', relatesTo: 'urn:uuid:someone-else' }, `<rs:RegistryResponse xmlns:rs="${NS.rs}" status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"/>`));
    const r = await submitToDmp(otherUrl, fresh(1), opts);
    expect(r.status).toBe('failure');
    expect(r.errors[0]!.context).toMatch(/relates to urn:uuid:someone-else, not to this request/);
  });

  it('an answer too large to be a RegistryResponse', async () => {
    answer = (res) => res.writeHead(200, { 'content-type': 'application/soap+xml' }).end(Buffer.alloc(64 * 1024, 0x20));
    const r = await submitToDmp(otherUrl, fresh(1), { ...opts, maxAnswerBytes: 16 * 1024 });
    expect(r).toMatchObject({ status: 'failure', errors: [{ code: 'DMP_BAD_ANSWER', context: expect.stringMatching(/more than 16384 bytes/) }] });
  });

  it('no answer in time', async () => {
    answer = () => {}; // never answers
    const r = await submitToDmp(otherUrl, fresh(1), { timeoutMs: 300 });
    expect(r).toMatchObject({ status: 'failure', httpStatus: 0, errors: [{ code: 'DMP_TIMEOUT', context: expect.stringMatching(/no answer within 300 ms/) }] });
  });

  it('nobody listening, a bad endpoint, metadata our writer refuses', async () => {
    const port = await freePort();
    const r = await submitToDmp(`http://127.0.0.1:${port}/dmp/iti41`, fresh(1), opts);
    expect(r).toMatchObject({ status: 'failure', httpStatus: 0, errors: [{ code: 'DMP_UNREACHABLE', context: expect.stringMatching(/ECONNREFUSED/) }] });
    expect((await submitToDmp('ftp://dmp.example/', fresh(1), opts)).errors[0]!.code).toBe('DMP_ENDPOINT_INVALID');
    const bad = fresh(1);
    bad.documents[0]!.classCode = { code: '', scheme: '' };
    expect((await submitToDmp(dmp.url, bad, opts)).errors[0]).toMatchObject({ code: 'XDS_METADATA_INVALID', context: expect.stringMatching(/classCode/) });
    const noBytes = fresh(1);
    noBytes.contents.clear();
    expect((await submitToDmp(dmp.url, noBytes, opts)).errors[0]!.context).toMatch(/has no content/);
  });
});
