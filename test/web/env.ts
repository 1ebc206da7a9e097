/** Starting `tcelab view` for the web tests, and Chromium when this machine has it. */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '../../..');
export const CLI = join(ROOT, 'dist/src/cli/main.js');
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Why the browser test cannot run, or null when it can. Under CI (CI=true) a missing Chromium is
 * a failure, not a skip: .ci/run installs it.
 */
export function chromiumMissing(): string | null {
  if (existsSync(CHROMIUM)) return null;
  if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing under CI=true: .ci/run should have installed the chromium package`);
  return `skipped: no ${CHROMIUM} (apt-get install chromium)`;
}

export interface View {
  url: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

/** Start `tcelab <args>` (view, or run --view) in the repository, wait for the URL it prints. */
export function startView(args: string[]): Promise<View> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [CLI, ...args, '--port', '0', '--json'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stderr!.on('data', (d) => (err += d));
    proc.stdout!.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      const { url } = JSON.parse(out.slice(0, nl)) as { url: string };
      resolve({
        url,
        proc,
        stop: () =>
          new Promise((done) => {
            if (proc.exitCode !== null) return done();
            proc.once('exit', () => done());
            proc.kill('SIGTERM');
          }),
      });
    });
    proc.on('exit', (code) => reject(new Error(`tcelab ${args.join(' ')} exited with ${code} before printing its URL: ${err}`)));
  });
}
