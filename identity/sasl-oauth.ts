// The two SASL mechanisms that carry an OAuth 2.0 bearer token, parsed apart from any
// protocol (IMAP AUTHENTICATE and SMTP AUTH share them):
//   OAUTHBEARER (RFC 7628): gs2-header "n,a=<authzid>," then \x01-separated key=value pairs
//     (host, port, auth=Bearer <token>), ended by \x01\x01;
//   XOAUTH2 (Google's, what nodemailer and many clients send): user=<user>\x01auth=Bearer <token>\x01\x01.
// A refusal is answered first with a challenge, base64 of an RFC 7628 §3.2.2 JSON error, to
// which the client answers \x01 (OAUTHBEARER) or an empty line (XOAUTH2); then NO / 535.

export interface OAuthMessage {
  mechanism: 'OAUTHBEARER' | 'XOAUTH2';
  /** OAUTHBEARER's a= (authorisation identity), XOAUTH2's user=: the mailbox to act as. */
  user: string | null;
  token: string;
}

export const OAUTH_MECHANISMS = ['OAUTHBEARER', 'XOAUTH2'] as const;

/** RFC 5801 saslname: =2C is ",", =3D is "="; any other "=" is malformed. */
function unescapeSaslName(s: string): string | null {
  if (/=(?!2C|3D)/i.test(s)) return null;
  return s.replace(/=2C/gi, ',').replace(/=3D/gi, '=');
}

/** Parses the client's message; null when it is not one of these mechanisms' messages. */
export function parseOAuthMessage(mechanism: string, message: Buffer): OAuthMessage | null {
  const text = message.toString('utf8');
  const mech = mechanism.toUpperCase();
  let user: string | null = null;
  let kv: string;
  if (mech === 'OAUTHBEARER') {
    // gs2-header: (n | y | p=…) "," [a=authzid] ","; channel binding is not offered, so only n / y.
    const m = /^([ny]),(?:a=([^,]*))?,\x01/.exec(text);
    if (!m) return null;
    if (m[2] !== undefined) {
      user = unescapeSaslName(m[2]);
      if (user === null) return null;
    }
    kv = text.slice(m[0].length);
  } else if (mech === 'XOAUTH2') {
    kv = text;
  } else return null;
  if (!kv.endsWith('\x01\x01')) return null;
  let token: string | null = null;
  for (const field of kv.slice(0, -2).split('\x01')) {
    const eq = field.indexOf('=');
    if (eq <= 0) return null;
    const key = field.slice(0, eq).toLowerCase();
    const value = field.slice(eq + 1);
    // RFC 7628: values are VCHAR / SP / HTAB / CR / LF only.
    if (/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/.test(value)) return null;
    if (key === 'auth') {
      const b = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i.exec(value);
      if (!b) return null;
      token = b[1];
    } else if (key === 'user' && mech === 'XOAUTH2') user = value;
  }
  if (!token) return null;
  return { mechanism: mech, user: user?.trim() || null, token };
}

/** The server's error challenge (RFC 7628 §3.2.2), base64: status, scope, and where to find the provider. */
export function oauthErrorChallenge(o: { status: 'invalid_token' | 'invalid_request' | 'insufficient_scope'; scope?: string; openidConfiguration?: string }): string {
  return Buffer.from(JSON.stringify({ status: o.status, ...(o.scope ? { scope: o.scope } : {}), ...(o.openidConfiguration ? { 'openid-configuration': o.openidConfiguration } : {}) })).toString('base64');
}
