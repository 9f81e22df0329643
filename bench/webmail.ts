// bench/webmail: what a web or DPI client waits for, next to what an IMAP client waits for
// doing the same through the same IMAP proxy, in one run.
//   list-50  the 50 newest messages of a mailbox of --messages (envelope, flags, size, structure)
//   read     one message, parsed (headers, text, HTML, attachment list)
// Each of --clients clients logs in once (not timed), then alternates list-50 and read for
// --rounds rounds; latencies are gathered per operation, p50 / p95 printed side by side:
//   webmail API   HTTPS + JSON → webmail-api → IMAP proxy (session token) → Dovecot
//   imapflow      IMAPS → IMAP proxy (password) → Dovecot; the read is parsed with mailparser
//                 as the webmail does, so both sides do the same work for the person
// The clients run in a child process (they would be other machines), the platform in this
// one (startPlatform: PGlite by default, PostgreSQL with MSS_DATABASE_URL). Loopback only.
//
//   node dist/bench/webmail.js [--clients 100] [--rounds 10] [--messages 500]
import { fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ImapFlow } from 'imapflow';
import { simpleParser } from 'mailparser';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import { operatorBalContext } from '../annuaire/admin/wiring.js';
import { createBal, createPerson } from '../annuaire/bal/index.js';
import { DEV_RPPS } from '../certs/pki.js';
import { loadConfig } from '../core/config/index.js';
import { silentLogger } from '../core/logger.js';
import { deliverLmtp } from '../mailstore/lmtp.js';
import { startPlatform } from '../bin/platform.js';

