import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { QuirkName } from '../../src/kernel/quirks.js';
import { runScenario } from '../../src/scenario/runner.js';
import { parseScenario } from '../../src/scenario/schema.js';

const EX = join(import.meta.dirname, '../../../examples');
const load = (f: string) => parseScenario(readFileSync(join(EX, f), 'utf8'), f);

test('the tour scenario passes', () => {
  const r = runScenario(load('tour.yaml'));
  assert.deepEqual(
    r.steps.flatMap((s) => s.failures),
    [],
  );
  assert.deepEqual(r.violations, []);
});

const REENACTMENTS: [string, QuirkName, string][] = [
  ['stale-table-pointer.yaml', 'stale-table-pointer', 'device-table-pointer-current'],
  ['missing-tce-kill.yaml', 'missing-tce-kill', 'no-stale-tce-cache-dma'],
  ['create-locked-vm-leak.yaml', 'create-locked-vm-leak', 'locked-vm-accounted'],
  ['pseries-default-window-kept.yaml', 'default-window-kept-by-hypervisor', 'hypervisor-windows-known'],
];

for (const [file, quirk, invariant] of REENACTMENTS) {
  test(`${file}: passes with ${quirk} off`, () => {
    const r = runScenario(load(file), { [quirk]: false });
    assert.deepEqual(
      r.steps.flatMap((s) => s.failures),
      [],
    );
    assert.deepEqual(r.violations, []);
    assert.ok(r.ok);
  });
  test(`${file}: reports ${invariant} with ${quirk} on`, () => {
    const r = runScenario(load(file), { [quirk]: true });
    assert.equal(r.ok, false);
    assert.deepEqual([...new Set(r.violations.map((v) => v.invariant))], [invariant]);
    assert.ok(r.violations[0]!.chain.length > 0, 'the chain of events is reported');
  });
}

test('hotplug.yaml: the PE goes with its last function and comes back with it', () => {
  const r = runScenario(load('hotplug.yaml'));
  assert.deepEqual(
    r.steps.flatMap((s) => s.failures),
    [],
  );
  assert.deepEqual(r.violations, []);
});
