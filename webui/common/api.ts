// Calls to the platform's API from the pages: same origin, the session in its HttpOnly
// cookie (sent by the browser; no script here can read it), and on every request that
// changes something the CSRF header, copied from the readable CSRF cookie
// (core/browser-session.ts). Refusals arrive as problem+json and become ApiError.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    /** The catalogue code (core/errors.ts), e.g. AUTH_FAILED. */
    readonly code: string,
    /** The API's own sentence (English). */
    readonly detail: string,
  ) {
    super(detail);
  }
}

export interface ApiClient {
  get<T>(path: string): Promise<T>;
  /** A file the API answers (an archive, an attachment): its bytes, or the refusal as ApiError. */
  blob(path: string): Promise<Blob>;
  send<T>(method: 'POST' | 'PATCH' | 'DELETE' | 'PUT', path: string, body?: unknown): Promise<T>;
  /** A file sent as it is (the browser streams it from disk), of this type; the JSON answer. */
  sendFile<T>(path: string, file: Blob, type: string): Promise<T>;
  /** The CSRF header's value, for a request the page makes itself (an upload whose progress it shows). */
  csrfToken(): string;
  /** A refusal the page met on its own request: the session's end is handled as for any call. */
  refused(e: ApiError, path: string): ApiError;
  /** Whether the CSRF cookie is there: the browser had a session (perhaps expired). */
  hadSession(): boolean;
}

function cookie(name: string): string | null {
  for (const part of document.cookie.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return null;
}

/**
 * A client of one API. `onExpired` runs when a request is refused for want of a live session
 * (expired, closed elsewhere): the page goes back to its login with a message.
 */
export function apiClient(o: {
  csrfCookie: string;
  onExpired(): void;
  /** Whether a refusal says the session ended (default: the webmail's WEBMAIL_SESSION_INVALID). */
  ended?(e: ApiError, path: string): boolean;
}): ApiClient {
  const ended = o.ended ?? ((e: ApiError) => e.code === 'WEBMAIL_SESSION_INVALID');
  const refused = (e: ApiError, path: string) => {
    if (ended(e, path)) o.onExpired();
    return e;
  };
  async function call<T>(method: string, path: string, body?: unknown, raw = false, type?: string): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (method !== 'GET') headers['x-csrf-token'] = cookie(o.csrfCookie) ?? '';
    if (body !== undefined) headers['content-type'] = type ?? 'application/json';
    let r: Response;
    try {
      const sent = body === undefined ? {} : { body: body instanceof Blob ? body : JSON.stringify(body) };
      r = await fetch(path, { method, headers, credentials: 'same-origin', cache: 'no-store', ...sent });
    } catch {
      throw new ApiError(0, 'NETWORK', 'the platform cannot be reached');
    }
    if (r.status === 204) return undefined as T;
    if (raw && r.ok) return (await r.blob()) as T;
    const text = await r.text();
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    if (!r.ok) {
      const p = (json ?? {}) as { title?: string; detail?: string };
      throw refused(new ApiError(r.status, p.title ?? `HTTP_${r.status}`, p.detail ?? r.statusText), path);
    }
    return json as T;
  }
  return {
    get: (path) => call('GET', path),
    blob: (path) => call<Blob>('GET', path, undefined, true),
    send: (method, path, body) => call(method, path, body),
    sendFile: (path, file, type) => call('POST', path, file, false, type),
    csrfToken: () => cookie(o.csrfCookie) ?? '',
    refused,
    hadSession: () => cookie(o.csrfCookie) !== null,
  };
}

/** What to tell the person, in French: the catalogue codes a page meets most, else the API's own sentence. */
export function messageOf(e: unknown): string {
  if (!(e instanceof ApiError)) return 'Une erreur inattendue est survenue. Réessayez dans un instant.';
  switch (e.code) {
    case 'AUTH_FAILED':
      return 'Identifiant, mot de passe ou code de vérification incorrect.';
    case 'LOGIN_THROTTLED':
      return 'Trop de tentatives de connexion échouées. Patientez quelques minutes avant de réessayer.';
    case 'WEBMAIL_SESSION_INVALID':
      return 'Votre session a expiré. Reconnectez-vous.';
    case 'WEBMAIL_CSRF_INVALID':
    case 'ADMIN_CSRF_INVALID':
      return 'La demande a été refusée par mesure de sécurité. Rechargez la page et réessayez.';
    case 'WEBMAIL_BAL_REFUSED':
      return `Vous n'avez pas accès à cette boîte aux lettres. (${e.detail})`;
    case 'WEBMAIL_IMAP_UNAVAILABLE':
      return 'Le service de messagerie est momentanément indisponible. Réessayez dans un instant.';
    case 'ADMIN_OUT_OF_SCOPE':
      return `Cette opération sort du périmètre de votre compte. (${e.detail})`;
    case 'ADMIN_OTP_REQUIRED':
      return 'Ce compte demande aussi un code de vérification : saisissez les six chiffres de votre application.';
    case 'ADMIN_OTP_INVALID':
      return 'Code de vérification incorrect ou expiré : saisissez le code que votre application affiche maintenant.';
    case 'ADMIN_TOTP_NOT_CONFIRMED':
      return 'Ce code ne correspond pas (ou a expiré) : saisissez le code que votre application affiche maintenant.';
    case 'ADMIN_OTP_REPLAYED':
      return 'Ce code de vérification a déjà servi : attendez le suivant dans votre application.';
    case 'ADMIN_TOTP_ENROLMENT_REQUIRED':
      return 'Votre compte doit d\'abord activer la validation en deux étapes.';
    case 'ADMIN_SELF_LOCKOUT':
      return 'Un compte ne peut pas se désactiver ni réinitialiser ses propres accès : un autre administrateur doit le faire.';
    case 'NETWORK':
      return 'La plateforme ne répond pas. Vérifiez votre connexion et réessayez.';
    case 'NOT_FOUND':
      return "Ce que vous cherchez n'existe pas (ou plus).";
    default:
      return `La plateforme a refusé la demande : ${e.detail}`;
  }
}
