/** `tcelab explore`: run the explorer, show progress, write the reproducer, summarise. */
import { writeFileSync } from 'node:fs';
import { explore } from '../explore/explore.js';
import type { ExploreTarget } from '../explore/generator.js';
import { INVARIANTS } from '../check/invariants.js';
import type { QuirkName } from '../kernel/quirks.js';

export interface ExploreCliOptions {
  seconds: number | null;
  steps: number | null;
  seed: number;
  quirks: QuirkName[];
  target: ExploreTarget;
  out: string;
  json: boolean;
  workers?: number;
}

export async function exploreCommand(o: ExploreCliOptions): Promise<number> {
  const tty = process.stderr.isTTY;
  let last = 0;
  const r = await explore({
    seed: o.seed,
    seconds: o.seconds,
    steps: o.steps,
    quirks: o.quirks,
    target: o.target,
    ...(o.workers ? { workers: o.workers } : {}),
    onProgress: (p) => {
      const line = `explore: ${p.steps} steps, ${p.runs} runs, ${p.states} states, ${p.violations} violations`;
      if (tty) process.stderr.write(`\r${line}`);
      else if (p.runs - last >= 200) {
        last = p.runs;
        process.stderr.write(`${line}\n`);
      }
    },
  });
  if (tty) process.stderr.write('\n');
  if (r.violation) writeFileSync(o.out, r.violation.yaml);
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ ...r, reproducer: r.violation ? o.out : null }, null, 2)}\n`);
  } else {
    const lines = [
      `explored ${r.steps} steps in ${r.runs} runs of ${o.target} on ${r.workers} worker(s), seed ${r.seed}, ${r.states} distinct states`,
      `quirks on: ${o.quirks.length ? o.quirks.join(', ') : 'none (every modelled kernel bug fixed)'}`,
    ];
    if (r.violation) {
      const v = r.violation;
      lines.push(
        `violation: ${v.invariant} — ${INVARIANTS[v.invariant]}`,
        `  run ${v.run} (seed ${v.runSeed}): ${v.generatedSteps} steps, shrunk to ${v.shrunkSteps}`,
        `  reproducer written to ${o.out}; run it with: tcelab run ${o.out}`,
      );
    } else lines.push('no invariant was violated');
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  return r.violation ? 1 : 0;
}
