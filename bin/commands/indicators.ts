// `mss indicators --month YYYY-MM`: the operator's monthly figures (annuaire/indicators).
// With PostgreSQL, or the embedded database when no platform holds it, the command reads
// the database itself. While `mss start` holds the embedded database (PGlite belongs to one
// process), it asks the running platform's admin API instead, as an admin account: the same
// computation, in that account's scope.
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { checkServerIdentity } from 'node:tls';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { operatorDomains } from '../../annuaire/admin/wiring.js';
import { computeIndicators, indicatorsCsv, monthRange, type Indicators } from '../../annuaire/indicators/index.js';
import type { Config } from '../../core/config/index.js';
import { isMssError } from '../../core/errors.js';
import { EVERYWHERE } from '../../core/policy/index.js';
import { ExitError, action, configFrom, withConfigOptions, withDb } from '../cli.js';

type Opts = { config?: string; dataDir?: string; month: string; format: 'csv' | 'json'; domain?: string; api?: string; login?: string };

const month = (v: string) => {
  try {
    monthRange(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
  return v;
};

export function registerIndicators(program: Command) {
  withConfigOptions(
    program
      .command('indicators')
      .description("the operator's monthly indicators: boxes by type, messages by direction (inside, other operators, patients), refusals by reason, DMP hand-offs, people logged in by method — per mail domain and for the whole operator (*)")
      .requiredOption('--month <YYYY-MM>', 'the month, counted in UTC', month)
      .addOption(new Option('--format <format>', 'output').choices(['csv', 'json']).default('csv'))
      .option('--domain <domain>', 'only this mail domain')
      .option('--api <url>', "the running platform's admin API (default https://admin.host:admin.port), used when it holds the embedded database")
      .option('--login <login>', 'admin account for the admin API (default admin.bootstrapLogin); its password is read from MSS_ADMIN_PASSWORD'),
  ).action(
    action(async (o: Opts) => {
      let x: Indicators;
      try {
        x = await withDb(o, (db, config) => computeIndicators(db, { month: o.month, domain: o.domain, scope: EVERYWHERE, localDomains: operatorDomains(config), patientDomain: config.smtp.patientDomain }));
      } catch (e) {
        if (!isMssError(e) || e.code !== 'DATA_DIR_LOCKED') throw e;
        x = await throughAdminApi(configFrom(o), o);
      }
      process.stdout.write(o.format === 'json' ? JSON.stringify(x, null, 2) + '\n' : indicatorsCsv(x));
    }),
  );
}

async function throughAdminApi(config: Config, o: Opts): Promise<Indicators> {
  const password = process.env.MSS_ADMIN_PASSWORD;
  if (!password) throw new ExitError('the platform is running and holds the embedded database: the indicators are asked of its admin API, which needs an admin password in MSS_ADMIN_PASSWORD (and --login if not the bootstrap account)');
  if (!o.api && (!config.admin.enabled || !config.admin.port)) throw new ExitError('the platform holds the embedded database and its admin API address is unknown here (admin.enabled false, or admin.port 0): give it with --api https://host:port');
  const base = o.api ?? `https://${config.admin.host.includes(':') ? `[${config.admin.host}]` : config.admin.host}:${config.admin.port}`;
  const ca = readFileSync(config.tls.caFile, 'utf8');
  const server = { ca, name: config.operator.hostname || config.operator.domain };
  const login = await call(base, server, 'POST', '/api/v1/login', undefined, { login: o.login ?? config.admin.bootstrapLogin, password });
  const token = (login as { token: string }).token;
  const qs = new URLSearchParams({ month: o.month, ...(o.domain ? { domain: o.domain } : {}) });
  return (await call(base, server, 'GET', `/api/v1/indicators?${qs}`, token)) as Indicators;
}

/** One JSON request to the admin API; a problem+json answer becomes the command's error. */
function call(base: string, server: { ca: string; name: string }, method: string, path: string, token?: string, body?: unknown): Promise<unknown> {
  const u = new URL(path, base);
  const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: u.hostname.replace(/^\[|\]$/g, ''),
        port: u.port,
        path: u.pathname + u.search,
        method,
        ca: server.ca,
        // The platform's certificate names the operator; the address dialled may be a loopback one it does not name.
        checkServerIdentity: (host, cert) => (checkServerIdentity(host, cert) ? checkServerIdentity(server.name, cert) : undefined),
        headers: { accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}), ...(data ? { 'content-type': 'application/json', 'content-length': String(data.length) } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: { detail?: string } = {};
          try {
            json = JSON.parse(text);
          } catch {
            /* not JSON: reported below */
          }
          if (res.statusCode === 200) return resolve(json);
          reject(new ExitError(`the admin API at ${base} answered ${res.statusCode}: ${json.detail ?? text.slice(0, 200)}`));
        });
        res.on('error', reject);
      },
    );
    req.on('error', (e) => reject(new ExitError(`cannot reach the admin API at ${base}: ${e.message}`)));
    req.end(data);
  });
}
