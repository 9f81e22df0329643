// Who may call each admin route. Every route declares its rule in its options
// (`config: { access }`); the server refuses to start when one does not (core/http). The
// two hooks below are the only place the rules are enforced: authentication first (401),
// then, once the input is validated, the rule through core/policy (a refusal is a 403
// problem+json and a policy.refused journal event). What a handler needs for its rule —
// the mailbox named in the path, the admin's scope for a list — is fetched here and handed
// over (boxOf, scopeOf), so a handler cannot read outside the scope by forgetting a check.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { browserSession } from '../../core/browser-session.js';
import type { Db } from '../../core/db/index.js';
import { MssError } from '../../core/errors.js';
import { PUBLIC, type AccessRule } from '../../core/http.js';
import type { Journal } from '../../core/journal/index.js';
import { adminScope, verdictError, type AdminScope, type AdminTarget, type Policy } from '../../core/policy/index.js';
import { findBal, type Bal } from '../bal/index.js';
import { accountForToken, principalOf, type AdminAccount } from './accounts.js';

export type AdminAccess =
  /** No credential: logging in, the API documents. */
  | { kind: 'public' }
  /** Any logged-in admin, about its own session (also before it enrolled a required second factor). */
  | { kind: 'self' }
  /** National accounts only (imports, admin accounts). */
  | { kind: 'national'; what: string }
  /** The mailbox named by this path parameter must be in the admin's scope. */
  | { kind: 'mailbox'; param: string }
  /** A list: every admin may call it, and it reads only rows of the admin's scope (scopeOf). */
  | { kind: 'scoped' }
  /** What the request acts on is worked out from its (validated) input; all of it must be in scope. */
  | { kind: 'targets'; of(req: FastifyRequest): Promise<AdminTarget[]> };

export const ADMIN_ACCESS_KINDS: readonly AdminAccess['kind'][] = ['public', 'self', 'national', 'mailbox', 'scoped', 'targets'];

/** The rules, to write in a route's `config: { access: … }`. */
export const access = {
  public: PUBLIC as AdminAccess,
  self: { kind: 'self' } as AdminAccess,
  national: (what: string): AdminAccess => ({ kind: 'national', what }),
  mailbox: (param = 'address'): AdminAccess => ({ kind: 'mailbox', param }),
  scoped: { kind: 'scoped' } as AdminAccess,
  targets: (of: (req: FastifyRequest) => Promise<AdminTarget[]>): AdminAccess => ({ kind: 'targets', of }),
};

/**
 * The operator console's session (webui/console/): the admin API's own token in an HttpOnly
 * cookie, CSRF-checked — the webmail's scheme, one implementation (core/browser-session.ts).
 */
export const adminCookies = browserSession('mss-admin');

/** A request that may have been forged by another site: journalled, and the refusal to throw. */
export async function forgeryRefused(journal: Pick<Journal, 'append'>, req: FastifyRequest, reason: string): Promise<MssError> {
  await journal.append({ type: 'admin.csrf.refused', actor: 'anonymous', details: { route: `${req.method} ${req.routeOptions.url}`, reason, remote: req.ip } });
  return new MssError('ADMIN_CSRF_INVALID', { reason });
}

declare module 'fastify' {
  interface FastifyRequest {
    admin?: AdminAccount;
    /** The session token the request came with (bearer or cookie), and whether it came in the cookie. */
    adminToken?: string;
    adminViaCookie?: boolean;
    adminScope?: AdminScope;
    adminBox?: Bal;
  }
}

const ruleOf = (req: FastifyRequest): AdminAccess | undefined => req.routeOptions.config.access as (AccessRule & AdminAccess) | undefined;

export const mailboxTarget = (b: Pick<Bal, 'address' | 'domain' | 'structureId'>): AdminTarget => ({ kind: 'mailbox', address: b.address, domain: b.domain, structureId: b.structureId });

