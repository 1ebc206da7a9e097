/**
 * The view's sessions without a server: a step's machine rebuilt by rerunning gives the state the
 * first run had, and the table view finds the TCE cache's stale copy a missing kill leaves.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TableReport, TceReport } from '../../src/scenario/tables.js';
import { ViewSession } from '../../src/web/session.js';

const EXAMPLES = join(import.meta.dirname, '../../../examples');

test('stepping back rebuilds the state the run had at that step', () => {
  const file = join(EXAMPLES, 'stale-table-pointer.yaml');
  const first = ViewSession.loadFile(file, { 'stale-table-pointer': true });
  first.runAll();
  const last = first.rec.steps.length - 1;
  // Each step's report while the run goes, against the same step rebuilt afterwards, backwards.
  const during: unknown[] = [];
  const live = ViewSession.loadFile(file, { 'stale-table-pointer': true });
  while (live.advance()) during.push(JSON.parse(JSON.stringify(live.state(live.rec.steps.length - 1))));
  assert.equal(during.length, last + 1);
  for (let s = last; s >= 0; s--) assert.deepEqual(JSON.parse(JSON.stringify(first.state(s))), during[s], `step ${s}`);
  // The freed boot-time table keeps the id the timeline's violation names.
  const pointer = first.state(last)!.topology.functions.find((f) => f.name === '0002:02:00.0')!;
  assert.equal(pointer.tableFreed, true);
  assert.match(first.rec.violations[0]!.detail, new RegExp(`^0002:02:00\\.0 points at iommu_table#${pointer.table} \\(freed\\)`));
});

function containerTable(s: ViewSession, step: number): number {
  return s.state(step)!.topology.containers[0]!.tables[0]!;
}

for (const quirk of [true, false]) {
  test(`the table view shows the TCE cache's copy of an unmapped entry as stale: missing-tce-kill ${quirk ? 'on' : 'off'}`, () => {
    const s = ViewSession.loadFile(join(EXAMPLES, 'missing-tce-kill.yaml'), { 'missing-tce-kill': quirk });
    s.runAll();
    const unmap = s.rec.steps.findIndex(
      (x) => x.label.endsWith('ioctl') && s.rec.events.slice(x.firstEvent, x.endEvent).some((e) => e.text.includes('VFIO_IOMMU_UNMAP_DMA')),
    );
    assert.ok(unmap > 0);
    // Before the unmap: entry 0 valid, R/W, its cached copy current.
    const before = s.tces(unmap - 1, containerTable(s, unmap - 1), 0, 2) as TceReport[];
    assert.equal(before[0]!.read && before[0]!.write, true);
    assert.equal(before[0]!.cached, before[0]!.tce);
    assert.equal(before[0]!.stale, false);
    // After it: the entry is clear; the cache still holds the old TCE only without the kill.
    const id = containerTable(s, unmap);
    const after = s.tces(unmap, id, 0, 2) as TceReport[];
    assert.equal(after[0]!.tce, '0x0');
    assert.equal(after[0]!.stale, quirk);
    assert.equal(after[0]!.cached, quirk ? before[0]!.tce : null);
    const t = s.table(unmap, id) as TableReport;
    assert.equal(t.valid, 0);
    assert.equal(t.stale, quirk ? 1 : 0);
    // PE#1fd's TVE#0.
    assert.deepEqual(t.tves, ['PHB0 TVE#1018']);
  });
}
