/** One exploration worker: runs generated sequences until its budget is spent or one breaks an invariant. */
import { parentPort, workerData } from 'node:worker_threads';
import type { Machine } from '../machine/machine.js';
import { runScenario } from '../scenario/runner.js';
import { type ExploreTarget, exploreContainer, exploreScenario, generateSteps } from './generator.js';

export interface WorkerInput {
  seed: number;
  index: number;
  workers: number;
  deadline: number | null;
  maxSteps: number | null;
  length: number;
  quirks: Record<string, boolean>;
  target: ExploreTarget;
}

export type WorkerMessage =
  | { kind: 'progress'; steps: number; runs: number; states: string[] }
  | { kind: 'violation'; run: number; runSeed: number; invariant: string; steps: number }
  | { kind: 'done'; steps: number; runs: number };

/** The run's seed: the exploration seed and the run number, mixed. */
export function runSeed(seed: number, run: number): number {
  return (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(run + 1, 0xc2b2ae35)) >>> 0;
}

/** A coarse fingerprint of the IOMMU state: who owns each group, which windows each PE has. */
function fingerprint(m: Machine): string {
  const parts: string[] = [];
  for (const g of m.groups) parts.push(g.domain[0]!);
  for (const g of m.groups) parts.push(`${g.tableGroup.tables[0] ? 1 : 0}${g.tableGroup.tables[1] ? 1 : 0}`);
  for (const p of m.papr?.phbs ?? []) parts.push(String(p.enabledWindows));
  for (const p of m.pnvPhbs)
    for (const pe of p.pes.values())
      parts.push(`${pe.tables[0] ? 1 : 0}${pe.tables[1] ? 1 : 0}${pe.tceBypassEnabled ? 'b' : ''}${p.hw.peState[pe.peNumber]!.dmaFrozen ? 'f' : ''}`);
  for (const d of m.devices) parts.push(d.driver === 'vfio-pci' ? 'v' : d.driver === 'kernel' ? 'k' : '-');
  return parts.join('');
}

function main(w: WorkerInput): void {
  let steps = 0;
  let runs = 0;
  let fresh: string[] = [];
  const seen = new Set<string>();
  let lastReport = 0;
  for (let run = w.index; ; run += w.workers) {
    if (w.deadline !== null && Date.now() >= w.deadline) break;
    if (w.maxSteps !== null && steps >= Math.ceil(w.maxSteps / w.workers)) break;
    const seed = runSeed(w.seed, run);
    const container = exploreContainer(seed, w.target);
    const r = runScenario(exploreScenario(generateSteps(seed, w.length, w.target, container), w.quirks, w.target, container), {}, (m) => {
      const f = fingerprint(m);
      if (!seen.has(f)) {
        seen.add(f);
        fresh.push(f);
      }
    });
    runs++;
    steps += r.steps.length;
    if (r.violations.length) {
      parentPort!.postMessage({ kind: 'violation', run, runSeed: seed, invariant: r.violations[0]!.invariant, steps } satisfies WorkerMessage);
      return;
    }
    if (runs - lastReport >= 10) {
      parentPort!.postMessage({ kind: 'progress', steps, runs, states: fresh } satisfies WorkerMessage);
      fresh = [];
      lastReport = runs;
    }
  }
  parentPort!.postMessage({ kind: 'progress', steps, runs, states: fresh } satisfies WorkerMessage);
  parentPort!.postMessage({ kind: 'done', steps, runs } satisfies WorkerMessage);
}

if (parentPort) main(workerData as WorkerInput);
