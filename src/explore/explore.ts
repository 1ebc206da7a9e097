/**
 * `tcelab explore`: random exploration on both cores. Each run is a generated sequence on a fresh
 * machine, checked against every invariant; the first violation is shrunk to a minimal scenario.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { InvariantName } from '../check/invariants.js';
import { type Quirks, QUIRKS, type QuirkName } from '../kernel/quirks.js';
import { type ExploreTarget, exploreContainer, exploreScenario, generateSteps } from './generator.js';
import { shrink, toYaml } from './shrink.js';
import type { WorkerInput, WorkerMessage } from './worker.js';

export interface ExploreOptions {
  seed: number;
  seconds: number | null;
  steps: number | null;
  quirks: QuirkName[];
  /** The machine explored (default powernv9). */
  target?: ExploreTarget;
  workers?: number;
  /** Steps per generated sequence. */
  length?: number;
  onProgress?: (p: { steps: number; runs: number; states: number; violations: number }) => void;
}

export interface ExploreResult {
  seed: number;
  workers: number;
  steps: number;
  runs: number;
  states: number;
  violation: null | { invariant: InvariantName; run: number; runSeed: number; generatedSteps: number; shrunkSteps: number; yaml: string };
}

/** Exploration starts from a kernel with every modelled bug fixed; --quirk turns the ones to hunt on. */
export function exploreQuirks(on: QuirkName[]): Partial<Quirks> {
  const q: Partial<Quirks> = {};
  for (const k of Object.keys(QUIRKS) as QuirkName[]) q[k] = on.includes(k);
  return q;
}

export function explore(o: ExploreOptions): Promise<ExploreResult> {
  const workers = o.workers ?? Math.max(1, Math.min(2, availableParallelism()));
  const length = o.length ?? 40;
  const quirks = exploreQuirks(o.quirks);
  const target = o.target ?? 'powernv9';
  const deadline = o.seconds !== null ? Date.now() + o.seconds * 1000 : null;
  const perWorker = new Map<number, { steps: number; runs: number }>();
  const states = new Set<string>();
  let found: Extract<WorkerMessage, { kind: 'violation' }> | null = null;
  return new Promise((resolve, reject) => {
    let live = workers;
    const pool: Worker[] = [];
    const total = () => [...perWorker.values()].reduce((a, b) => ({ steps: a.steps + b.steps, runs: a.runs + b.runs }), { steps: 0, runs: 0 });
    const finish = () => {
      const t = total();
      const res: ExploreResult = { seed: o.seed, workers, steps: t.steps, runs: t.runs, states: states.size, violation: null };
      if (found) {
        const inv = found.invariant as InvariantName;
        const container = exploreContainer(found.runSeed, target);
        const generated = generateSteps(found.runSeed, length, target, container);
        const small = shrink(generated, quirks, inv, target, container);
        res.violation = {
          invariant: inv,
          run: found.run,
          runSeed: found.runSeed,
          generatedSteps: generated.length,
          shrunkSteps: small.length,
          yaml: toYaml(exploreScenario(small, quirks, target, container), inv, o.seed),
        };
      }
      resolve(res);
    };
    for (let i = 0; i < workers; i++) {
      const input: WorkerInput = { seed: o.seed, index: i, workers, deadline, maxSteps: o.steps, length, quirks, target };
      const w = new Worker(new URL('./worker.js', import.meta.url), { workerData: input });
      pool.push(w);
      w.on('message', (msg: WorkerMessage) => {
        if (msg.kind === 'progress') {
          perWorker.set(i, { steps: msg.steps, runs: msg.runs });
          for (const s of msg.states) states.add(s);
          o.onProgress?.({ ...total(), states: states.size, violations: found ? 1 : 0 });
        } else if (msg.kind === 'violation') {
          perWorker.set(i, { steps: msg.steps, runs: (perWorker.get(i)?.runs ?? 0) + 1 });
          if (!found || msg.run < found.run) found = msg;
          for (const p of pool) if (p !== w) void p.terminate();
        } else {
          perWorker.set(i, { steps: msg.steps, runs: msg.runs });
        }
      });
      w.on('error', reject);
      w.on('exit', () => {
        if (--live === 0) finish();
      });
    }
  });
}
