/**
 * The kernel log: every line the modelled kernel prints, readable as /dev/kmsg. Lines are worded
 * exactly as the real kernel prints them.
 */
import type { EventLog } from '../base/events.js';

export class KernelLog {
  readonly lines: string[] = [];

  constructor(private readonly log: EventLog) {}

  printk(text: string): void {
    this.lines.push(text);
    this.log.emit({ layer: 'kernel', kind: 'printk', text });
  }

  /**
   * A kernel WARNING splat. Registers and the call trace are not modelled; the lines that name
   * the warning (file, line, function, task) are worded as the kernel words them.
   */
  warn(file: string, line: number, fn: string, task: { pid: number; uid: number; comm: string }): void {
    this.printk('------------[ cut here ]------------');
    this.printk(`WARNING: CPU: 0 PID: ${task.pid} at ${file}:${line} ${fn}+0x0/0x0`);
    this.printk(`CPU: 0 UID: ${task.uid} PID: ${task.pid} Comm: ${task.comm.slice(0, 15)}`);
    this.printk('---[ end trace 0000000000000000 ]---');
  }
}
