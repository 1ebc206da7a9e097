/** `tcelab run FILE`: load, validate and run a scenario, report and choose the exit code. */
import { writeFileSync } from 'node:fs';
import type { Quirks } from '../kernel/quirks.js';
import { readInputFile } from './input.js';
import { type MachineReport, machineReport } from '../scenario/report.js';
import { type RunResult, runScenario } from '../scenario/runner.js';
import { parseScenario, type Scenario, ScenarioError } from '../scenario/schema.js';
import { eventLogLines, recordScenario, TimelineRecorder } from '../scenario/timeline.js';

/** Run a scenario recording its timeline, with the machine report after every step, into an event log. */
function runRecorded(sc: Scenario, quirks: Partial<Quirks>, file: string, out: string, iommufd?: 'ppc64' | 'rfc-2026'): RunResult {
  const rec = new TimelineRecorder();
  const states: MachineReport[] = [];
  const it = recordScenario(sc, quirks, rec, iommufd);
  let r = it.next();
  for (; !r.done; r = it.next()) states.push(machineReport(r.value.machine));
  writeFileSync(out, `${eventLogLines({ source: file, kind: 'scenario' }, rec, states).join('\n')}\n`);
  return r.value;
}

export function runScenarioFile(file: string, quirks: Partial<Quirks>, json: boolean, events?: string, iommufd?: 'ppc64' | 'rfc-2026'): number {
  const text = readInputFile(file);
  if (text === null) return 2;
  let sc: Scenario;
  try {
    sc = parseScenario(text, file);
  } catch (e) {
    if (!(e instanceof ScenarioError)) throw e;
    process.stderr.write(`tcelab: ${e.message}\n`);
    return 2;
  }
  const r = events ? runRecorded(sc, quirks, file, events, iommufd) : runScenario(sc, quirks, undefined, iommufd);
  if (json) {
    process.stdout.write(`${JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v), 2)}\n`);
    return r.ok ? 0 : 1;
  }
  const out: string[] = [`scenario: ${r.scenario}`];
  for (const s of r.steps) {
    out.push(`  ${s.failures.length ? 'FAIL' : 'ok  '} ${s.where} ${s.actor ? `${s.actor} ` : ''}${s.op}${s.summary ? `: ${s.summary}` : ''}`);
    for (const f of s.failures) out.push(`         ${f}`);
  }
  for (const v of r.violations) {
    const expected = r.expectedViolations.includes(v.invariant) ? ' (expected by the scenario)' : '';
    out.push('', `invariant violated${expected}: ${v.invariant} — ${v.explanation}`, `  at step ${v.step}: ${v.detail}`, '  events that led there:');
    for (const c of v.chain) out.push(`    ${c}`);
  }
  for (const v of r.missingViolations) out.push('', `expected invariant violation did not happen: ${v}`);
  const failed = r.steps.filter((s) => s.failures.length).length;
  const unexpected = r.violations.filter((v) => !r.expectedViolations.includes(v.invariant)).length;
  const held = r.expectedViolations.length
    ? `all expectations held; the expected violation(s) ${r.expectedViolations.join(', ')} happened`
    : 'all expectations and invariants held';
  out.push(
    '',
    r.ok ? held : `${failed} step(s) failed, ${unexpected} unexpected invariant violation(s), ${r.missingViolations.length} expected violation(s) missing`,
  );
  process.stdout.write(`${out.join('\n')}\n`);
  return r.ok ? 0 : 1;
}