const { values: args } = parseArgs({
  options: {
    clients: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '10' },
    messages: { type: 'string', default: '500' },
    child: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  process.stdout.write('usage: node dist/bench/webmail.js [--clients 100] [--rounds 10] [--messages 500]\n  MSS_DATABASE_URL=postgres://… to run the platform on PostgreSQL instead of PGlite\n');
  process.exit(0);
}

const DOMAIN = 'mssante.localhost';
const BOX = `jeanne.martin@${DOMAIN}`;
const LOGIN = 'jeanne.martin';
const PASSWORD = 'correct horse battery staple';

interface Job {
  mode: 'webmail' | 'imapflow';
  clients: number;
  rounds: number;
  ca: string;
  webmail: string;
  imap: { host: string; port: number };
  uids: number[];
}
type Samples = { list: number[]; read: number[]; errors: number; firstError?: string };

// ---------------------------------------------------------------- the clients (child process)

function https(base: string, ca: string, method: string, path: string, token?: string, json?: unknown): Promise<{ status: number; body: string }> {
  const u = new URL(path, base);
  const body = json === undefined ? undefined : Buffer.from(JSON.stringify(json));
  return new Promise((resolve, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, path: u.pathname + u.search, method, ca, servername: 'localhost', agent: keepAlive(ca), headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json', 'content-length': String(body.length) } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
// A browser keeps its HTTPS connection open; so do these clients.
let agent: Agent | undefined;
const keepAlive = (ca: string) => (agent ??= new Agent({ keepAlive: true, maxSockets: 1024, ca }));

async function runClients(job: Job): Promise<Samples> {
  const out: Samples = { list: [], read: [], errors: 0 };
  const pick = () => job.uids[Math.floor(Math.random() * job.uids.length)];
  const timed = async (into: number[], fn: () => Promise<void>) => {
    const t0 = performance.now();
    try {
      await fn();
      into.push(performance.now() - t0);
    } catch (e) {
      out.errors++;
      out.firstError ??= (e as Error).message;
    }
  };
  const box = encodeURIComponent(BOX);
  const client = async () => {
    if (job.mode === 'webmail') {
      const r = await https(job.webmail, job.ca, 'POST', '/api/v1/login', undefined, { login: LOGIN, password: PASSWORD });
      if (r.status !== 200) throw new Error(`login: ${r.status} ${r.body}`);
      const token = JSON.parse(r.body).token as string;
      const ok = async (path: string) => {
        const a = await https(job.webmail, job.ca, 'GET', path, token);
        if (a.status !== 200) throw new Error(`${path}: ${a.status} ${a.body.slice(0, 200)}`);
        return a.body;
      };
      // Opening the box (the API's IMAP login for this session) is not timed, as the IMAP side's connect is not.
      await ok(`/api/v1/bals/${box}/folders`);
      for (let i = 0; i < job.rounds; i++) {
        await timed(out.list, async () => void JSON.parse(await ok(`/api/v1/bals/${box}/folders/INBOX/messages?pageSize=50`)));
        await timed(out.read, async () => void JSON.parse(await ok(`/api/v1/bals/${box}/messages/INBOX/${pick()}?markSeen=false`)));
      }
    } else {
      const c = new ImapFlow({ host: job.imap.host, port: job.imap.port, secure: true, tls: { ca: job.ca, servername: 'localhost' }, auth: { user: BOX, pass: PASSWORD }, logger: false });
      await c.connect();
      await c.mailboxOpen('INBOX', { readOnly: true });
      try {
        for (let i = 0; i < job.rounds; i++) {
          await timed(out.list, async () => {
            const n = c.mailbox ? c.mailbox.exists : 0;
            const rows = [];
            for await (const m of c.fetch(`${Math.max(1, n - 49)}:${n}`, { uid: true, flags: true, envelope: true, internalDate: true, size: true, bodyStructure: true })) rows.push(m);
            JSON.stringify(rows.reverse().map((m) => ({ uid: m.uid, subject: m.envelope?.subject, from: m.envelope?.from, date: m.internalDate, size: m.size })));
          });
          await timed(out.read, async () => {
            const m = await c.fetchOne(String(pick()), { source: true }, { uid: true });
            if (!m || !m.source) throw new Error('no such message');
            const p = await simpleParser(m.source);
            JSON.stringify({ subject: p.subject, text: p.text, html: p.html, attachments: p.attachments.map((a) => ({ filename: a.filename, size: a.size })) });
          });
        }
      } finally {
        await c.logout().catch(() => c.close());
      }
    }
  };
  const results = await Promise.allSettled(Array.from({ length: job.clients }, client));
  for (const r of results)
    if (r.status === 'rejected') {
      out.errors++;
      out.firstError ??= (r.reason as Error).message;
    }
  agent?.destroy();
  return out;
}

// ---------------------------------------------------------------- the platform (this process)

function inChild(job: Job): Promise<Samples> {
  return new Promise((resolve, reject) => {
    const child = fork(new URL(import.meta.url).pathname, ['--child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.once('message', (m: { ok: boolean; r?: Samples; error?: string }) => {
      child.kill();
      if (m.ok) resolve(m.r!);
      else reject(new Error(m.error));
    });
    child.once('exit', (code) => code && reject(new Error(`client process exited with ${code}`)));
    child.send(job);
  });
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN;
};
const ms = (x: number) => `${x.toFixed(1).padStart(7)} ms`;

async function main() {
  const clients = Number(args.clients);
  const rounds = Number(args.rounds);
  const messages = Number(args.messages);
  const dataDir = mkdtempSync(join(tmpdir(), 'mss-bench-webmail-'));
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (k === 'MSS_DATABASE_URL' && v) env[k] = v;
  const config = loadConfig({
    env,
    overrides: {
      dataDir,
      http: { port: 0 },
      pki: { keyBits: 2048 },
      ldap: { port: 0, ldapsPort: 0 },
      admin: { enabled: false },
      smtp: { mxPort: 0, submissionPort: 0, submissionsPort: 0 },
      // Every client comes from 127.0.0.1 here, the API's own connections too: lift the per-address cap.
      imap: { port: 0, starttlsPort: 0, maxPreAuthPerSource: 10_000 },
      webmail: { port: 0 },
      dmp: { standin: false },
    },
  });
  process.stdout.write(`bench/webmail — ${clients} clients × ${rounds} rounds of (list-50, read) on a mailbox of ${messages} messages; database ${config.database.url ? 'PostgreSQL' : 'PGlite'}\n`);
  const platform = await startPlatform(config, silentLogger);
  try {
    const ctx = operatorBalContext(config, platform.db, platform.journal);
    await createPerson(ctx, { login: LOGIN, idnps: DEV_RPPS, nom: 'MARTIN', prenom: 'Jeanne', password: PASSWORD }, 'bench');
    await createBal(ctx, { address: BOX, type: 'PER', owner: DEV_RPPS }, 'bench');
    await platform.directory?.sync();
    const t0 = performance.now();
    const pdf = Buffer.alloc(20_000, 'x');
    for (let i = 0; i < messages; i++) {
      const raw = await new MailComposer({
        from: `Dr Correspondant ${i % 17} <correspondant${i % 17}@chu-exemple.mssante.fr>`,
        to: BOX,
        subject: `Compte rendu de consultation n° ${i} — patient ${['DUPONT', 'MARTIN', 'BERNARD', 'PETIT'][i % 4]}`,
        text: `Chère consœur,\n\n${'Voici le compte rendu de la consultation de ce jour. '.repeat(20)}\n\nBien confraternellement`,
        html: `<p>Chère consœur,</p><p>${'Voici le compte rendu de la consultation de ce jour. '.repeat(20)}</p><p>Bien confraternellement</p>`,
        date: new Date(Date.now() - (messages - i) * 60_000),
        ...(i % 5 === 0 ? { attachments: [{ filename: `cr-${i}.pdf`, content: pdf, contentType: 'application/pdf' }] } : {}),
      })
        .compile()
        .build();
      await deliverLmtp(platform.mailstore.lmtp, { from: 'correspondant@chu-exemple.mssante.fr', to: [BOX] }, raw);
    }
    process.stdout.write(`  mailbox filled over LMTP in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);

    const job = {
      clients,
      rounds,
      ca: readFileSync(config.tls.caFile, 'utf8'),
      webmail: platform.webmail!.url,
      imap: { host: '127.0.0.1', port: platform.imap!.ports.imaps },
      uids: Array.from({ length: messages }, (_, i) => i + 1),
    };
    // Alternate the two sides, twice, so drift in the machine's load hits both.
    const got: Record<'webmail' | 'imapflow', Samples> = { webmail: { list: [], read: [], errors: 0 }, imapflow: { list: [], read: [], errors: 0 } };
    for (const mode of ['imapflow', 'webmail', 'webmail', 'imapflow'] as const) {
      const s = await inChild({ ...job, mode, rounds: Math.ceil(rounds / 2) });
      got[mode].list.push(...s.list);
      got[mode].read.push(...s.read);
      got[mode].errors += s.errors;
      got[mode].firstError ??= s.firstError;
      process.stdout.write(`  … ${mode} pass done (load ${loadavg()[0].toFixed(2)})\n`);
    }
    process.stdout.write(`\n${clients} concurrent clients                     list-50 p50      p95        read p50      p95     errors\n`);
    for (const mode of ['webmail', 'imapflow'] as const) {
      const s = got[mode];
      const label = mode === 'webmail' ? 'webmail API (HTTPS → IMAP proxy)' : 'imapflow directly to the IMAP proxy';
      process.stdout.write(`  ${label.padEnd(38)} ${ms(pct(s.list, 50))} ${ms(pct(s.list, 95))}   ${ms(pct(s.read, 50))} ${ms(pct(s.read, 95))}   ${s.errors}${s.firstError ? ` (${s.firstError.slice(0, 120)})` : ''}\n`);
    }
    const w = got.webmail;
    const d = got.imapflow;
    process.stdout.write(
      `  ratio webmail / imapflow                 ${(pct(w.list, 50) / pct(d.list, 50)).toFixed(2)}×  ${(pct(w.list, 95) / pct(d.list, 95)).toFixed(2)}×        ${(pct(w.read, 50) / pct(d.read, 50)).toFixed(2)}×  ${(pct(w.read, 95) / pct(d.read, 95)).toFixed(2)}×\n`,
    );
    process.stdout.write(`  samples: ${w.list.length + w.read.length} webmail, ${d.list.length + d.read.length} imapflow; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}\n`);
  } finally {
    await platform.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (args.child) {
  process.on('message', (job: Job) => {
    runClients(job).then(
      (r) => process.send!({ ok: true, r }),
      (e) => process.send!({ ok: false, error: (e as Error).stack }),
    );
  });
} else {
  await main();
}
