/**
 * The model process's address space, kept in step with the real program's: the shim reports the
 * real mappings over a range, and they replace what the model had there (holes included).
 */
import type { Mapping, Mm } from '../kernel/process.js';
import type { Segment } from './protocol.js';

export function syncMappings(mm: Mm, start: bigint, end: bigint, segments: Segment[]): void {
  const shared = mm.mappings.filter((m) => m.cowShared && m.start < end && start < m.end);
  mm.unmapRange(start, end);
  for (const s of segments) {
    const m: Mapping = { ...s };
    // A report is no new mapping: hugetlb pages inherited through fork() stay shared copy-on-write.
    if (s.kind === 'hugetlb' && shared.some((o) => o.kind === 'hugetlb' && s.start >= o.start && s.end <= o.end)) m.cowShared = true;
    mm.mappings.push(m);
  }
  mm.mappings.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
}
