/**
 * `tcelab exec [machine options] [--socket PATH] -- PROG ARGS`: run an unmodified VFIO program
 * against the model. The LD_PRELOAD shim (dist/shim/libtcelab.so) sends its VFIO calls to a
 * server: the one at --socket if it is running, otherwise a private one started here (on that
 * path, or in a temporary directory). The program's exit status is tcelab's.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MachineOptions } from '../machine/machine.js';
import { isServed, ModelServer } from '../server/server.js';
import { startViewServer } from '../web/server.js';
import { ViewSession } from '../web/session.js';
import { machineFor } from './serve.js';

export const SHIM = join(import.meta.dirname, '../../shim/libtcelab.so');

/** A private server for one run, in a directory the program's processes can reach after setuid. */
async function privateServer(
  opts: Partial<MachineOptions>,
  path: string | undefined,
): Promise<{ path: string; server: ModelServer; done: () => Promise<void> }> {
  const dir = path ? null : mkdtempSync(join(tmpdir(), 'tcelab-'));
  const sock = path ?? join(dir!, 'model.sock');
  const server = new ModelServer(machineFor(opts), (l) => process.stderr.write(`tcelab exec: ${l}\n`));
  await server.listen(sock);
  if (dir) chmodSync(dir, 0o711);
  chmodSync(sock, 0o666);
  return {
    path: sock,
    server,
    done: async () => {
      await server.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Where `exec --view` serves the page of the program's machine. */
export interface ExecView {
  host: string;
  port: number;
}

/**
 * Runs PROG to its end; resolves to its exit status (128+signal when killed, 127 when it cannot
 * run). With `view`, the page of the machine follows the program and stays up after it exits,
 * until SIGINT or SIGTERM.
 */
export async function exec(argv: string[], opts: Partial<MachineOptions>, socket: string | undefined, view?: ExecView): Promise<number> {
  if (!existsSync(SHIM)) {
    process.stderr.write(`tcelab exec: the shim ${SHIM} is not built; install a C compiler (cc) and run \`npm run build\`\n`);
    return 1;
  }
  let srv: { path: string; server?: ModelServer; done: () => Promise<void> };
  try {
    if (socket && (await isServed(socket))) {
      // That machine lives in the other process: its page would have to come from there.
      if (view) throw new Error(`--view: a server already runs at ${socket}; --view needs exec's own machine (leave out --socket)`);
      srv = { path: socket, done: async () => {} };
    } else srv = await privateServer(opts, socket);
  } catch (e) {
    process.stderr.write(`tcelab exec: ${(e as Error).message}\n`);
    return 1;
  }
  let page: { session: ViewSession; close: () => Promise<void> } | null = null;
  if (view && srv.server) {
    const session = ViewSession.watch(srv.server.host.machine, argv.join(' '));
    try {
      const web = await startViewServer(session, view);
      page = { session, close: web.close };
      process.stderr.write(`tcelab exec: view at ${web.url}\n`);
    } catch (e) {
      process.stderr.write(`tcelab exec: --view: cannot listen on ${view.host}:${view.port}: ${(e as Error).message}\n`);
      await srv.done();
      return 1;
    }
  }
  const preload = [SHIM, process.env.LD_PRELOAD].filter(Boolean).join(' ');
  const child = spawn(argv[0]!, argv.slice(1), { stdio: 'inherit', env: { ...process.env, LD_PRELOAD: preload, TCELAB_SOCKET: srv.path } });
  const forward = (sig: NodeJS.Signals) => child.kill(sig);
  process.on('SIGINT', forward).on('SIGTERM', forward);
  const status = await new Promise<number>((resolve) => {
    child.once('error', (e) => {
      process.stderr.write(`tcelab exec: cannot run ${argv[0]}: ${e.message}\n`);
      resolve(127);
    });
    child.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)));
  });
  process.off('SIGINT', forward).off('SIGTERM', forward);
  if (page) {
    page.session.finish();
    process.stderr.write(`tcelab exec: ${argv[0]} exited with status ${status}; the view stays up until Ctrl-C\n`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    await page.close();
  }
  await srv.done();
  return status;
}
