// What every fuzz test shares: the run count and seed, generators of hostile bytes (random
// soup of a parser's own tokens, and valid inputs with random mutations), and the memory
// measure.
//
// The seed is fixed, so CI runs the same inputs every time and a failure is reproducible:
// fast-check prints the seed and the path of the shrunk counterexample. FUZZ_SEED explores
// other inputs; FUZZ_RUNS raises the count (never below 10,000, the CI floor).
import fc from 'fast-check';
import { expect } from 'vitest';

export const RUNS = Math.max(10_000, Number(process.env.FUZZ_RUNS) || 0);
export const SEED = Number(process.env.FUZZ_SEED ?? 20_260_412);

/**
 * Runs a property RUNS times. `runs` lower only for a build→read round trip through several
 * components each fuzzed with RUNS inputs of its own (a ZIP or an MTOM message built and read
 * whole costs ~5 ms of CPU a run), and said so where it is used.
 */
export function check<T>(arb: fc.Arbitrary<T>, predicate: (v: T) => void, runs = RUNS): void {
  const cpu = process.cpuUsage();
  fc.assert(fc.property(arb, predicate), { numRuns: runs, seed: SEED });
  report(cpu, runs);
}

export async function checkAsync<T>(arb: fc.Arbitrary<T>, predicate: (v: T) => Promise<void>, runs = RUNS): Promise<void> {
  const cpu = process.cpuUsage();
  await fc.assert(fc.asyncProperty(arb, predicate), { numRuns: runs, seed: SEED });
  report(cpu, runs);
}

/** FUZZ_VERBOSE=1: the CPU time of each property (wall time on a shared machine says little). */
function report(since: NodeJS.CpuUsage, runs: number) {
  if (!process.env.FUZZ_VERBOSE) return;
  const u = process.cpuUsage(since);
  console.log(`fuzz: ${runs} runs in ${((u.user + u.system) / 1e6).toFixed(1)} s of CPU (${expect.getState().currentTestName})`);
}

// ---------------------------------------------------------------------------------------
// Memory: what stays reachable after a full collection. vitest starts its workers with
// --expose-gc (vitest.config.ts); without it the bound is not checked (and says so).

const gc = (globalThis as { gc?: () => void }).gc;

function retained(): number {
  gc!();
  gc!();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/**
 * Bytes still retained after `run` (heap + ArrayBuffers, after a full GC): a parser that
 * keeps something per input — a cache, a registry, a leaked listener — grows with the
 * 10,000 inputs and shows here. Returns 0 when gc is not exposed.
 */
export async function retainedGrowth(run: () => unknown): Promise<number> {
  if (!gc) {
    console.warn('fuzz: global.gc is not exposed (run through vitest.config.ts): memory bound not measured');
    await run();
    return 0;
  }
  const before = retained();
  await run();
  const grown = retained() - before;
  if (process.env.FUZZ_VERBOSE) console.log(`fuzz: retained heap grew by ${(grown / 1024 / 1024).toFixed(2)} MiB (${expect.getState().currentTestName})`);
  return grown;
}

/** The bound on retained growth over a whole property run (the inputs themselves are garbage by then). */
export const MAX_RETAINED_GROWTH = 16 * 1024 * 1024;

// ---------------------------------------------------------------------------------------
// Hostile bytes.

/** A byte string (latin1: one char per byte) from a mix of the parser's own tokens and random bytes. */
export function soup(tokens: readonly string[], maxParts = 30): fc.Arbitrary<Buffer> {
  const part = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...tokens) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 8 }).map((b) => Buffer.from(b).toString('latin1')) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 6 }).map((s) => Buffer.from(s, 'utf8').toString('latin1')) },
  );
  return fc.array(part, { maxLength: maxParts }).map((parts) => Buffer.from(parts.join(''), 'latin1'));
}

type Mutation =
  | { kind: 'insert'; at: number; bytes: string }
  | { kind: 'delete'; at: number; len: number }
  | { kind: 'replace'; at: number; byte: number }
  | { kind: 'duplicate'; at: number; len: number }
  | { kind: 'truncate'; at: number };

function mutation(tokens: readonly string[]): fc.Arbitrary<Mutation> {
  const at = fc.double({ min: 0, max: 1, noNaN: true });
  const len = fc.integer({ min: 1, max: 64 });
  return fc.oneof(
    fc.record({ kind: fc.constant('insert' as const), at, bytes: fc.oneof(fc.constantFrom(...tokens), fc.uint8Array({ minLength: 1, maxLength: 4 }).map((b) => Buffer.from(b).toString('latin1'))) }),
    fc.record({ kind: fc.constant('delete' as const), at, len }),
    fc.record({ kind: fc.constant('replace' as const), at, byte: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('duplicate' as const), at, len }),
    fc.record({ kind: fc.constant('truncate' as const), at }),
  );
}

function apply(input: Buffer, muts: Mutation[]): Buffer {
  let b = input;
  for (const m of muts) {
    const i = Math.min(b.length, Math.floor(m.at * (b.length + 1)));
    switch (m.kind) {
      case 'insert':
        b = Buffer.concat([b.subarray(0, i), Buffer.from(m.bytes, 'latin1'), b.subarray(i)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, i), b.subarray(i + m.len)]);
        break;
      case 'replace':
        if (i < b.length) {
          b = Buffer.from(b);
          b[i] = m.byte;
        }
        break;
      case 'duplicate':
        b = Buffer.concat([b.subarray(0, i + m.len), b.subarray(i)]);
        break;
      case 'truncate':
        b = b.subarray(0, i);
        break;
    }
  }
  return b;
}

/** A valid input with one to four random mutations (inserted tokens, deleted, replaced, duplicated bytes, truncation). */
export function mutated(valid: fc.Arbitrary<Buffer>, tokens: readonly string[]): fc.Arbitrary<Buffer> {
  return fc.tuple(valid, fc.array(mutation(tokens), { minLength: 1, maxLength: 4 })).map(([v, m]) => apply(v, m));
}

/** Cut points for feeding a buffer in pieces (TCP cuts streams anywhere). */
export const cuts = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 });

export function pieces(b: Buffer, at: number[]): Buffer[] {
  const points = [...new Set(at.map((x) => Math.floor(x * b.length)))].sort((x, y) => x - y);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    if (p > prev) out.push(b.subarray(prev, p));
    prev = Math.max(prev, p);
  }
  out.push(b.subarray(prev));
  return out;
}