/**
 * The mailbox at an address, and what acting on it targets. A mailbox that does not exist is
 * in scope by its domain only (nothing else is known of it), so whether it exists is not
 * told outside the scope: the refusal comes first.
 */
export async function mailboxAt(db: Db, address: string): Promise<{ box: Bal | null; target: AdminTarget }> {
  const box = await findBal(db, address);
  if (box) return { box, target: mailboxTarget(box) };
  const a = address.trim().toLowerCase();
  return { box: null, target: { kind: 'mailbox', address: a, domain: a.slice(a.lastIndexOf('@') + 1), structureId: null } };
}

/** The admin of an authenticated request (set by the authentication hook). */
export const adminOf = (req: FastifyRequest): AdminAccount => {
  if (!req.admin) throw new Error(`${req.method} ${req.routeOptions.url}: no authenticated admin on a route that needs one`);
  return req.admin;
};

/** The mailbox a `mailbox` route acts on, found and checked by the hook. */
export const boxOf = (req: FastifyRequest): Bal => {
  if (!req.adminBox) throw new Error(`${req.method} ${req.routeOptions.url} reads a mailbox but its access rule is not 'mailbox'`);
  return req.adminBox;
};

/** The scope a `scoped` route's reads must take (core/policy's adminScope of the admin). */
export const scopeOf = (req: FastifyRequest): AdminScope => {
  if (!req.adminScope) throw new Error(`${req.method} ${req.routeOptions.url} lists rows but its access rule is not 'scoped'`);
  return req.adminScope;
};

/** The two hooks, for the admin API plugin. */
export function enforceAccess(app: FastifyInstance, deps: { db: Db; policy: Policy; journal: Pick<Journal, 'append'>; requireTotp?: boolean }): void {
  const allow = async (req: FastifyRequest, targets: AdminTarget[]) => {
    const v = await deps.policy.mayAdminister(principalOf(adminOf(req), deps.requireTotp), targets, { front: 'admin-api', remote: req.ip });
    if (!v.ok) throw verdictError(v);
  };

  // Before the body is read: an unauthenticated upload is refused at once.
  app.addHook('onRequest', async (req, reply) => {
    if (ruleOf(req)?.kind === 'public') return;
    const { token, viaCookie, forgery } = adminCookies.credential(req);
    if (forgery) throw await forgeryRefused(deps.journal, req, forgery);
    const account = token ? await accountForToken(deps.db, token) : null;
    if (!account) {
      void reply.header('www-authenticate', 'Bearer realm="mss-admin"');
      // An ended session's cookies go too: the console shows its login again.
      if (viaCookie) void reply.header('set-cookie', adminCookies.close);
      throw new MssError('AUTH_FAILED');
    }
    req.admin = account;
    req.adminToken = token!;
    req.adminViaCookie = viaCookie;
  });

  // After validation: the rule sees well-formed input.
  app.addHook('preHandler', async (req) => {
    const rule = ruleOf(req);
    switch (rule?.kind) {
      case 'public':
      case 'self':
        return;
      case 'national':
        return allow(req, [{ kind: 'global', what: rule.what }]);
      case 'scoped':
        // Its own account is what any admin may read about: only the session's own condition
        // (a second factor still to enrol) can refuse here, and it does so through core/policy.
        await allow(req, [{ kind: 'account', login: adminOf(req).login }]);
        req.adminScope = adminScope(principalOf(adminOf(req)));
        return;
      case 'mailbox': {
        const address = String((req.params as Record<string, unknown>)[rule.param] ?? '');
        const { box, target } = await mailboxAt(deps.db, address);
        await allow(req, [target]);
        if (!box) throw new MssError('BAL_UNKNOWN', { address });
        req.adminBox = box;
        return;
      }
      case 'targets':
        return allow(req, await rule.of(req));
      default:
        // Unreachable once the server started (every route has a known rule); fail closed anyway.
        throw new Error(`${req.method} ${req.routeOptions.url} declares no access rule`);
    }
  });
}
