// The webmail API started beside a test operator, wired the way bin/platform.ts wires it:
// the annuaire's credential and session functions, the operator's IMAP proxy, submission
// and LDAP directory. Also a small HTTPS client that trusts the test PKI.
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { balsFor, checkCredentials, closeSession, openSession, sessionPerson } from '../../annuaire/bal/index.js';
import { loadTlsMaterial } from '../../certs/tls.js';
import type { Config } from '../../core/config/index.js';
import { silentLogger } from '../../core/logger.js';
import type { PersonAuth, PersonPrincipal } from '../../core/policy/index.js';
import { startWebmail, type WebmailDeps, type WebmailService } from '../../webmail-api/index.js';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import { simpleParser, type ParsedMail } from 'mailparser';
import { expect } from 'vitest';
import type { TestOperator } from '../helpers/operator.js';
import { webmailDmpDeps } from '../../bin/webmail-dmp.js';
import { documentsOfMessage } from '../../dmp/documents.js';
import { xdmLimits } from '../../dmp/xdm/read.js';

export function webmailDepsFrom(op: TestOperator, config: Config = op.config): WebmailDeps {
  const { db, journal } = op.platform;
  const ca = [readFileSync(config.tls.caFile, 'utf8')];
  const life = { ttlMs: config.webmail.tokenTtl, maxAgeMs: config.webmail.maxTokenAge };
  const ldapUrl = op.platform.directory?.endpoints.find((e) => e.url.startsWith('ldap://'))?.url;
  return {
    log: silentLogger,
    journal,
    tls: loadTlsMaterial(config),
    checkPassword: (user, secret) => checkCredentials(db, user, secret),
    throttle: op.platform.throttle,
    openSession: (p) => openSession(db, p, life),
    async verifySession(token) {
      const s = await sessionPerson(db, token, life);
      return s ? ({ kind: 'person', id: String(s.row.id), login: s.row.login, idnps: s.row.idnps, auth: s.auth as PersonAuth } satisfies PersonPrincipal) : null;
    },
    closeSession: (token) => closeSession(db, token),
    balsFor: async (p) => (await balsFor(db, p)).map((b) => ({ address: b.address, type: b.type, description: b.description })),
    // Reached on loopback, checked against the operator's name (what a production certificate carries).
    imap: { host: '127.0.0.1', port: op.platform.imap!.ports.imaps, ca, servername: config.operator.hostname },
    submission: { host: '127.0.0.1', port: op.platform.smtp!.ports.submissions, ca, servername: config.operator.hostname },
    ...(ldapUrl ? { ldap: { url: ldapUrl.replace(/^(ldaps?:\/\/[^/]+).*$/, '$1'), baseDn: config.ldap.baseDn, ca, servername: config.operator.hostname } } : {}),
  };
}

export async function startTestWebmail(op: TestOperator, extra: Partial<WebmailDeps> = {}, webmail: Partial<Config['webmail']> = {}): Promise<WebmailService> {
  const config = { ...op.config, webmail: { ...op.config.webmail, port: 0, ...webmail } };
  return startWebmail(config, { ...webmailDepsFrom(op, config), ...extra });
}

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json(): any;
}

/** One HTTPS request to the API, trusting the given CA. */
export function call(base: string, ca: string, method: string, path: string, o: { token?: string; json?: unknown; body?: Buffer; contentType?: string } = {}): Promise<Reply> {
  const u = new URL(path, base);
  const body = o.json !== undefined ? Buffer.from(JSON.stringify(o.json)) : o.body;
  const headers: Record<string, string> = {};
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  if (body) {
    headers['content-type'] = o.json !== undefined ? 'application/json' : (o.contentType ?? 'application/octet-stream');
    headers['content-length'] = String(body.length);
  }
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers, ca, servername: 'localhost' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const b = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b, json: () => JSON.parse(b.toString('utf8')) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A multipart/form-data body as a browser's FormData would send it. */
export async function formData(fields: Record<string, string | string[]>, files: Array<{ name: string; filename: string; type: string; content: Buffer }>): Promise<{ body: Buffer; contentType: string }> {
  const f = new FormData();
  for (const [k, v] of Object.entries(fields)) for (const x of Array.isArray(v) ? v : [v]) f.append(k, x);
  for (const x of files) f.append(x.name, new Blob([x.content], { type: x.type }), x.filename);
  const r = new Response(f);
  return { body: Buffer.from(await r.arrayBuffer()), contentType: r.headers.get('content-type')! };
}

/** The webmail's clinical-document functions wired to the operator's own DMP parts, as bin/platform.ts wires them. */
export function dmpDepsOf(op: TestOperator): Partial<WebmailDeps> {
  const dmp = op.platform.dmp!;
  return webmailDmpDeps({ db: op.platform.db, journal: op.platform.journal, policy: op.platform.policy, handoff: dmp.handoff, documentsOf: (raw) => documentsOfMessage(raw, xdmLimits(op.config)) });
}

/** A message as nodemailer builds it (raw RFC 5322 bytes). */
export const mime = (o: ConstructorParameters<typeof MailComposer>[0]) => new MailComposer(o).compile().build();

/** A problem+json answer with this status and catalogue title; its body. */
export function expectProblem(r: Reply, status: number, title: string): { detail: string } {
  expect(r.status, r.body.toString()).toBe(status);
  expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(r.json()).toMatchObject({ status, title, type: `urn:mss:error:${title.toLowerCase().replace(/_/g, '-')}` });
  return r.json() as { detail: string };
}

/**
 * Every message of a folder, parsed, read over IMAP as the Dovecot master user (not through
 * the API under test). `folder` may be a special use (`\\Drafts`); a folder that does not
 * exist (yet) holds nothing.
 */
export async function folderMessages(op: TestOperator, address: string, folder = 'INBOX'): Promise<Array<{ uid: number; flags: string[]; mail: ParsedMail }>> {
  const c = await op.imap(address);
  try {
    const list = await c.list();
    const path = folder.startsWith('\\') ? list.find((f) => f.specialUse === folder)?.path : list.find((f) => f.path === folder)?.path;
    if (!path) return [];
    await c.mailboxOpen(path);
    const out: Array<{ uid: number; flags: string[]; mail: ParsedMail }> = [];
    for await (const m of c.fetch('1:*', { uid: true, source: true, flags: true })) out.push({ uid: m.uid, flags: [...(m.flags ?? [])], mail: await simpleParser(m.source!) });
    return out;
  } finally {
    await c.logout();
  }
}
