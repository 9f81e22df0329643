// What the benches read of other processes in /proc (Linux): parent, name, CPU time. One
// parser of /proc/<pid>/stat for all of them (the name may hold spaces and parentheses:
// the fields start after the last ')').
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second, the unit of /proc's times. */
const TICK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

export interface ProcStat {
  pid: number;
  ppid: number;
  comm: string;
  /** User + system CPU, ms. */
  cpuMs: number;
  /** cpuMs plus what it collected from children it waited for (a reaped child counts in its parent). */
  treeMs: number;
  /** Start time, in clock ticks since boot. */
  start: number;
}

/** One process, or undefined when it is gone (or /proc cannot tell: another system). */
export function procStat(pid: number): ProcStat | undefined {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const close = st.lastIndexOf(')');
    const f = st.slice(close + 2).split(' ');
    const ms = (i: number) => (1000 * Number(f[i])) / TICK;
    return { pid, ppid: Number(f[1]), comm: st.slice(st.indexOf('(') + 1, close), cpuMs: ms(11) + ms(12), treeMs: ms(11) + ms(12) + ms(13) + ms(14), start: Number(f[19]) };
  } catch {
    return undefined;
  }
}

/** Every process alive now. */
export function allProcs(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const p = procStat(Number(d));
    if (p) out.push(p);
  }
  return out;
}

/** The processes of `procs` that descend from `root` (root included). */
export function descendants(procs: ProcStat[], root: number): ProcStat[] {
  const byPid = new Map(procs.map((p) => [p.pid, p]));
  const inTree = (pid: number): boolean => pid === root || (pid > 1 && byPid.has(pid) && inTree(byPid.get(pid)!.ppid));
  return procs.filter((p) => inTree(p.pid));
}

/** Clock ticks since boot, in the unit of ProcStat.start. */
export function uptimeTicks(): number {
  return Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * TICK;
}

export interface Memory {
  /** Resident set, bytes. */
  rss: number;
  /** Proportional set size, bytes: shared pages divided among the processes that map them. */
  pss: number;
  /** Peak resident set (VmHWM), bytes. */
  peak: number;
}

/** One process's memory, or undefined when it is gone. */
export function memoryOf(pid: number): Memory | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    const kib = (text: string, field: string) => 1024 * Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0);
    let pss = 0;
    try {
      pss = kib(readFileSync(`/proc/${pid}/smaps_rollup`, 'latin1'), 'Pss');
    } catch {
      /* another user's process, or an older kernel */
    }
    return { rss: kib(status, 'VmRSS'), pss, peak: kib(status, 'VmHWM') };
  } catch {
    return undefined;
  }
}
