import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { Command, InvalidArgumentError, Option } from 'commander';
import type { Db } from '../../core/db/index.js';
import { EVERYWHERE } from '../../core/policy/index.js';
import {
  addMember,
  closeBal,
  createBal,
  createPerson,
  enableTotp,
  findBal,
  findPerson,
  listBals,
  listPersons,
  openPgpKeyOf,
  registerAppCertificate,
  registerOpenPgpKey,
  removeMember,
  removeOpenPgpKey,
  reopenBal,
  resetCredentials,
  revokeAppCertificate,
  setPassword,
  BAL_TYPES,
  type Bal,
  type BalContext,
  type BalType,
} from '../../annuaire/bal/index.js';
import { operatorBalContext } from '../../annuaire/admin/wiring.js';
import { MssError } from '../../core/errors.js';
import { ExitError, action, withConfigOptions, withDb, withJournal } from '../cli.js';

type Opts = { config?: string; dataDir?: string };
const actor = () => `cli:${userInfo().username}`;

/**
 * Opens the configured database and a sealing journal for one command (sealed before it
 * exits, see withJournal). On the embedded database this fails with a clear
 * DATA_DIR_LOCKED message while `mss start` runs (PGlite is single-process).
 */
export async function withBalContext<T>(opts: Opts, fn: (ctx: BalContext, db: Db) => Promise<T>): Promise<T> {
  return withJournal(opts, (db, c, journal) => fn(operatorBalContext(c, db, journal), db));
}

const type = (v: string): BalType => {
  const t = v.toUpperCase();
  if (!(BAL_TYPES as readonly string[]).includes(t)) throw new InvalidArgumentError(`expected one of ${BAL_TYPES.join(', ')}`);
  return t as BalType;
};
const positive = (v: string) => {
  if (!/^[1-9]\d*$/.test(v)) throw new InvalidArgumentError('expected a whole number from 1');
  return Number(v);
};

function describeBal(b: Bal): string {
  const d = (x: Date | null) => (x ? x.toISOString() : '-');
  const lines = [
    `${b.address}  ${b.type}  ${b.status}${b.listeRouge ? '  liste rouge' : ''}`,
    `  owner        ${b.ownerId}${b.structureId && b.structureId !== b.ownerId ? `  (structure ${b.structureId})` : ''}`,
    ...(b.displayName ? [`  name         ${b.displayName}`] : []),
    ...(b.description ? [`  description  ${b.description}`] : []),
    ...(b.service ? [`  service      ${b.service}`] : []),
    ...(b.responsible ? [`  responsible  ${b.responsible}`] : []),
    `  created      ${d(b.createdAt)}   closed ${d(b.closedAt)}   reopened ${d(b.reopenedAt)}   version ${b.version}`,
    ...b.members.map((m) => `  member       ${m.login}${m.idnps ? ` (${m.idnps})` : ''}${m.nom ? ` ${m.prenom ?? ''} ${m.nom}` : ''}`),
    ...b.certificates.map((c) => `  certificate  ${c.fingerprint}  ${c.subject}  valid to ${c.notAfter.toISOString()}${c.revokedAt ? `  REVOKED ${c.revokedAt.toISOString()}` : ''}`),
  ];
  return lines.join('\n') + '\n';
}

const out = (s: string): void => void process.stdout.write(s);

