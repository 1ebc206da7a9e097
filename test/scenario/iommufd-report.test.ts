/** The IOMMUFD section of the machine report (what `--json` and the view show), on the IOMMUFD examples. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Machine } from '../../src/machine/machine.js';
import { type MachineReport, machineReport } from '../../src/scenario/report.js';
import { scenarioSteps } from '../../src/scenario/runner.js';
import { parseScenario } from '../../src/scenario/schema.js';
import { findTable } from '../../src/scenario/tables.js';

const EX = join(import.meta.dirname, '../../../examples/iommufd');

/**
 * The reports after the one-line step of the file containing `marker` and after the last step.
 * On tcelab's driver every expectation of the scenario holds; the RFC's fails some by design.
 */
function reportsOf(file: string, marker: string, driver?: 'rfc-2026'): { at: MachineReport; last: MachineReport; lastMachine: Machine } {
  const text = readFileSync(join(EX, file), 'utf8');
  const line = text.split('\n').findIndex((l) => l.includes(marker)) + 1;
  assert.ok(line > 0, `${file} has no line with ${marker}`);
  let at: MachineReport | undefined;
  let lastMachine: Machine | undefined;
  for (const s of scenarioSteps(parseScenario(text, file), {}, driver)) {
    if (!('result' in s)) continue;
    if (!driver) assert.deepEqual(s.result.failures, [], s.result.where);
    if (s.result.where === `${file}:${line}`) at = machineReport(s.machine);
    lastMachine = s.machine;
  }
  assert.ok(at, `no step at ${file}:${line}`);
  return { at, last: machineReport(lastMachine!), lastMachine: lastMachine! };
}

const ATTACH_B = 'fd: devB, request: VFIO_DEVICE_ATTACH_IOMMUFD_PT';

test('two-pes.yaml: one IOAS, one shared automatic HWPT, both devices attached, both PEs owned by it', () => {
  const { at: r, last } = reportsOf('two-pes.yaml', ATTACH_B);
  assert.equal(r.iommufd?.driver, 'ppc64');
  assert.equal(r.iommufd.contexts.length, 1);
  const ctx = r.iommufd.contexts[0]!;
  assert.equal(ctx.ioas.length, 1);
  const ioas = ctx.ioas[0]!;
  assert.deepEqual(ioas.areas, [{ iova: '0x100000', last: '0x1fffff', prot: 7, pinned: true }]);
  assert.equal(ioas.iovaAlignment, '0x10000');
  assert.deepEqual(ioas.usable, [{ start: '0x0', last: '0x7fffffff' }]);

  assert.equal(ctx.hwpts.length, 1);
  const hwpt = ctx.hwpts[0]!;
  assert.equal(hwpt.auto, true);
  assert.equal(hwpt.ioas, ioas.id);
  assert.equal(hwpt.domain?.windows.length, 1);
  const w = hwpt.domain.windows[0]!;
  assert.deepEqual({ ...w, table: 0 }, { num: 0, start: '0x0', last: '0x7fffffff', pageSize: 65536, table: 0 });

  assert.deepEqual(
    ctx.devices.map((d) => [d.name, d.hwpt]),
    [
      ['0000:01:00.0', hwpt.id],
      ['0001:01:00.0', hwpt.id],
    ],
  );
  assert.notEqual(ctx.devices[0]!.group, ctx.devices[1]!.group);

  for (const name of ['0000:01:00.0', '0001:01:00.0']) {
    const pe = r.pes.find((p) => p.devices.includes(name))!;
    assert.equal(pe.owner, 'iommufd', name);
    assert.deepEqual(pe.hwpt, { context: 1, id: hwpt.id, domain: hwpt.domain.label }, name);
    // The PE's window #0 is the domain's shared table, labelled with its HWPT.
    assert.deepEqual(
      pe.windows.map((x) => [x.num, x.start, x.table, x.hwpt]),
      [[0, '0x0', w.table, { context: 1, id: hwpt.id }]],
      name,
    );
  }
  // The vmm exited: its context is gone and both PEs are back with the kernel, unlabelled.
  assert.deepEqual(last.iommufd?.contexts, []);
  for (const pe of last.pes) {
    assert.equal(pe.owner, 'kernel');
    assert.equal(pe.hwpt, undefined);
    assert.ok(pe.windows.every((x) => x.hwpt === undefined));
  }
});

test('two-pes.yaml on the RFC driver: the second PE is attached to the HWPT but has no window (bug C)', () => {
  const { at: r } = reportsOf('two-pes.yaml', ATTACH_B, 'rfc-2026');
  const hwpt = r.iommufd!.contexts[0]!.hwpts[0]!;
  assert.equal(r.iommufd!.driver, 'rfc-2026');
  assert.match(hwpt.domain!.label, / rfc$/);
  // The RFC's aperture ends one byte past its 1 GiB window (quirk rfc-aperture-off-by-one).
  assert.deepEqual(hwpt.domain!.aperture, { start: '0x0', last: '0x40000000' });
  assert.deepEqual(
    hwpt.domain!.windows.map((x) => [x.start, x.last, x.pageSize]),
    [['0x0', '0x3fffffff', 4096]],
  );
  const a = r.pes.find((p) => p.devices.includes('0000:01:00.0'))!;
  const b = r.pes.find((p) => p.devices.includes('0001:01:00.0'))!;
  assert.equal(a.hwpt?.id, hwpt.id);
  assert.equal(b.hwpt?.id, hwpt.id);
  assert.equal(a.windows.length, 1);
  assert.deepEqual(b.windows, []);
});

test('second-window.yaml: after the detach and close the HWPT keeps both windows, its tables still reachable', () => {
  const { at, last, lastMachine } = reportsOf('second-window.yaml', 'request: VFIO_DEVICE_DETACH_IOMMUFD_PT');
  // Detached: the device stays bound with no HWPT, its PE blocked, without a window.
  assert.deepEqual(
    at.iommufd!.contexts[0]!.devices.map((d) => [d.name, d.hwpt]),
    [['0000:01:00.0', null]],
  );
  const nic = at.pes.find((p) => p.devices.includes('0000:01:00.0'))!;
  assert.deepEqual([nic.owner, nic.hwpt, nic.windows], ['blocked', undefined, []]);
  const ctx = last.iommufd!.contexts[0]!;
  assert.deepEqual(ctx.devices, []);
  const hwpt = ctx.hwpts[0]!;
  assert.equal(hwpt.auto, false);
  assert.deepEqual(
    hwpt.domain!.windows.map((x) => [x.start, x.last]),
    [
      ['0x0', '0x7fffffff'],
      ['0x800000000000000', '0x8000000ffffffff'],
    ],
  );
  assert.deepEqual(ctx.ioas[0]!.usable, [
    { start: '0x0', last: '0x7fffffff' },
    { start: '0x800000000000000', last: '0x8000000ffffffff' },
  ]);
  // No PE holds the domain's tables now; the table view still finds them.
  for (const x of hwpt.domain!.windows) {
    assert.ok(last.pes.every((pe) => pe.windows.every((pw) => pw.table !== x.table)));
    assert.equal(findTable(lastMachine, x.table)?.id, x.table);
  }
});

test('a machine without IOMMUFD: no iommufd section and no HWPT labels (the report is as before)', () => {
  const r = machineReport(new Machine({ preset: 'powernv9', pageSize: '64k' }));
  assert.equal('iommufd' in r, false);
  assert.ok(r.pes.every((pe) => !('hwpt' in pe) && pe.windows.every((w) => !('hwpt' in w))));
});
