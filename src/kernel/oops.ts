/**
 * A kernel oops (arch/powerpc/mm/fault.c __bad_page_fault() → die() → make_task_dead()): a
 * kernel access to a bad address kills the task that made it with SIGSEGV. The task dies where
 * it stood: every lock it held stays held. Registers and the call trace are not modelled; the
 * lines that name the fault, the function and the task are worded as the kernel words them.
 */
import type { EventLog } from '../base/events.js';
import type { Process } from './process.js';
import type { KernelLog } from './printk.js';

const SIGSEGV = 11;

export interface OopsSite {
  /** The function the faulting instruction is in, as the NIP line names it. */
  fn: string;
  /** The module it belongs to, if any. */
  module?: string;
  /** The bad address and whether the access was a store. */
  address: number;
  write: boolean;
}

export function kernelOops(klog: KernelLog, log: EventLog, task: Process, site: OopsSite, pageSize: number): void {
  const addr = `0x${site.address.toString(16).padStart(8, '0')}`;
  const what = site.address < pageSize ? 'Kernel NULL pointer dereference' : 'Unable to handle kernel data access';
  const comm = task.comm.slice(0, 15);
  klog.printk(`BUG: ${what} on ${site.write ? 'write' : 'read'} at ${addr}`);
  klog.printk('Faulting instruction address: 0x00000000');
  klog.printk(`Oops: Kernel access of bad area, sig: ${SIGSEGV} [#1]`);
  klog.printk(`CPU: 0 UID: ${task.uid} PID: ${task.pid} Comm: ${comm}`);
  klog.printk(`NIP [0000000000000000] ${site.fn}+0x0/0x0${site.module ? ` [${site.module}]` : ''}`);
  klog.printk('---[ end trace 0000000000000000 ]---');
  klog.printk(`note: ${comm}[${task.pid}] exited with irqs disabled`);
  task.oops = { fn: site.fn, signal: SIGSEGV };
  log.emit({ layer: 'kernel', kind: 'oops', pid: task.pid, fn: site.fn, address: site.address, signal: SIGSEGV });
}
