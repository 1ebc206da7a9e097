// B6 through the shim's socket: an ordinary VFIO program (bench/c/b6_socket_client.c) under
// LD_PRELOAD=dist/shim/libtcelab.so against `tcelab serve --socket` (dist/src/cli/main.js).
// The model's peak memory is the server's VmHWM. Until the shim and the server exist, the row
// says so instead of carrying a number.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lineProcess, median } from './proc.mjs';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const SHIM = here('../dist/shim/libtcelab.so');
const CLI = here('../dist/src/cli/main.js');

const row = { name: 'B6 MAP+UNMAP 1 page, shim socket', unit: 'ioctl calls/s', c: null, ratio: null, target: '≥ 100 k/s' };

function notYet(say, why) {
  say(`  B6 socket: not measured yet: ${why}`);
  return { ...row, model: null, peakRssBytes: null, met: null, notes: `not measured yet: ${why}` };
}

async function waitFor(path, ms) {
  const end = Date.now() + ms;
  while (!existsSync(path)) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

export async function socketWorkload({ pairs, runs, say, buildDir }) {
  if (!existsSync(SHIM) || !existsSync(CLI) || !readFileSync(CLI, 'utf8').includes("'serve'")) {
    return notYet(say, 'needs the shim (dist/shim/libtcelab.so and `tcelab serve --socket`)');
  }
  const client = join(buildDir, 'b6_socket_client');
  execFileSync('gcc', ['-O2', '-Wall', '-Werror', '-o', client, here('./c/b6_socket_client.c')], { stdio: 'inherit' });
  const dir = mkdtempSync(join(tmpdir(), 'tcelab-bench-'));
  try {
    const polled = await shimRate({ client, pairs, runs, say, dir, pollUs: 50 });
    const asleep = await shimRate({ client, pairs, runs, say, dir, pollUs: 0 });
    const floor = await echoFloor({ pairs, runs, say, buildDir, dir });
    const notes =
      `the shim polls 50 us for each answer before it sleeps (the default) and the server for its adaptive window; the shim sleeping at once (TCELAB_POLL_US=0): ${(asleep.rate / 1e3).toFixed(1)} k/s; ` +
      `round-trip floor on this machine: ${(floor / 1e3).toFixed(1)} k/s (one 52-byte frame each way to a node echo server, both sides polling as the shim and the server do, bench/echo-server.mjs)`;
    return { ...row, model: polled.rate, peakRssBytes: polled.peakRssBytes, met: polled.rate >= 100000, runs, sleepingRate: asleep.rate, floorRoundTrips: floor, notes };
  } catch (e) {
    return notYet(say, `the shim run failed: ${e.message}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Calls per second through the shim polling for `pollUs` (TCELAB_POLL_US) against a fresh `tcelab serve`. */
async function shimRate({ client, pairs, runs, say, dir, pollUs }) {
  const sock = join(dir, `model-${pollUs}.sock`);
  const server = spawn(process.execPath, [CLI, 'serve', '--socket', sock], { stdio: ['ignore', 'ignore', 'pipe'] });
  let serverErr = '';
  server.stderr.on('data', (d) => {
    serverErr += d;
  });
  try {
    if (!(await waitFor(sock, 10000))) throw new Error(`the server did not listen (${serverErr.trim() || 'no output'})`);
    const env = { ...process.env, LD_PRELOAD: SHIM, TCELAB_SOCKET: sock, TCELAB_POLL_US: String(pollUs) };
    const p = lineProcess(client, [String(pairs)], { env });
    await p.ready();
    const ts = [];
    let work = 0;
    for (let i = 0; i < runs + 1; i++) {
      const r = await p.run();
      say(`  B6 socket, poll ${pollUs} us, ${i === 0 ? 'warm-up' : `run ${i}/${runs}`}: ${r.t.toFixed(3)} s`);
      if (i > 0) ts.push(r.t);
      work = r.work;
    }
    await p.quit();
    const hwm = /^VmHWM:\s*(\d+) kB/m.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'))?.[1];
    return { rate: work / median(ts), peakRssBytes: hwm ? Number(hwm) * 1024 : null };
  } finally {
    server.kill('SIGTERM');
  }
}

/**
 * The floor under the socket row: the same number of round trips, one frame each way, against a
 * node process that only echoes (no decoding, no model). No call through the shim can be faster.
 */
async function echoFloor({ pairs, runs, say, buildDir, dir }) {
  const client = join(buildDir, 'socket_echo_client');
  execFileSync('gcc', ['-O2', '-Wall', '-Werror', '-o', client, here('./c/socket_echo_client.c')], { stdio: 'inherit' });
  const sock = join(dir, 'echo.sock');
  const echo = spawn(process.execPath, [here('./echo-server.mjs'), sock], { stdio: 'ignore' });
  try {
    if (!(await waitFor(sock, 10000))) throw new Error('the echo server did not listen');
    const p = lineProcess(client, [sock, String(2 * pairs)]);
    await p.ready();
    const ts = [];
    let work = 0;
    for (let i = 0; i < runs + 1; i++) {
      const r = await p.run();
      say(`  B6 socket floor (echo) ${i === 0 ? 'warm-up' : `run ${i}/${runs}`}: ${r.t.toFixed(3)} s`);
      if (i > 0) ts.push(r.t);
      work = r.work;
    }
    await p.quit();
    return work / median(ts);
  } finally {
    echo.kill('SIGTERM');
  }
}
