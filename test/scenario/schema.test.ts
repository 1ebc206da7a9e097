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
