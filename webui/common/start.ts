// How every page of the platform starts (webmail, operator console): the skip link, the
// router on hash changes, then who is logged in (GET /api/v1/me) or the login page.
import { ApiError, messageOf, type ApiClient } from './api.js';

export const SESSION_EXPIRED = 'Votre session a expiré. Reconnectez-vous pour continuer.';

export function startPage<T>(
  api: ApiClient,
  o: {
    /** The API's refusal of /me that means "the session this browser had has ended". */
    ended(e: ApiError): boolean;
    /** The hash changed: draw the view it names. */
    render(): void;
    loggedIn(me: T): void;
    /** The login page, with what to tell first (or nothing). */
    login(notice: string | null): void;
  },
): void {
  // The skip link focuses the content without touching the address (the hash is the route).
  document.getElementById('evitement')?.addEventListener('click', (e) => {
    e.preventDefault();
    (document.querySelector<HTMLElement>('main h1') ?? document.getElementById('contenu'))?.focus();
  });
  window.addEventListener('hashchange', () => o.render());
  const had = api.hadSession();
  api.get<T>('/api/v1/me').then(o.loggedIn, (e: unknown) => {
    if (e instanceof ApiError && o.ended(e) && had) o.login(SESSION_EXPIRED);
    else o.login(e instanceof ApiError && e.status === 401 ? null : messageOf(e));
  });
}
