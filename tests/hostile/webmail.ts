// The webmail corpus's context: the platform's webmail API over its real HTTPS listener, as
// jeanne (or intrus, or nobody), a message waiting in jeanne's INBOX to act on, and the
// normal request after each case — jeanne sends paul a message through the API (200,
// with its Message-ID) — each of which must be in paul's box at the end.
import { expect } from 'vitest';
import type { Outcome } from './harness.js';
import { apiCaller, https, httpOutcome, type HttpOptions } from './http.js';
import { goodMessage, newMessageId, type Account, type HostileOperator } from './platform.js';

export interface WebmailCtx {
  h: HostileOperator;
  url: string;
  tokens: { jeanne: string; intrus: string; admin: string };
  /** UID of a message in jeanne's INBOX that asks for no read receipt. */
  uid: number;
  /** One request to /api/v1…, as jeanne unless `as` says otherwise. */
  api(method: string, path: string, o?: HttpOptions & { as?: 'jeanne' | 'intrus' | 'admin' | 'none' }): Promise<Outcome>;
  login(who: Account, password?: string, from?: string): Promise<Outcome>;
}

export async function webmailCtx(h: HostileOperator): Promise<WebmailCtx> {
  const url = h.webmailUrl;
  const token = async (who: Account) => (await https(url, h.ca, 'POST', '/api/v1/login', { json: { login: who.login, password: who.password } })).json().token as string;
  const admin = (await https(h.admin.url, h.ca, 'POST', '/api/v1/login', { json: h.admin.national })).json().token as string;
  const tokens = { jeanne: await token(h.who.jeanne), intrus: await token(h.who.intrus), admin };
  const c = await h.op.imap(h.who.jeanne.address);
  let uid = 0;
  try {
    const r = await c.append('INBOX', goodMessage(`labo@peer.mssante.localhost`, h.who.jeanne.address, newMessageId('seed'), 'Sans accusé de lecture'));
    uid = r ? r.uid ?? 0 : 0;
  } finally {
    await c.logout();
  }
  return {
    h,
    url,
    tokens,
    uid,
    api: apiCaller(url, h.ca, tokens, 'jeanne'),
    login: async (who, password, from) => httpOutcome(await https(url, h.ca, 'POST', '/api/v1/login', { json: { login: who.login, password: password ?? who.password }, ...(from ? { from } : {}) })),
  };
}

/** jeanne sends paul a message through the API: 200 with its Message-ID, kept in the ledger. */
export async function webmailServes(x: WebmailCtx): Promise<void> {
  const r = await https(x.url, x.h.ca, 'POST', `/api/v1/bals/${encodeURIComponent(x.h.who.jeanne.address)}/send`, {
    token: x.tokens.jeanne,
    json: { to: [x.h.who.paul.address], subject: 'Toujours servi', text: 'Bonjour.' },
  });
  expect(r.status, r.body.toString()).toBe(200);
  x.h.acked(x.h.who.paul.address, r.json().messageId as string);
}
