/** Where the built shim, the C examples and the CLI are, and how to run them, for the shim tests. */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '../../..');
export const SHIM = join(ROOT, 'dist/shim/libtcelab.so');
export const EXAMPLES = join(ROOT, 'dist/examples/c');
export const CLI = join(ROOT, 'dist/src/cli/main.js');

/** Why the C parts cannot run here, or null when they can. */
export function cMissing(): string | null {
  if (!existsSync(SHIM) || !existsSync(join(EXAMPLES, 'map_loop')))
    return `skipped: ${SHIM} or the C examples are not built (no C compiler when \`npm run build\` ran)`;
  return null;
}

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Run a command to its end, collecting its output. */
export function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    c.on('error', reject);
    c.on('close', (status) => resolve({ status, stdout, stderr }));
    c.stdin.end(opts.input ?? '');
  });
}

export const tcelab = (args: string[], opts: { cwd?: string; input?: string } = {}) => run(process.execPath, [CLI, ...args], opts);
