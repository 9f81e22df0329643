// The webmail's login page: the platform's common one (common/login.ts), with the second factor.
import type { ApiClient } from '../common/api.js';
import { showLogin as common } from '../common/login.js';
import type { Person } from './types.js';

export function showLogin(app: HTMLElement, api: ApiClient, notice: string | null, done: (p: Person) => void): void {
  common(app, api, { heading: 'Messagerie sécurisée de santé', product: 'Messagerie MSSanté', path: '/api/v1/web/login', psc: '/api/v1/web/psc/start', otp: true, account: (r) => (r as { person: Person }).person }, notice, done);
}
