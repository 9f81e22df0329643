// The DMP rule of an organisational box ("every clinical document arriving here goes to the
// patient's DMP, with this visibility"): read by its members, set or removed by those the
// policy allows (core/policy decideDmpRule). The rule lives in the platform's database
// (dmp/, journalled), reached through the deps, so it works while the platform runs — which
// `mss dmp rule-set` cannot do on the embedded database.
import type { FastifyInstance } from 'fastify';
import { MssError } from '../core/errors.js';
import { access, PREFIX, sessionOf, type ApiContext } from './api.js';
import * as S from './schemas.js';

const tag = { tags: ['dmp'], security: [{ bearer: [] }] };

export function dmpRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const rules = () => {
    if (!ctx.deps.dmpRule) throw new MssError('WEBMAIL_FEATURE_UNAVAILABLE', { feature: 'the DMP rules' });
    return ctx.deps.dmpRule;
  };
  const path = `${PREFIX}/bals/:bal/dmp-rule`;
  const response = { 200: { $ref: 'DmpRule#' }, ...S.errors(400, 401, 403, 404, 410, 503) };

  app.get(path, { config: { access: access.mailbox }, schema: { ...tag, summary: "The box's DMP rule, and whether this person may change it", params: S.balParams, response } }, async (req) => {
    const { bal } = req.params as { bal: string };
    return rules().get(sessionOf(req).principal, bal);
  });

  app.put(
    path,
    { config: { access: access.mailbox }, schema: { ...tag, summary: 'Set the DMP rule of an organisational box (a health professional among its members); journalled', params: S.balParams, body: S.dmpRuleBody, response } },
    async (req) => {
      const { bal } = req.params as { bal: string };
      return rules().set(sessionOf(req).principal, bal, req.body as { masking: string; enabled: boolean });
    },
  );

  app.delete(path, { config: { access: access.mailbox }, schema: { ...tag, summary: 'Remove the DMP rule of an organisational box; journalled', params: S.balParams, response } }, async (req) => {
    const { bal } = req.params as { bal: string };
    return rules().remove(sessionOf(req).principal, bal);
  });
}
