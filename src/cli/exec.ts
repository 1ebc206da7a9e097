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
import { machineFor } from './serve.js';

export const SHIM = join(import.meta.dirname, '../../shim/libtcelab.so');

/** A private server for one run, in a directory the program's processes can reach after setuid. */
async function privateServer(opts: Partial<MachineOptions>, path: string | undefined): Promise<{ path: string; done: () => Promise<void> }> {
  const dir = path ? null : mkdtempSync(join(tmpdir(), 'tcelab-'));
  const sock = path ?? join(dir!, 'model.sock');
  const server = new ModelServer(machineFor(opts), (l) => process.stderr.write(`tcelab exec: ${l}\n`));
  await server.listen(sock);
  if (dir) chmodSync(dir, 0o711);
  chmodSync(sock, 0o666);
  return {
    path: sock,
    done: async () => {
      await server.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs PROG to its end; resolves to its exit status (128+signal when killed, 127 when it cannot run). */
export async function exec(argv: string[], opts: Partial<MachineOptions>, socket: string | undefined): Promise<number> {
  if (!existsSync(SHIM)) {
    process.stderr.write(`tcelab exec: the shim ${SHIM} is not built; install a C compiler (cc) and run \`npm run build\`\n`);
    return 1;
  }
  let srv: { path: string; done: () => Promise<void> };
  try {
    srv = socket && (await isServed(socket)) ? { path: socket, done: async () => {} } : await privateServer(opts, socket);
  } catch (e) {
    process.stderr.write(`tcelab exec: ${(e as Error).message}\n`);
    return 1;
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
  await srv.done();
  return status;
}
