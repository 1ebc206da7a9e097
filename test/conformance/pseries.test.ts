/**
 * pSeries recordings (a Linux 6.12 guest of QEMU 7.2 -machine pseries): how a file of several
 * boots splits, and how qemu_machine options configure the machine. oracle.test.ts replays them.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { machineOptionsFor } from '../../src/conformance/environment.js';
import { type OracleRecord, parseRecords, splitBoots } from '../../src/conformance/records.js';

const FIXTURES = join(import.meta.dirname, '../../../fixtures/oracle-pseries');

test('a file of one boot per scenario splits where the record numbers start again', () => {
  const records = parseRecords(readFileSync(join(FIXTURES, 'pseries-64k-fresh.jsonl'), 'utf8'), 'fresh');
  const boots = splitBoots(records);
  assert.equal(boots.length, 9);
  assert.deepEqual(
    boots.map((b) => b.find((r) => r.scn !== 'init')!.scn),
    ['v2_basic', 'v2_unreg_mapped', 'v2_create_matrix', 'v2_two_groups', 'v1', 'v2_pending_remove', 'v2_create_first', 'rlimit_v2', 'rlimit_v1'],
  );
});

test('qemu_machine options configure the pseries machine', () => {
  const rec = (qemu_machine: string) => ({ qemu_machine, kernel: '6.12.95+deb12-powerpc64le-64k', kernel_cmdline: '' }) as OracleRecord;
  assert.deepEqual(machineOptionsFor(rec('pseries,cap-cfpc=broken')), { preset: 'pseries', pageSize: '64k', topology: 'qemu' });
  assert.equal(machineOptionsFor(rec('pseries,cap-cfpc=broken -global spapr-pci-host-bridge.ddw=off')).ddw, false);
  const mm = machineOptionsFor(rec('pseries -m 2G,maxmem=4G,slots=2'));
  assert.equal(mm.ramBytes, 2 ** 31);
  assert.equal(mm.maxmemBytes, 2 ** 32);
});
