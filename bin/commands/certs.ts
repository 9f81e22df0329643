import { existsSync, writeFileSync, chmodSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import { devIssuer, devPkiPaths, initDevPki, issueCertificate, type LeafSpec } from '../../certs/pki.js';
import { action, configFrom, ExitError, withConfigOptions } from '../cli.js';

interface CommonOpts {
  config?: string;
  dataDir?: string;
  dir?: string;
}

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new ExitError(`"${v}" is not a whole number`, 2);
  return n;
};

export function registerCerts(program: Command) {
  const certs = program.command('certs').description('development PKI: CA, server/operator/personal/application/TSA certificates, CRL');

  withConfigOptions(
    certs
      .command('init')
      .description('create the development PKI (keeps files that exist unless --force); its CA is not IGC-Santé: for development and tests only')
      .option('--dir <dir>', 'where to write the PEM files (default: the config\'s pki.dir)')
      .option('--domain <domain>', 'operator domain, CN of the server certificate (default: operator.domain)')
      .option('--peer-domain <domain>', 'domain of the fake peer operator (default: peer.<domain>)')
      .addOption(new Option('--bits <n>', 'RSA key size (default: pki.keyBits, 3072)').argParser(int))
      .addOption(new Option('--days <n>', 'validity of leaf certificates in days (default: pki.validityDays)').argParser(int))
      .option('--force', 'recreate every file, even those that exist'),
  ).action(
    action(async (opts: CommonOpts & { domain?: string; peerDomain?: string; bits?: number; days?: number; force?: boolean }) => {
      const c = configFrom(opts);
      const dir = opts.dir ?? c.pki.dir;
      const { paths, created } = await initDevPki({
        dir,
        domain: opts.domain ?? c.operator.domain,
        peerDomain: opts.peerDomain,
        dnsNames: [c.operator.hostname, ...c.operator.domains],
        keyBits: opts.bits ?? c.pki.keyBits,
        validityDays: opts.days ?? c.pki.validityDays,
        organisation: c.operator.name,
        force: opts.force,
      });
      const out = process.stdout;
      out.write(created.length ? `created in ${dir}:\n${created.map((f) => `  ${f}\n`).join('')}` : `${dir}: every file exists already (use --force to recreate)\n`);
      out.write(`\ncheck a certificate:\n  openssl verify -CAfile ${paths.ca} -untrusted ${paths.intermediate} ${paths.leaves.server.cert}\n`);
      out.write(`check revocation (fails for revoked.pem):\n  openssl verify -crl_check -CRLfile ${paths.crl} -CAfile ${paths.ca} -untrusted ${paths.intermediate} ${paths.leaves.revoked.cert}\n`);
    }),
  );

  withConfigOptions(
    certs
      .command('issue')
      .description('issue an extra certificate from the development intermediate: a professional (personal) or a technical BAL\'s software (application)')
      .addOption(new Option('--type <type>', 'certificate type').choices(['personal', 'application']).makeOptionMandatory())
      .requiredOption('--name <name>', 'file name (NAME.pem, NAME.key); for an application also its CN')
      .option('--rpps <id>', 'personal: RPPS number (11 digits) or national id 8+RPPS')
      .option('--org <id>', 'application: structure id, FINESS (9 characters) or SIRET (14 digits)')
      .option('--surname <nom>', 'personal: surname (default: NAME in capitals)')
      .option('--given-name <prénom>', 'personal: given name', 'PRENOM')
      .option('--profession <label>', 'personal: profession (title)', 'Médecin')
      .option('--email <address>', 'MSSanté address to put in the subjectAltName')
      .option('--dir <dir>', 'PKI directory (default: the config\'s pki.dir)')
      .addOption(new Option('--bits <n>', 'RSA key size (default: pki.keyBits)').argParser(int))
      .option('--force', 'overwrite NAME.pem/NAME.key if they exist'),
  ).action(
    action(
      async (
        opts: CommonOpts & { type: 'personal' | 'application'; name: string; rpps?: string; org?: string; surname?: string; givenName: string; profession: string; email?: string; bits?: number; force?: boolean },
      ) => {
        const c = configFrom(opts);
        const dir = opts.dir ?? c.pki.dir;
        if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(opts.name)) throw new ExitError(`--name "${opts.name}" must be a plain file name (letters, digits, . _ -)`, 2);
        const paths = devPkiPaths(dir);
        if (!existsSync(paths.intermediate) || !existsSync(paths.intermediateKey)) throw new ExitError(`no development PKI in ${dir}: run "mss certs init" first`);
        let spec: LeafSpec;
        if (opts.type === 'personal') {
          if (!opts.rpps) throw new ExitError('--type personal needs --rpps <RPPS number>', 2);
          spec = { type: 'personal', rpps: opts.rpps, surname: opts.surname ?? opts.name.toUpperCase(), givenName: opts.givenName, profession: opts.profession, email: opts.email };
        } else {
          if (!opts.org) throw new ExitError('--type application needs --org <FINESS or SIRET>', 2);
          spec = { type: 'application', name: opts.name, organisation: c.operator.name, organisationId: opts.org, email: opts.email };
        }
        const certFile = join(dir, `${opts.name}.pem`);
        const keyFile = join(dir, `${opts.name}.key`);
        if (!opts.force && (existsSync(certFile) || existsSync(keyFile))) throw new ExitError(`${certFile} exists already (use --force to replace it)`);
        const issued = await issueCertificate(devIssuer(dir), spec, { keyBits: opts.bits ?? c.pki.keyBits, validityDays: c.pki.validityDays });
        for (const [file, text, mode] of [
          [keyFile, issued.keyPem, 0o600],
          [certFile, issued.certPem, 0o644],
        ] as const) {
          rmSync(file, { force: true });
          writeFileSync(file, text, { mode });
          chmodSync(file, mode);
        }
        process.stdout.write(`created ${certFile} and ${keyFile} (serial ${issued.serialNumber})\n`);
        process.stdout.write(`check it:\n  openssl verify -CAfile ${paths.ca} -untrusted ${paths.intermediate} ${certFile}\n`);
      },
    ),
  );
}
