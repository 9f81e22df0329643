// What the MX and submission corpora share: sessions opened up to a given stage on the
// real listener (SmtpTalk, exact bytes), replies turned into Outcomes, and the normal
// message each front must still take after every case.
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { expect } from 'vitest';
import { SmtpTalk } from '../helpers/smtp-talk.js';
import { tlsOutcome, type Outcome } from './harness.js';
import { goodMessage, newMessageId, PEER, type Account, type HostileOperator, type KeyPair } from './platform.js';

/** "550 5.7.1 text" (the last line of a multi-line reply) → Outcome; a closed connection is code "closed". */
export function smtpOutcome(reply: string): Outcome {
  if (reply.startsWith('(connection closed)')) return { code: 'closed', text: reply.slice(19).trim() };
  const last = reply.split('\r\n').pop()!;
  const m = /^(\d{3})[ -](?:([245]\.\d{1,3}\.\d{1,3}) )?(.*)$/.exec(last);
  if (!m) return { code: 'unparsable', text: reply };
  return { code: m[1], ...(m[2] ? { enhanced: m[2] } : {}), text: m[3] };
}

export type MxStage = 'connected' | 'ehlo' | 'tls' | 'mail' | 'rcpt';
export type SubStage = 'connected' | 'ehlo' | 'tls' | 'auth' | 'mail' | 'rcpt';

/** What a case does on an open session: its last reply (or an Outcome it built itself, e.g. a failed handshake). */
export type Play = (t: SmtpTalk) => Promise<string | Outcome>;

export interface MxOptions {
  /** The certificate presented: the peer operator's by default; null: none. */
  as?: KeyPair | null;
  /** MAIL FROM at the `mail` stage (the peer's labo@ by default). */
  sender?: string;
  /** Loopback address to connect from (127.0.0.1 by default). */
  from?: string;
}

export interface SubOptions {
  /** Who logs in at the `auth` stage (jeanne by default). */
  who?: Account;
  /** A client certificate presented in the handshake (none by default). */
  as?: KeyPair;
  from?: string;
  /** 465 (implicit TLS) instead of 587. */
  implicit?: boolean;
}

export interface SmtpCtx {
  h: HostileOperator;
  /** An address of the peer operator (on the liste blanche). */
  peerSender: string;
  /** Opens a session on the MX up to `stage` — each step's reply checked —, plays the case on it, closes it. */
  mx(stage: MxStage, play: Play, o?: MxOptions): Promise<Outcome>;
  /** The same on submission: `auth` logs in with AUTH PLAIN, `mail` sends MAIL FROM the person's own box, `rcpt` adds paul. */
  sub(stage: SubStage, play: Play, o?: SubOptions): Promise<Outcome>;
  /** Raw bytes to a port, every byte received until the server closes or `until` matches. */
  raw(port: number, bytes: Buffer | string, until: RegExp, tls?: ConnectionOptions): Promise<string>;
}

export const plainAuth = (user: string, pass: string, authzid = '') => Buffer.from(`${authzid}\0${user}\0${pass}`).toString('base64');

export function smtpCtx(h: HostileOperator): SmtpCtx {
  const peerSender = `labo@${PEER}`;
  const step = async (t: SmtpTalk, line: string, want: RegExp) => {
    const r = await t.cmd(line);
    if (!want.test(r)) throw new Error(`setting up the session: ${line} answered ${r}`);
  };
  const run = async (open: () => Promise<SmtpTalk>, play: Play): Promise<Outcome> => {
    const t = await open();
    try {
      const r = await play(t);
      return typeof r === 'string' ? smtpOutcome(r) : r;
    } finally {
      t.close();
    }
  };
  return {
    h,
    peerSender,
    mx: (stage, play, o = {}) =>
      run(async () => {
        const t = await SmtpTalk.open(h.ports.mx, '127.0.0.1', undefined, o.from);
        if (stage === 'connected') return t;
        await step(t, 'EHLO peer.test', /^250/);
        if (stage === 'ehlo') return t;
        await t.starttls(h.tls(o.as === null ? undefined : (o.as ?? h.leaf('peer-operator'))), 'peer.test');
        if (stage === 'tls') return t;
        await step(t, `MAIL FROM:<${o.sender ?? peerSender}>`, /^250/);
        if (stage === 'mail') return t;
        await step(t, `RCPT TO:<${h.who.jeanne.address}>`, /^250/);
        return t;
      }, play),
    sub: (stage, play, o = {}) =>
      run(async () => {
        const who = o.who ?? h.who.jeanne;
        const t = o.implicit ? await SmtpTalk.open(h.ports.submissions, '127.0.0.1', h.tls(o.as), o.from) : await SmtpTalk.open(h.ports.submission, '127.0.0.1', undefined, o.from);
        if (stage === 'connected') return t;
        await step(t, 'EHLO client.test', /^250/);
        if (stage === 'ehlo') return t;
        if (!o.implicit) await t.starttls(h.tls(o.as), 'client.test');
        if (stage === 'tls') return t;
        await step(t, `AUTH PLAIN ${plainAuth(who.login, who.password)}`, /^235/);
        if (stage === 'auth') return t;
        await step(t, `MAIL FROM:<${who.address}>`, /^250/);
        if (stage === 'mail') return t;
        await step(t, `RCPT TO:<${h.who.paul.address}>`, /^250/);
        return t;
      }, play),
    raw: (port, bytes, until, tls) =>
      new Promise((resolve, reject) => {
        let got = '';
        const s = tls ? tlsConnect({ host: '127.0.0.1', port, ...tls }) : netConnect({ host: '127.0.0.1', port });
        const done = () => {
          s.destroy();
          resolve(got);
        };
        s.on(tls ? 'secureConnect' : 'connect', () => bytes.length && s.write(bytes));
        s.on('data', (d) => {
          got += d.toString('latin1');
          if (until.test(got)) done();
        });
        s.on('close', done);
        s.on('error', (e) => (got ? done() : reject(e)));
      }),
  };
}

/** A STARTTLS that must fail: resolves with the handshake's outcome (or says it succeeded). */
export async function failedHandshake(t: SmtpTalk, opts: ConnectionOptions): Promise<Outcome> {
  try {
    await t.starttls(opts);
    return { code: 'tls-accepted', text: 'the handshake succeeded' };
  } catch (e) {
    return tlsOutcome(e);
  }
}

/** A normal message over the MX from the peer operator to jeanne: 250, recorded in the ledger. */
export async function mxServes(x: SmtpCtx): Promise<void> {
  const id = newMessageId('mx');
  const o = await x.mx('rcpt', (t) => t.data(goodMessage(x.peerSender, x.h.who.jeanne.address, id) + '.\r\n'));
  expect(`${o.code} ${o.enhanced} ${o.text}`).toMatch(/^250 2\.0\.0 message accepted/);
  x.h.acked(x.h.who.jeanne.address, id);
}

/** A normal message on submission from jeanne to paul: 250, recorded in the ledger. */
export async function submissionServes(x: SmtpCtx): Promise<void> {
  const id = newMessageId('sub');
  const o = await x.sub('rcpt', (t) => t.data(goodMessage(x.h.who.jeanne.address, x.h.who.paul.address, id) + '.\r\n'));
  expect(`${o.code} ${o.enhanced} ${o.text}`).toMatch(/^250 2\.0\.0 message accepted/);
  x.h.acked(x.h.who.paul.address, id);
}
