// bench/encryption: what encryption at rest (issue 16 §3) costs inbound mail — Dovecot's
// mail_crypt plus the sealed spool bodies — against the same platform without it, same run.
//
//   node dist/bench/encryption.js [--messages 1000] [--connections 16] [--size 10240] [--rounds 3]
//
// Each round runs bench/smtp-inbound's own measurement of our MX (--only ours: mutual TLS,
// LDAP, spool row committed before 250, LMTP into Dovecot, timed until every message is in
// its mailbox) twice, once with crypt.mailStore and crypt.spool off and once on, in
// alternating order, each on a fresh platform of its own. Both run without Dovecot's
// full-text index, which the platform does not keep while mail is encrypted (its words
// would be in clear): the figures compare the encryption alone. Prints msg/s and CPU ms per
// message of the platform's side (platform process, Dovecot, slapd; the load generator
// excluded), medians over the rounds, the ratios on / off (target: at most 10 % slower)
// and the load average. Loopback only, bounded like bench/smtp-inbound.
import { spawn } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { fromRoot } from '../core/paths.js';

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '1000' },
    connections: { type: 'string', default: '16' },
    size: { type: 'string', default: '10240' },
    rounds: { type: 'string', default: '3' },
    timeout: { type: 'string', default: '600' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  process.stdout.write(
    'usage: node dist/bench/encryption.js [--messages N] [--connections C] [--size BYTES] [--rounds R] [--timeout SECONDS]\n\n' +
      'Inbound mail through our MX into Dovecot (bench/smtp-inbound --only ours), with encryption at rest off and on\n' +
      '(crypt.mailStore + crypt.spool), alternating, R rounds: msg/s and CPU ms per message, medians, ratio on/off.\n',
  );
  process.exit(0);
}

const say = (s: string) => process.stdout.write(s + '\n');
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
type Mode = 'off' | 'on';
interface Figures {
  rate: number;
  /** CPU ms per message of the platform process, Dovecot and slapd. */
  cpu: number;
  parts: Record<string, number>;
}

/** One bench/smtp-inbound run of our MX alone; its round line and CPU line parsed. */
function runOnce(mode: Mode): Promise<Figures> {
  const argv = [fromRoot('dist', 'bench', 'smtp-inbound.js'), '--only', 'ours', '--crypt', mode, '--fts', 'off', '--messages', args.messages!, '--connections', args.connections!, '--size', args.size!, '--timeout', args.timeout!];
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      const rate = /round 1 ours\s+([\d.]+) msg\/s into Dovecot/.exec(out);
      const cpuLine = /CPU ms per message: (.*); total/.exec(out);
      if (code !== 0 || !rate || !cpuLine) return reject(new Error(`bench/smtp-inbound --crypt ${mode} failed (exit ${code}):\n${out}`));
      const parts = Object.fromEntries(cpuLine[1].split(', ').map((p) => p.split(' ')).map(([k, v]) => [k, Number(v)]));
      const cpu = ['platform', 'dovecot', 'slapd'].reduce((a, k) => a + (parts[k] ?? 0), 0);
      resolve({ rate: Number(rate[1]), cpu, parts });
    });
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const h = Math.floor(s.length / 2);
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
};

const ROUNDS = Number(args.rounds);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1 || ROUNDS > 20) throw new Error('--rounds: 1 to 20');
const load0 = load();
say(`bench/encryption — ${args.messages} messages of ${args.size} B over ${args.connections} connections, ${ROUNDS} round(s) of off/on; ${cpus().length} CPUs, load average ${load0}`);
const results: Record<Mode, Figures[]> = { off: [], on: [] };
for (let r = 0; r < ROUNDS; r++) {
  // Alternate which goes first, so a drift of the machine's load does not favour one side.
  for (const mode of (r % 2 ? ['on', 'off'] : ['off', 'on']) as Mode[]) {
    const f = await runOnce(mode);
    results[mode].push(f);
    say(`  round ${r + 1} encryption ${mode.padEnd(3)} ${f.rate.toFixed(1).padStart(7)} msg/s, CPU ${f.cpu.toFixed(2)} ms/msg (platform ${f.parts.platform ?? 0}, dovecot ${f.parts.dovecot ?? 0}, slapd ${f.parts.slapd ?? 0}); load ${load()}`);
  }
}
const rate = (m: Mode) => median(results[m].map((f) => f.rate));
const cpu = (m: Mode) => median(results[m].map((f) => f.cpu));
say('');
say(`median of ${ROUNDS} round(s)    msg/s   CPU ms/msg (platform + Dovecot + slapd)`);
for (const m of ['off', 'on'] as Mode[]) say(`  encryption ${m.padEnd(3)}        ${rate(m).toFixed(1).padStart(7)}   ${cpu(m).toFixed(2)}`);
const slower = 1 - rate('on') / rate('off');
const dearer = cpu('on') / cpu('off') - 1;
say(`  ratio on / off: msg/s ${(rate('on') / rate('off')).toFixed(3)} (${(100 * slower).toFixed(1)} % slower; target ≤ 10 %: ${slower <= 0.1 ? 'met' : 'NOT met'}), CPU per message ${(cpu('on') / cpu('off')).toFixed(3)} (${dearer >= 0 ? `${(100 * dearer).toFixed(1)} % more` : `${(-100 * dearer).toFixed(1)} % less`})`);
say(`  load average before ${load0}, after ${load()}; ${cpus().length} CPUs shared by the generator, the MX and Dovecot`);
