/**
 * A task that loops in the kernel without end (kernel/watchdog.c): the soft-lockup watchdog
 * reports the CPU once it has not scheduled for twice watchdog_thresh (10 s), at its first sample
 * past that, 22 s on the recorded machines, and again every few seconds after. The call never
 * returns; the task stays on the CPU. tcelab prints the first report only.
 */
import type { EventLog } from '../base/events.js';
import type { Process } from './process.js';
import type { KernelLog } from './printk.js';

/** The seconds the first report names (watchdog_thresh 10: 2 x 10 s, plus the sample period). */
const FIRST_REPORT_S = 22;

export function softLockup(klog: KernelLog, log: EventLog, task: Process, fn: string): void {
  klog.printk(`watchdog: BUG: soft lockup - CPU#0 stuck for ${FIRST_REPORT_S}s! [${task.comm.slice(0, 15)}:${task.pid}]`);
  task.lockup = fn;
  log.emit({ layer: 'kernel', kind: 'soft-lockup', pid: task.pid, fn });
}
