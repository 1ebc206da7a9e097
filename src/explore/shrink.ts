/** Shrinking a failing sequence to a minimal one that still breaks the same invariant, and writing it as YAML. */
import type { InvariantName } from '../check/invariants.js';
import { runScenario } from '../scenario/runner.js';
import type { Scenario, Step } from '../scenario/schema.js';
import { type ExploreTarget, exploreScenario, type VfioContainerKind } from './generator.js';

export function violates(
  steps: Step[],
  quirks: Scenario['machine']['quirks'],
  invariant: InvariantName,
  target: ExploreTarget = 'powernv9',
  container: VfioContainerKind = 'legacy',
): boolean {
  return runScenario(exploreScenario(steps, quirks, target, container)).violations.some((v) => v.invariant === invariant);
}

/** Delta debugging: remove chunks, then single steps, as long as the invariant still breaks. */
export function shrink(
  steps: Step[],
  quirks: Scenario['machine']['quirks'],
  invariant: InvariantName,
  target: ExploreTarget = 'powernv9',
  container: VfioContainerKind = 'legacy',
): Step[] {
  let cur = steps;
  for (let chunk = Math.max(1, Math.floor(cur.length / 2)); chunk >= 1; chunk = Math.floor(chunk / 2)) {
    for (let i = 0; i < cur.length; ) {
      const cand = [...cur.slice(0, i), ...cur.slice(i + chunk)];
      if (cand.length && violates(cand, quirks, invariant, target, container)) cur = cand;
      else i += chunk;
    }
  }
  return cur;
}

/** A field value in YAML flow style; 64-bit values are quoted hex (a YAML number loses bits past 2^53). */
const yamlValue = (v: unknown): string => {
  if (typeof v === 'bigint') return `"0x${v.toString(16)}"`;
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(yamlValue).join(', ')}]`;
  if (v && typeof v === 'object')
    return `{ ${Object.entries(v)
      .map(([k, x]) => `${k}: ${yamlValue(x)}`)
      .join(', ')} }`;
  return String(v);
};

/** A runnable scenario file for the steps, expecting nothing: `tcelab run` reports the invariant. */
export function toYaml(sc: Scenario, invariant: InvariantName, seed: number): string {
  const lines = [
    `# Found by tcelab explore (seed ${seed}): breaks ${invariant}.`,
    `# Reproduce with: tcelab run <this file>`,
    `name: ${JSON.stringify(`explore: ${invariant}`)}`,
    `machine: { preset: ${sc.machine.preset}, pageSize: ${sc.machine.pageSize}, topology: ${sc.machine.topology}${sc.machine.iommufd ? `, iommufd: ${sc.machine.iommufd}` : ''}${sc.machine.vfioContainer ? `, vfioContainer: ${sc.machine.vfioContainer}` : ''}, quirks: { ${Object.entries(
      sc.machine.quirks,
    )
      .map(([k, v]) => `${k}: ${v}`)
      .join(', ')} } }`,
    'actors:',
  ];
  const used = new Set(sc.steps.map((s) => s.actor).filter((a): a is string => a !== null));
  for (const [name, a] of Object.entries(sc.actors)) {
    if (!used.has(name)) continue;
    if (a.kind === 'driver') lines.push(`  ${name}: { kind: driver, device: "${a.device}" }`);
    else
      lines.push(
        `  ${name}:`,
        '    kind: vfio-user',
        `    memory: [${a.memory.map((m) => `{ at: 0x${m.at.toString(16)}, size: 0x${m.size.toString(16)}, kind: ${m.kind} }`).join(', ')}]`,
      );
  }
  lines.push('steps:');
  for (const s of sc.steps) {
    const f = Object.entries(s.fields).map(([k, v]) => `${k}: ${yamlValue(v)}`);
    lines.push(`  - { ${[...(s.actor ? [`actor: ${s.actor}`] : []), `op: ${s.op}`, ...f].join(', ')} }`);
  }
  return `${lines.join('\n')}\n`;
}
