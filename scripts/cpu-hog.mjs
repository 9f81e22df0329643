#!/usr/bin/env node
// One CPU-bound process, for running the tests on a busy machine (.ci/run starts two beside
// `npm test`): CI machines are not idle, and a test that only passes on an idle one is a
// defect. Bounded on every path: it stops when its parent goes away (the shell that started
// it died without running its trap), after --minutes (default 90), and on SIGTERM/SIGINT.
//
//   node scripts/cpu-hog.mjs [--minutes N]
const i = process.argv.indexOf('--minutes');
const minutes = i > 0 ? Number(process.argv[i + 1]) : 90;
if (!(minutes > 0)) {
  console.error('cpu-hog: --minutes must be a positive number');
  process.exit(2);
}
const parent = process.ppid;
const end = Date.now() + minutes * 60_000;
for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(s, () => process.exit(0));

// Busy for 100 ms at a time; between slices, check the bounds and let signals in.
let x = 1;
function slice() {
  const until = Date.now() + 100;
  while (Date.now() < until) for (let k = 0; k < 10_000; k++) x = (x * 1103515245 + 12345) % 2147483648;
  if (Date.now() > end || process.ppid !== parent) process.exit(0);
  setImmediate(slice);
}
slice();
