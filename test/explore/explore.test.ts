import assert from 'node:assert/strict';
import { test } from 'node:test';
import { explore } from '../../src/explore/explore.js';
import { generateSteps } from '../../src/explore/generator.js';
import { runScenario } from '../../src/scenario/runner.js';
import { parseScenario } from '../../src/scenario/schema.js';

test('generated sequences are deterministic for a seed', () => {
  assert.deepEqual(generateSteps(42, 30), generateSteps(42, 30));
  assert.notDeepEqual(generateSteps(42, 30), generateSteps(43, 30));
});

test('explore finds the stale table pointer and writes a short reproducer that tcelab run reproduces', async () => {
  const r = await explore({ seed: 1, seconds: null, steps: 20000, quirks: ['stale-table-pointer'], workers: 1 });
  assert.ok(r.violation, 'a violation is found');
  assert.equal(r.violation.invariant, 'device-table-pointer-current');
  assert.ok(r.violation.shrunkSteps <= 10, `shrunk to ${r.violation.shrunkSteps} steps`);
  const sc = parseScenario(r.violation.yaml, 'repro.yaml');
  const again = runScenario(sc);
  assert.ok(again.violations.some((v) => v.invariant === 'device-table-pointer-current'));
});

test('explore on a kernel with every modelled bug fixed finds nothing (bounded run)', async () => {
  const r = await explore({ seed: 7, seconds: null, steps: 6000, quirks: [], workers: 2 });
  assert.equal(r.violation, null);
  assert.ok(r.steps >= 6000 && r.states > 20, `${r.steps} steps, ${r.states} states`);
});

test('explore on pseries: only the LPAR ops and devices are generated', () => {
  const steps = Array.from({ length: 20 }, (_, i) => generateSteps(i, 40, 'pseries')).flat();
  assert.ok(steps.every((s) => !['eeh-inject', 'eeh-recover', 'hotplug-remove', 'hotplug-add', 'device-read', 'device-write'].includes(s.op)));
  const devices = new Set(steps.map((s) => s.fields.device).filter((d) => d !== undefined));
  assert.deepEqual([...devices].sort(), ['0000:00:01.0', '0001:00:01.0']);
});

test('explore on pseries with every bug fixed finds nothing (bounded run)', async () => {
  const r = await explore({ seed: 3, seconds: null, steps: 3000, quirks: [], workers: 1, target: 'pseries' });
  assert.equal(r.violation, null);
  assert.ok(r.states > 5, `${r.states} states`);
});

test('explore on pseries finds the default window the hypervisor keeps, as a runnable pseries scenario', async () => {
  const r = await explore({ seed: 1, seconds: null, steps: 4000, quirks: ['default-window-kept-by-hypervisor'], workers: 1, target: 'pseries' });
  assert.equal(r.violation?.invariant, 'hypervisor-windows-known');
  assert.ok(r.violation.shrunkSteps <= 6, `shrunk to ${r.violation.shrunkSteps} steps`);
  const sc = parseScenario(r.violation.yaml, 'repro.yaml');
  assert.equal(sc.machine.preset, 'pseries');
  assert.ok(runScenario(sc).violations.some((v) => v.invariant === 'hypervisor-windows-known'));
});
