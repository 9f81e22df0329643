// A browser's part in a Pro Santé Connect login, without a browser: HTTPS requests with a
// cookie jar, following redirects, filling the stand-in PSC's login page the way a person
// would (a professional, a means, "Se connecter" or "Refuser"). Used by the token, webmail and
// console tests; the Chromium test goes through the same pages with a real browser.
import { request } from 'node:https';

export interface Hop {
  status: number;
  location: string | null;
  setCookie: string[];
  body: string;
}

export class CookieBrowser {
  /** origin → name → value (enough for these tests: no paths, no expiry). */
  private readonly jar = new Map<string, Map<string, string>>();
  constructor(private readonly ca: string) {}

  cookies(origin: string): Map<string, string> {
    return this.jar.get(origin) ?? new Map();
  }

  send(url: string, o: { method?: string; form?: URLSearchParams; headers?: Record<string, string> } = {}): Promise<Hop> {
    const u = new URL(url);
    const body = o.form ? Buffer.from(o.form.toString()) : undefined;
    const cookie = [...this.cookies(u.origin)].map(([k, v]) => `${k}=${v}`).join('; ');
    const headers: Record<string, string> = { ...(cookie ? { cookie } : {}), ...(body ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(body.length) } : {}), ...o.headers };
    return new Promise((resolve, reject) => {
      const req = request(u, { method: o.method ?? (body ? 'POST' : 'GET'), headers, ca: this.ca }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const setCookie = res.headers['set-cookie'] ?? [];
          const jar = this.jar.get(u.origin) ?? new Map<string, string>();
          for (const c of setCookie) {
            const [pair, ...attrs] = c.split(';');
            const eq = pair.indexOf('=');
            const name = pair.slice(0, eq).trim();
            const value = pair.slice(eq + 1).trim();
            if (!value || attrs.some((a) => /^\s*max-age=0\s*$/i.test(a))) jar.delete(name);
            else jar.set(name, value);
          }
          this.jar.set(u.origin, jar);
          const loc = res.headers.location;
          resolve({ status: res.statusCode ?? 0, location: loc ? new URL(loc, u).href : null, setCookie, body: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  /** Follows redirects from `url` until one leaves for `stopAt` (returned, not requested) or a page answers. */
  async follow(url: string, stopAt?: (u: URL) => boolean, first?: Hop): Promise<{ url: string; hop: Hop | null }> {
    let hop = first ?? (await this.send(url));
    let at = url;
    for (let i = 0; i < 20 && hop.location; i++) {
      at = hop.location;
      if (stopAt?.(new URL(at))) return { url: at, hop: null };
      hop = await this.send(at);
    }
    return { url: at, hop };
  }
}

/**
 * From the authorisation URL to PSC's answer: the stand-in's login page, filled in. Returns the
 * URL the provider sends the browser back to (the client's redirect URI with code or error).
 */
export async function standinLogin(b: CookieBrowser, authorizeUrl: string, o: { idnps?: string; other?: string; means?: 'e-cps' | 'cps'; deny?: boolean }, isCallback: (u: URL) => boolean): Promise<string> {
  const page = await b.follow(authorizeUrl, isCallback);
  if (!page.hop) return page.url;
  const action = /action="([^"]+)"/.exec(page.hop.body)?.[1];
  if (page.hop.status !== 200 || !action) throw new Error(`no login page at ${page.url}: ${page.hop.status} ${page.hop.body.slice(0, 200)}`);
  const form = new URLSearchParams({ idnps: o.idnps ?? '', other: o.other ?? '', means: o.means ?? 'e-cps', action: o.deny ? 'deny' : 'login' });
  const posted = await b.send(new URL(action, page.url).href, { form });
  const back = await b.follow(page.url, isCallback, posted);
  if (back.hop) throw new Error(`the provider did not send the browser back: ${back.hop.status} ${back.hop.body.slice(0, 300)}`);
  return back.url;
}
