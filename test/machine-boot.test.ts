import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { machineOptionsFor } from '../src/conformance/environment.js';
import { parseRecords } from '../src/conformance/records.js';
import { Machine, type MachineOptions } from '../src/machine/machine.js';
import { TopologyError, validateTopology } from '../src/machine/topology.js';

const FIXTURES = join(import.meta.dirname, '../../fixtures');
const BOOT = join(FIXTURES, 'boot');

/**
 * The PE and DMA lines of the real kernel's boot log (QEMU console, recorded with the oracle kit),
 * each on the machine its recording (fixtures/oracle/<variant>.jsonl) asks for: its QEMU machine
 * and RAM, kernel page size and command line.
 */
for (const file of readdirSync(BOOT).filter((f) => f.endsWith('.txt'))) {
  const variant = file.slice(0, -'.txt'.length);
  test(`${variant} boots to the PE and DMA lines the real kernel printed`, () => {
    const first = readFileSync(join(FIXTURES, 'oracle', `${variant}.jsonl`), 'utf8').split('\n')[0]!;
    const opts: MachineOptions = machineOptionsFor(parseRecords(first, `${variant}.jsonl`)[0]!);
    const want = readFileSync(join(BOOT, file), 'utf8').trim().split('\n');
    const m = new Machine(opts);
    assert.deepEqual(m.klog.lines, want);
  });
}

test('a topology file is validated with errors that name the field and the limit', () => {
  const bad: [unknown, RegExp][] = [
    [{ phbs: 9, devices: [] }, /^topology: phbs: expected an integer from 1 to 6, got 9$/],
    [{ phbs: 2, devices: [{ bdf: '0000:1:0.0' }] }, /devices\[0\]\.bdf: expected "dddd:bb:dd\.f"/],
    [{ phbs: 2, devices: [{ bdf: '0005:01:00.0', vendor: 1, device: 2 }] }, /devices\[0\]\.bdf: domain 5 has no PHB \(phbs: 2\)/],
    [{ phbs: 2, devices: [{ bdf: '0000:01:00.0', vendor: 0x10000, device: 2 }] }, /devices\[0\]\.vendor: expected an integer from 0 to 0xffff, got 65536/],
    [
      { phbs: 2, devices: [{ bdf: '0000:01:00.0', vendor: 1, device: 2, dmaBits: 16 }] },
      /devices\[0\]\.dmaBits: a DMA mask narrower than 24 bits is not supported, got 16/,
    ],
  ];
  for (const [t, re] of bad)
    assert.throws(
      () => validateTopology(t, 6),
      (e: unknown) => e instanceof TopologyError && re.test(e.message),
    );
  const ok = validateTopology({ phbs: 2, devices: [{ bdf: '0001:01:00.0', vendor: 0x1af4, device: 0x1041, m64: true }] }, 6);
  const m = new Machine({ preset: 'powernv9', pageSize: '64k', topology: ok });
  assert.equal(m.peOf(m.device('0001:01:00.0')!)!.peNumber, 0, 'a function in the M64 window gets the PE of its segment');
});
