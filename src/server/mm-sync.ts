/**
 * The model process's address space, kept in step with the real program's: the shim reports the
 * real mappings over a range, and they replace what the model had there (holes included).
 */
import type { Mapping, Mm } from '../kernel/process.js';
import type { Segment } from './protocol.js';

export function syncMappings(mm: Mm, start: bigint, end: bigint, segments: Segment[]): void {
  const kept: Mapping[] = [];
  for (const m of mm.mappings) {
    if (m.end <= start || m.start >= end) {
      kept.push(m);
      continue;
    }
    if (m.start < start) kept.push({ ...m, end: start });
    if (m.end > end) kept.push({ ...m, start: end });
  }
  for (const s of segments) kept.push({ ...s });
  kept.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  mm.mappings.splice(0, mm.mappings.length, ...kept);
}
