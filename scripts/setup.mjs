#!/usr/bin/env node
// Run before `npm start` and `npm test` (npm's prestart/pretest): installs what is missing
// so the two commands work on a fresh Debian machine, then compiles the TypeScript.
// Plain JavaScript with no dependencies: it must run before node_modules exists.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const forTest = process.argv.includes('--test');
const say = (m) => process.stderr.write(`setup: ${m}\n`);

// Debian packages the platform runs (start) or the tests drive (test): binary (or a shell
// check) → package.
const DEBIAN = [
  { bin: 'openssl', pkg: 'openssl', for: ['start', 'test'] },
  { bin: 'curl', pkg: 'curl', for: ['test'] },
  { bin: '/usr/sbin/dovecot', pkg: 'dovecot-imapd', for: ['start', 'test'] },
  { bin: '/usr/lib/dovecot/lmtp', pkg: 'dovecot-lmtpd', for: ['start', 'test'] },
  // Dovecot's full-text index (mailstore.fullTextSearch): without it a text search reads every message.
  { check: 'test -e /usr/lib/dovecot/modules/lib21_fts_xapian_plugin.so', pkg: 'dovecot-fts-xapian', for: ['start', 'test'] },
  { bin: '/usr/sbin/slapd', pkg: 'slapd', for: ['start', 'test'] },
  { bin: 'ldapsearch', pkg: 'ldap-utils', for: ['test'] },
  // The IMAP proxy's tests drive it with Python's imaplib too (an independent IMAP client).
  { bin: 'python3', pkg: 'python3', for: ['test'] },
  // The TLS audit (tests/certs/tls-audit.test.ts) delivers with swaks, whose TLS needs Net::SSLeay.
  { bin: 'swaks', pkg: 'swaks', for: ['test'] },
  { check: 'perl -MNet::SSLeay -e 1', pkg: 'libnet-ssleay-perl', for: ['test'] },
  // The web pages' tests (tests/webui/) drive Debian's Chromium with playwright-core: no browser is downloaded.
  { bin: '/usr/bin/chromium', pkg: 'chromium', for: ['test'] },
];

function checkNode() {
  const [maj, min] = process.versions.node.split('.').map(Number);
  if (maj < 20 || (maj === 20 && min < 19)) {
    say(`Node.js ${process.versions.node} is too old: install Node.js 20.19 or newer (e.g. from https://nodejs.org or NodeSource's Debian packages).`);
    process.exit(1);
  }
}

function npmDependencies() {
  const lock = join(root, 'package-lock.json');
  const stamp = join(root, 'node_modules', '.mss-installed');
  const want = createHash('sha256').update(readFileSync(lock)).digest('hex');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === want) return;
  say(existsSync(join(root, 'node_modules')) ? 'package-lock.json changed: reinstalling npm packages (npm ci)…' : 'installing npm packages (npm ci)…');
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    say('npm ci failed (see above); fix that and run the command again.');
    process.exit(1);
  }
  writeFileSync(stamp, want);
}

const has = (bin) => spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;

function debianPackages() {
  const purpose = forTest ? 'test' : 'start';
  const present = (d) => (d.check ? spawnSync('sh', ['-c', d.check], { stdio: 'ignore' }).status === 0 : has(d.bin));
  const missing = [...new Set(DEBIAN.filter((d) => d.for.includes(purpose) && !present(d)).map((d) => d.pkg))];
  if (!missing.length) return;
  const isRoot = process.getuid?.() === 0;
  const sudo = !isRoot && has('sudo') && spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status === 0;
  const cmd = `apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing.join(' ')}`;
  if (!isRoot && !sudo) {
    say(`missing Debian packages: ${missing.join(', ')}. Install them as root, then run this again:\n\n  sudo sh -c '${cmd}'\n`);
    process.exit(1);
  }
  say(`installing Debian packages: ${missing.join(', ')}…`);
  const r = spawnSync(isRoot ? 'sh' : 'sudo', isRoot ? ['-c', cmd] : ['sh', '-c', cmd], { stdio: 'inherit' });
  if (r.status !== 0) {
    say(`apt-get failed; install them by hand: ${missing.join(' ')}`);
    process.exit(1);
  }
  // Debian starts a system-wide Dovecot on 143/993 at install: the platform runs its own,
  // and its IMAP proxy needs those ports.
  if (missing.some((p) => p.startsWith('dovecot')) && has('systemctl')) {
    spawnSync(isRoot ? 'systemctl' : 'sudo', isRoot ? ['disable', '--now', 'dovecot'] : ['systemctl', 'disable', '--now', 'dovecot'], { stdio: 'ignore' });
  }
  // Likewise a system-wide slapd on 389: the platform runs its own directory.
  if (missing.includes('slapd') && has('systemctl')) {
    spawnSync(isRoot ? 'systemctl' : 'sudo', isRoot ? ['disable', '--now', 'slapd'] : ['systemctl', 'disable', '--now', 'slapd'], { stdio: 'ignore' });
  }
}

function build() {
  try {
    execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', join(root, 'tsconfig.json')], { cwd: root, stdio: 'inherit' });
    // The web pages: browser ES modules, compiled apart (DOM types, no Node).
    execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', join(root, 'webui', 'tsconfig.json')], { cwd: root, stdio: 'inherit' });
  } catch {
    say('the TypeScript build failed (errors above).');
    process.exit(1);
  }
}

checkNode();
npmDependencies();
debianPackages();
build();
