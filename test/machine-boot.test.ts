import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Machine, type MachineOptions } from '../src/machine/machine.js';
import { TopologyError, validateTopology } from '../src/machine/topology.js';

const BOOT = join(import.meta.dirname, '../../fixtures/boot');

/** The PE and DMA lines of the real kernel's boot log (QEMU console, recorded with the oracle kit). */
const VARIANTS: [string, MachineOptions][] = [
  ['p9-64k', { preset: 'powernv9', pageSize: '64k' }],
  ['p9-4k', { preset: 'powernv9', pageSize: '4k' }],
  ['p8-64k', { preset: 'powernv8', pageSize: '64k' }],
  ['p10-64k', { preset: 'powernv10', pageSize: '64k' }],
];

for (const [variant, opts] of VARIANTS) {
  test(`${variant} boots to the PE and DMA lines the real kernel printed`, () => {
    const want = readFileSync(join(BOOT, `${variant}.txt`), 'utf8')
      .trim()
      .split('\n');
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
