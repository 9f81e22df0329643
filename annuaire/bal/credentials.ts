// Passwords and one-time codes. scrypt from node:crypto (memory-hard, no native add-on to
// build); the parameters travel inside each hash, so they can be raised later without
// invalidating stored ones. Verification always costs one full scrypt, whether the account
// exists or not, so response time does not reveal which user names exist.
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';

const scrypt = (password: string, salt: Buffer, len: number, o: ScryptOptions) =>
  new Promise<Buffer>((resolve, reject) => scryptCb(password, salt, len, o, (err, key) => (err ? reject(err) : resolve(key))));

/** N = 2^15, r = 8, p = 1: 32 MiB and a few tens of ms per check on a server core. */
export const SCRYPT_PARAMS = { N: 1 << 15, r: 8, p: 1 } as const;
const KEY_LEN = 32;

export async function hashPassword(password: string, params: { N: number; r: number; p: number } = SCRYPT_PARAMS): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password.normalize('NFC'), salt, KEY_LEN, { ...params, maxmem: 256 * params.N * params.r });
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** True when password matches the stored hash; a malformed hash never matches. */
export async function verifyPassword(stored: string, password: string): Promise<boolean> {
  const m = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(stored);
  if (!m) return false;
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const expected = Buffer.from(m[5], 'base64');
  const key = await scrypt(password.normalize('NFC'), Buffer.from(m[4], 'base64'), expected.length, { N, r, p, maxmem: 256 * N * r });
  return key.length === expected.length && timingSafeEqual(key, expected);
}

let dummy: Promise<string> | undefined;
/** A hash of a random password with the current parameters: what an unknown user is checked against. */
export function dummyHash(): Promise<string> {
  dummy ??= hashPassword(randomBytes(24).toString('base64'));
  return dummy;
}

/** A password handed to a person once (reset): 20 characters from an unambiguous alphabet. */
export function generatePassword(length = 20): string {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';
  const bytes = randomBytes(length * 2);
  let out = '';
  // Rejection sampling: bytes ≥ 224 (a multiple of 56 below 256) are dropped, so no letter is likelier.
  for (const b of bytes) {
    if (b < 224) out += alphabet[b % alphabet.length];
    if (out.length === length) break;
  }
  return out.length === length ? out : out + generatePassword(length - out.length);
}

export const TOTP_PERIOD = 30;
export const TOTP_DIGITS = 6;

export function newTotpSecret(): string {
  return new Secret({ size: 20 }).base32;
}

/** The otpauth:// URI an authenticator app reads (as a QR code). */
export function totpUri(secret: string, label: string, issuer: string): string {
  return new TOTP({ issuer, label, secret: Secret.fromBase32(secret), digits: TOTP_DIGITS, period: TOTP_PERIOD }).toString();
}

/** The current code, for tests and for a person's first check when enrolling. */
export function totpCode(secret: string, timestamp = Date.now()): string {
  return TOTP.generate({ secret: Secret.fromBase32(secret), digits: TOTP_DIGITS, period: TOTP_PERIOD, timestamp });
}

/**
 * The time step a code belongs to when it is valid now (± one step for clock drift), else
 * null. The caller refuses a step already used (replay).
 */
export function totpStep(secret: string, code: string, timestamp = Date.now()): number | null {
  if (!/^\d{6}$/.test(code)) return null;
  const delta = TOTP.validate({ token: code, secret: Secret.fromBase32(secret), digits: TOTP_DIGITS, period: TOTP_PERIOD, timestamp, window: 1 });
  return delta === null ? null : Math.floor(timestamp / 1000 / TOTP_PERIOD) + delta;
}

export type OtpFailure = 'otp-missing' | 'bad-otp' | 'otp-replayed';

/**
 * The second-factor check every account kind shares (persons, admins): the code must be
 * valid now for the enrolled secret, and its time step newer than the last one accepted.
 * consume(step) is the account's compare-and-set of that last step (true: this login won
 * it), so of two logins racing with one code exactly one passes. null: accepted.
 */
export async function checkTotp(secret: string, code: string | undefined, now: number, consume: (step: number) => Promise<boolean>): Promise<OtpFailure | null> {
  if (!code) return 'otp-missing';
  const step = totpStep(secret, code, now);
  if (step === null) return 'bad-otp';
  return (await consume(step)) ? null : 'otp-replayed';
}
