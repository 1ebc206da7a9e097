import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseScenario, ScenarioError } from '../../src/scenario/schema.js';

const HEAD = `machine: { preset: powernv9 }
actors:
  nic: { kind: driver, device: "0000:01:00.0" }
steps:
`;

const BAD: [string, string, RegExp][] = [
  ['YAML syntax', 'steps: [\n', /^f\.yaml:2:1: YAML syntax/],
  ['unknown op', `${HEAD}  - { actor: nic, op: frobnicate }\n`, /^f\.yaml:5:23: steps\[0\]\.op: unknown op "frobnicate"; expected one of/],
  ['wrong type', `${HEAD}  - { actor: nic, op: dma-set-mask, bits: "wide" }\n`, /^f\.yaml:5:43: steps\[0\]\.bits: expected a non-negative integer, got "wide"/],
  ['missing field', `${HEAD}  - { actor: nic, op: dma-set-mask }\n`, /^f\.yaml:5:5: steps\[0\]: dma-set-mask needs field "bits"/],
  [
    'unknown field',
    `${HEAD}  - { actor: nic, op: dma-unmap, mapping: a, colour: red }\n`,
    /^f\.yaml:5:54: steps\[0\]\.colour: dma-unmap has no field "colour"/,
  ],
  ['unknown actor', `${HEAD}  - { actor: qemu, op: exit }\n`, /^f\.yaml:5:14: steps\[0\]\.actor: expected one of the actors \(nic\), got "qemu"/],
  ['wrong actor kind', `${HEAD}  - { actor: nic, op: exit }\n`, /steps\[0\]: exit needs a vfio-user actor, "nic" is a driver/],
  [
    'bad preset',
    'machine: { preset: powernv7 }\nsteps: []\n',
    /^f\.yaml:1:20: machine\.preset: expected powernv8, powernv9, powernv10 or pseries, got "powernv7"/,
  ],
  ['unknown quirk', 'machine: { quirks: { frob: true } }\nsteps: []\n', /machine\.quirks: unknown quirk "frob"/],
  [
    'bad ioctl name',
    `actors:\n  q: { kind: vfio-user }\nsteps:\n  - { actor: q, op: ioctl, fd: c, request: VFIO_FROB }\n`,
    /^f\.yaml:4:44: steps\[0\]\.request: expected a VFIO ioctl name/,
  ],
  [
    'pseries option on powernv',
    'machine: { preset: powernv9, maxmem: 4G }\nsteps: []\n',
    /^f\.yaml:1:38: machine\.maxmem: only for preset pseries \(this machine is powernv9\)/,
  ],
  ['bad on/off', 'machine: { preset: pseries, multiTce: maybe }\nsteps: []\n', /machine\.multiTce: expected on or off, got "maybe"/],
  ['bad size', 'machine: { preset: pseries, maxmem: lots }\nsteps: []\n', /machine\.maxmem: expected a size such as 2G or 4096M, got "lots"/],
  [
    'maxmem below RAM',
    'machine: { preset: pseries, ram: 2G, maxmem: 1G }\nsteps: []\n',
    /machine\.maxmem: "1G" is below the machine's RAM \(2147483648 bytes\)/,
  ],
  ['pseries tour', 'machine: { preset: pseries, topology: tour }\nsteps: []\n', /machine\.topology: pseries has only the recorded machine \(qemu\)/],
  ['unknown fix', 'machine: { preset: pseries, fix: [frob] }\nsteps: []\n', /^f\.yaml:1:35: machine\.fix\[0\]: unknown quirk "frob"; known: /],
  ['unknown machine key', 'machine: { preset: pseries, colour: red }\nsteps: []\n', /machine\.colour: unknown machine option/],
  ['unknown invariant', 'violations: [frob]\nsteps: []\n', /^f\.yaml:1:14: violations\[0\]: unknown invariant "frob"/],
  [
    'bad count key',
    `${HEAD}  - { actor: nic, op: dma-set-mask, bits: 32, expect: { count: { hcalls: 3 } } }\n`,
    /steps\[0\]\.expect\.count: "hcalls" is not "layer\.kind" or "layer\.kind:call"/,
  ],
];

for (const [what, text, re] of BAD) {
  test(`a bad scenario file (${what}) is refused with its line and column`, () => {
    assert.throws(
      () => parseScenario(text, 'f.yaml'),
      (e: unknown) => e instanceof ScenarioError && re.test(e.message),
    );
  });
}

test('a good file parses with its steps located', () => {
  const sc = parseScenario(`${HEAD}  - { actor: nic, op: dma-set-mask, bits: 32, expect: { ret: 0 } }\n`, 'f.yaml');
  assert.equal(sc.steps[0]!.where, 'f.yaml:5');
  assert.deepEqual(sc.steps[0]!.fields, { bits: 32 });
});

test('a pseries machine with its options parses into machine options', () => {
  const sc = parseScenario(
    'machine: { preset: pseries, pageSize: 4k, ram: 1G, maxmem: 4G, ddw: on, multiTce: off, hypervisor: qemu-7.2, fix: [failed-ddw-sticky], quirk: [missing-tce-kill] }\nviolations: [no-kernel-oops]\nsteps: []\n',
    'f.yaml',
  );
  assert.deepEqual(sc.machine, {
    preset: 'pseries',
    pageSize: '4k',
    topology: 'qemu',
    quirks: { 'failed-ddw-sticky': false, 'missing-tce-kill': true },
    ramBytes: 2 ** 30,
    maxmemBytes: 2 ** 32,
    ddw: true,
    multiTce: false,
    hypervisor: 'qemu-7.2',
  });
  assert.deepEqual(sc.violations, ['no-kernel-oops']);
});
