// The model side of one workload, in its own node process: `node child.mjs <workload> <json opts>`.
// run() may return its own `t` when untimed setup surrounds the measured part.
// Protocol (the same as the C baselines): each "run" line on stdin runs the workload once and
// prints {"t":seconds,"work":n,"check":c}; "quit" prints {"peakRssBytes":n} and exits.
import { createInterface } from 'node:readline';

const [name, optsJson] = process.argv.slice(2);
const mod = await import(`./${name}.mjs`);
const w = await mod.setup(JSON.parse(optsJson ?? '{}'));
process.stdout.write(`${JSON.stringify({ ready: true, ...(w.info ?? {}) })}\n`);

for await (const line of createInterface({ input: process.stdin })) {
  if (line.startsWith('run')) {
    const t0 = process.hrtime.bigint();
    const r = w.run();
    const t = r.t ?? Number(process.hrtime.bigint() - t0) / 1e9;
    process.stdout.write(`${JSON.stringify({ t, work: r.work, check: r.check, ...(r.extra ?? {}) })}\n`);
  } else if (line.startsWith('quit')) {
    const extra = w.finish ? w.finish() : {};
    process.stdout.write(`${JSON.stringify({ peakRssBytes: process.resourceUsage().maxRSS * 1024, ...extra })}\n`);
    process.exit(0);
  }
}
