// The console's views, by address (#/…): each draws itself into <main> from the admin API's
// answers and returns its title. Links are real links: keyboard, back button and "open in a
// new tab" work as on any site.
import type { ApiClient } from '../common/api.js';
import type { AdminAccount } from './types.js';
import { adminsView, adminView, totpView } from './admins.js';
import { boxView, boxesView, newBoxView } from './boxes.js';
import { dashboardView } from './dashboard.js';
import { importsView } from './imports.js';
import { eventView, journalView } from './journal.js';
import { personsView } from './persons.js';

export interface ViewContext {
  api: ApiClient;
  account: AdminAccount;
  /** False once another view was asked for (a slow answer must not draw over it). */
  stillCurrent(): boolean;
  /** Goes to href, saying `notice` at the top of the view there. */
  go(href: string, notice?: string): void;
}

export interface View {
  /** The path part of the hash (before any ?), its groups become the params. */
  path: RegExp;
  show(ctx: ViewContext, main: HTMLElement, params: string[], query: URLSearchParams): Promise<string>;
}

export const views: View[] = [
  { path: /^\/?$/, show: dashboardView },
  { path: /^\/boites\/?$/, show: boxesView },
  { path: /^\/boites\/nouvelle$/, show: newBoxView },
  { path: /^\/boite\/([^/]+)$/, show: boxView },
  { path: /^\/personnes\/?$/, show: personsView },
  { path: /^\/journal\/?$/, show: journalView },
  { path: /^\/journal\/([0-9]{1,15})$/, show: eventView },
  { path: /^\/imports\/?$/, show: importsView },
  { path: /^\/comptes\/?$/, show: adminsView },
  { path: /^\/compte\/([^/]+)$/, show: adminView },
  { path: /^\/securite$/, show: totpView },
];
