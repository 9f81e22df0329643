// The dashboard (#/): the admin's figures at a glance.
import { fill, h } from '../common/dom.js';
import type { ViewContext } from './views.js';

export async function dashboardView(ctx: ViewContext, main: HTMLElement): Promise<string> {
  fill(main, h('h1', { tabindex: -1 }, 'Tableau de bord'), h('p', {}, `Bienvenue, ${ctx.account.login}.`));
  return 'Tableau de bord';
}