export function registerBal(program: Command) {
  const bal = program.command('bal').description("the operator's own mailboxes (BAL): personal, organisational, technical; their members, certificates and accounts");

  withConfigOptions(
    bal
      .command('create')
      .description('create a mailbox; its address can never change nor be reused')
      .argument('<address>', 'the address, e.g. prenom.nom@<operator domain>')
      .addOption(new Option('-t, --type <type>', 'PER (personal), ORG (organisational), APP (technical) or CAB (practice)').argParser(type).makeOptionMandatory())
      .requiredOption('-o, --owner <id>', 'PER/CAB: RPPS (11 digits), ADELI or IDNPS; ORG/APP: FINESS (9) or SIRET (14)')
      .option('--structure <id>', 'PER: FINESS or SIRET of the structure the professional works in')
      .option('--name <text>', 'display name')
      .option('--description <text>', 'description (published for ORG/APP/CAB)')
      .option('--service <text>', 'service (ORG/APP)')
      .option('--responsible <text>', 'responsible person (ORG/APP/CAB)')
      .option('--liste-rouge', 'never published in the directory')
      .option('--rank <n>', 'preferred-mailbox rank (1 = preferred)', positive)
      .option('--person-login <login>', "PER/CAB: also create the holder's local account with this login (a password is generated and printed once)"),
  ).action(
    action(async (address: string, o: Opts & { type: BalType; owner: string; structure?: string; name?: string; description?: string; service?: string; responsible?: string; listeRouge?: boolean; rank?: number; personLogin?: string }) =>
      withBalContext(o, async (ctx, db) => {
        const b = await createBal(
          ctx,
          { address, type: o.type, owner: o.owner, structure: o.structure, displayName: o.name, description: o.description, service: o.service, responsible: o.responsible, listeRouge: o.listeRouge, rank: o.rank },
          actor(),
        );
        out(`created ${b.type} mailbox ${b.address}\n`);
        if (o.personLogin) {
          if (b.type !== 'PER' && b.type !== 'CAB') throw new ExitError('--person-login applies to PER and CAB mailboxes only', 2);
          if (await findPerson(db, { idnps: b.ownerId })) out(`the holder ${b.ownerId} already has a local account\n`);
          else {
            const p = await createPerson(ctx, { login: o.personLogin, idnps: b.ownerId }, actor());
            const { password } = await resetCredentials(ctx, { id: p.id }, actor());
            out(`created account ${p.login}; password (shown once): ${password}\n`);
          }
        }
      }),
    ),
  );

  for (const [verb, fn, what] of [
    ['close', closeBal, 'close a mailbox: nobody can open it and mail to it is refused'],
    ['reopen', reopenBal, 'reopen a closed mailbox'],
  ] as const) {
    withConfigOptions(bal.command(verb).description(what).argument('<address>').option('--reason <text>', 'why, for the journal')).action(
      action(async (address: string, o: Opts & { reason?: string }) =>
        withBalContext(o, async (ctx) => {
          const b = await fn(ctx, address, actor(), o.reason);
          out(`${b.address} is now ${b.status}\n`);
        }),
      ),
    );
  }

  withConfigOptions(
    bal
      .command('list')
      .description('list mailboxes')
      .addOption(new Option('-t, --type <type>', 'only this type').argParser(type))
      .addOption(new Option('--status <status>', 'only active or closed').choices(['active', 'closed']))
      .option('--domain <domain>', 'only this domain')
      .option('-s, --search <text>', 'address, name or description containing this text')
      .option('--limit <n>', 'at most n mailboxes', positive, 100)
      .option('--json', 'JSON output'),
  ).action(
    action(async (o: Opts & { type?: BalType; status?: 'active' | 'closed'; domain?: string; search?: string; limit: number; json?: boolean }) =>
      withDb(o, async (db) => {
        // The CLI runs with the database's own rights: no admin scope narrows it.
        const list = await listBals(db, EVERYWHERE, { type: o.type, status: o.status, domain: o.domain, text: o.search, limit: o.limit });
        if (o.json) return out(JSON.stringify(list, null, 2) + '\n');
        if (!list.length) return out('no mailbox\n');
        for (const b of list) out(`${b.address.padEnd(40)} ${b.type}  ${b.status.padEnd(6)}  ${b.ownerId}${b.listeRouge ? '  liste rouge' : ''}\n`);
      }),
    ),
  );

  withConfigOptions(bal.command('show').description('a mailbox with its members and certificates').argument('<address>').option('--json', 'JSON output')).action(
    action(async (address: string, o: Opts & { json?: boolean }) =>
      withDb(o, async (db) => {
        const b = await findBal(db, address);
        if (!b) throw new ExitError(`there is no mailbox ${address}`);
        out(o.json ? JSON.stringify(b, null, 2) + '\n' : describeBal(b));
      }),
    ),
  );

  const member = bal.command('member').description('members of organisational (ORG) mailboxes');
  withConfigOptions(member.command('add').description('let a person open an ORG mailbox').argument('<address>').argument('<login>', "the person's login")).action(
    action(async (address: string, login: string, o: Opts) =>
      withBalContext(o, async (ctx) => {
        const b = await addMember(ctx, address, { login }, actor());
        out(`${login} is a member of ${b.address} (${b.members.length} member${b.members.length > 1 ? 's' : ''})\n`);
      }),
    ),
  );
  withConfigOptions(member.command('remove').description('remove a person from an ORG mailbox').argument('<address>').argument('<login>')).action(
    action(async (address: string, login: string, o: Opts) =>
      withBalContext(o, async (ctx) => {
        const b = await removeMember(ctx, address, { login }, actor());
        out(`${login} is no longer a member of ${b.address}\n`);
      }),
    ),
  );

  const cert = bal.command('cert').description('application certificates of technical (APP) mailboxes');
  withConfigOptions(
    cert
      .command('add')
      .description('register the application certificate (PEM file, issuers may follow) of an APP mailbox: checked against the trust bundle, CRLs, its usage and the box\'s structure')
      .argument('<address>')
      .argument('<pem-file>')
      .option('--allow-shared', 'bind it although other mailboxes already have it (journalled)'),
  ).action(
    action(async (address: string, file: string, o: Opts & { allowShared?: boolean }) =>
      withBalContext(o, async (ctx) => {
        let pem: string;
        try {
          pem = readFileSync(file, 'utf8');
        } catch (e) {
          throw new ExitError(`cannot read ${file}: ${(e as Error).message}`);
        }
        const b = await registerAppCertificate(ctx, address, pem, actor(), { allowShared: o.allowShared === true });
        const c = b.certificates[b.certificates.length - 1];
        out(`registered ${c.fingerprint} (${c.subject}, valid to ${c.notAfter.toISOString()}) for ${b.address}\n`);
      }),
    ),
  );
  withConfigOptions(cert.command('revoke').description('revoke an application certificate of an APP mailbox').argument('<address>').argument('<fingerprint>', 'SHA-256, hex with or without colons').option('--reason <text>')).action(
    action(async (address: string, fp: string, o: Opts & { reason?: string }) =>
      withBalContext(o, async (ctx) => {
        await revokeAppCertificate(ctx, address, fp, actor(), o.reason);
        out(`revoked ${fp} for ${address}\n`);
      }),
    ),
  );

  const pgp = bal
    .command('openpgp')
    .description("a mailbox's OpenPGP public key: when one is registered, the box's mail is stored encrypted to it (PGP/MIME, RFC 3156); only the key holder's mail client can read it, the webmail cannot");
  withConfigOptions(
    pgp
      .command('set')
      .description('register (or replace) the OpenPGP public key of a mailbox: one ASCII-armored public key (gpg --armor --export ADDRESS > key.asc), not expired nor revoked, able to encrypt')
      .argument('<address>')
      .argument('<key-file>', 'the armored public key; - reads standard input'),
  ).action(
    action(async (address: string, file: string, o: Opts) =>
      withBalContext(o, async (ctx) => {
        let armored: string;
        try {
          armored = readFileSync(file === '-' ? 0 : file, 'utf8');
        } catch (e) {
          throw new ExitError(`cannot read ${file}: ${(e as Error).message}`);
        }
        const k = await registerOpenPgpKey(ctx, address, armored, actor());
        out(`registered OpenPGP key ${k.fingerprint} (${k.algorithm}, ${k.userIds.join(', ') || 'no user id'}, ${k.expiresAt ? `expires ${k.expiresAt.toISOString()}` : 'does not expire'}) for ${k.address}: its mail is stored encrypted from now on\n`);
      }),
    ),
  );
  withConfigOptions(pgp.command('show').description('the OpenPGP key of a mailbox, if any').argument('<address>').option('--armor', 'print the armored public key')).action(
    action(async (address: string, o: Opts & { armor?: boolean }) =>
      withDb(o, async (db) => {
        const k = await openPgpKeyOf(db, address);
        if (!k) throw new MssError('OPENPGP_KEY_NONE', { address });
        out(o.armor ? k.armored : `${k.address}  ${k.fingerprint}  ${k.algorithm}  ${k.userIds.join(', ')}  created ${k.createdAt.toISOString()}  ${k.expiresAt ? `expires ${k.expiresAt.toISOString()}` : 'no expiry'}  registered ${k.registeredAt.toISOString()} by ${k.registeredBy}\n`);
      }),
    ),
  );
  withConfigOptions(pgp.command('remove').description("remove a mailbox's OpenPGP key: mail delivered from then on is stored in clear (what is stored encrypted stays so)").argument('<address>')).action(
    action(async (address: string, o: Opts) =>
      withBalContext(o, async (ctx) => {
        await removeOpenPgpKey(ctx, address, actor());
        out(`removed the OpenPGP key of ${address}\n`);
      }),
    ),
  );

  withConfigOptions(
    bal
      .command('password')
      .description("set a person's password: generated and printed once, or read from standard input")
      .argument('<login>', "the person's login")
      .option('--stdin', 'read the new password from standard input (first line)')
      .option('--totp', 'also turn on TOTP and print the otpauth:// URI to enrol an authenticator app'),
  ).action(
    action(async (login: string, o: Opts & { stdin?: boolean; totp?: boolean }) =>
      withBalContext(o, async (ctx) => {
        if (o.stdin) {
          const pw = readFileSync(0, 'utf8').split(/\r?\n/)[0];
          await setPassword(ctx, { login }, pw, actor());
          out(`password of ${login} set\n`);
        } else {
          const { password } = await resetCredentials(ctx, { login }, actor());
          out(`new password of ${login} (shown once): ${password}\n`);
        }
        if (o.totp) {
          const { uri } = await enableTotp(ctx, { login }, actor());
          out(`TOTP on; enrol with: ${uri}\n(log in with the password followed by the 6-digit code)\n`);
        }
      }),
    ),
  );

  const person = bal.command('person').description('local accounts (professionals and staff) that open mailboxes');
  withConfigOptions(
    person
      .command('add')
      .description('create a local account; a password is generated and printed once')
      .argument('<login>')
      .option('--idnps <id>', 'RPPS / ADELI / IDNPS: binds the account to PER mailboxes and personal certificates')
      .option('--nom <text>')
      .option('--prenom <text>'),
  ).action(
    action(async (login: string, o: Opts & { idnps?: string; nom?: string; prenom?: string }) =>
      withBalContext(o, async (ctx) => {
        const p = await createPerson(ctx, { login, idnps: o.idnps, nom: o.nom, prenom: o.prenom }, actor());
        const { password } = await resetCredentials(ctx, { id: p.id }, actor());
        out(`created account ${p.login}${p.idnps ? ` (${p.idnps})` : ''}; password (shown once): ${password}\n`);
      }),
    ),
  );
  withConfigOptions(person.command('list').description('list local accounts').option('-s, --search <text>').option('--json', 'JSON output')).action(
    action(async (o: Opts & { search?: string; json?: boolean }) =>
      withDb(o, async (db) => {
        const list = await listPersons(db, EVERYWHERE, { text: o.search });
        if (o.json) return out(JSON.stringify(list, null, 2) + '\n');
        for (const p of list) out(`${p.login.padEnd(30)} ${p.idnps ?? '-'}  ${[p.prenom, p.nom].filter(Boolean).join(' ')}${p.hasTotp ? '  totp' : ''}${p.active ? '' : '  disabled'}\n`);
      }),
    ),
  );
}
