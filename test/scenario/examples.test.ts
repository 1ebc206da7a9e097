import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
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
  ['phb3-kill-lockup.yaml', 'phb3-kill-no-pages-loops', 'no-soft-lockup'],
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

const PSERIES = readdirSync(join(EX, 'pseries')).filter((f) => f.endsWith('.yaml'));

test('examples/pseries: at least five scenarios', () => assert.ok(PSERIES.length >= 5));

for (const f of PSERIES) {
  test(`pseries/${f} passes (its expectations, and exactly the violations it names)`, () => {
    const r = runScenario(load(`pseries/${f}`));
    assert.deepEqual(
      r.steps.flatMap((s) => s.failures),
      [],
    );
    assert.deepEqual(r.missingViolations, []);
    assert.ok(r.ok);
  });
}

/** Each pSeries quirk: the scenario of the kernel as it is, and the one with the fix. */
const PSERIES_QUIRKS: [string, string, QuirkName][] = [
  ['ddw-boot.yaml', 'ddw-boot-fixed.yaml', 'failed-ddw-sticky'],
  ['default-window-kept.yaml', 'default-window-kept-fixed.yaml', 'default-window-kept-by-hypervisor'],
  ['oops.yaml', 'oops-fixed.yaml', 'unchecked-userspace-view'],
];

for (const [asIs, fixed, quirk] of PSERIES_QUIRKS) {
  test(`pseries/${asIs} and ${fixed} pin ${quirk}: each fails with the other setting`, () => {
    assert.equal(runScenario(load(`pseries/${asIs}`), { [quirk]: false }).ok, false);
    assert.equal(runScenario(load(`pseries/${fixed}`), { [quirk]: true }).ok, false);
  });
}

/**
 * examples/iommufd: each passes on tcelab's PPC64 IOMMUFD driver, and on the RFC's driver shows
 * the named invariant or errno that its header promises.
 */
const IOMMUFD_RFC: Record<string, { invariants: string[]; errno?: string }> = {
  'second-window.yaml': { invariants: [], errno: 'EOPNOTSUPP' },
  'two-pes.yaml': { invariants: ['iommufd-attached-pe-translates'] },
  'direction.yaml': { invariants: ['iommufd-tce-matches-area'] },
  'eeh.yaml': { invariants: [], errno: 'ENOTTY' },
  'hotplug.yaml': { invariants: ['iommufd-attached-pe-translates'] },
  'back-to-kernel.yaml': { invariants: ['iommufd-blocked-pe-no-window', 'tce-tables-reachable'] },
  'compat.yaml': { invariants: [], errno: 'EINVAL' },
};

test('examples/iommufd: at least five scenarios, one per RFC problem listed here', () => {
  const files = readdirSync(join(EX, 'iommufd')).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 5);
  assert.deepEqual(files.sort(), Object.keys(IOMMUFD_RFC).sort());
});

for (const [f, rfc] of Object.entries(IOMMUFD_RFC)) {
  test(`iommufd/${f} passes on tcelab's PPC64 driver`, () => {
    const r = runScenario(load(`iommufd/${f}`));
    assert.deepEqual(
      r.steps.flatMap((s) => s.failures),
      [],
    );
    assert.deepEqual(r.violations, []);
    assert.ok(r.ok);
  });
  test(`iommufd/${f} on the RFC's driver: ${[...rfc.invariants, rfc.errno ?? ''].filter(Boolean).join(', ')}`, () => {
    const r = runScenario(load(`iommufd/${f}`), {}, undefined, 'rfc-2026');
    assert.equal(r.ok, false);
    for (const inv of rfc.invariants)
      assert.ok(
        r.violations.some((v) => v.invariant === inv),
        `${inv} is reported`,
      );
    if (rfc.errno)
      assert.ok(
        r.steps.some((s) => s.summary.includes(`(${rfc.errno})`)),
        `a step answers ${rfc.errno}`,
      );
  });
}
