// B6 through the shim's socket: an ordinary VFIO program (bench/c/b6_socket_client.c) under
// LD_PRELOAD=dist/shim/libtcelab.so against `tcelab serve --socket` (dist/src/cli/main.js), with
// the shim polling for its answers (the default) and sleeping at once, and the round-trip floor of
// the same transport with no model work (bench/echo-server.mjs and bench/c/socket_echo_client.c).
// The three run in turn, one run of each per round, so that the load of the moment weighs on all
// three alike and the model's rate can be read as a fraction of the floor of the same rounds.
// The model's peak memory is the server's VmHWM; its CPU time per call is what all its threads
// spent on CPU (/proc/PID/task/*/schedstat) during the timed runs, polling included.
// Until the shim and the server exist, the row says so instead of carrying a number.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
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

/** Nanoseconds all threads of process `pid` have spent on a CPU. */
function cpuNs(pid) {
  let ns = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // a thread that ended between the listing and the read
    }
  }
  return ns;
}

export async function socketWorkload({ pairs, runs, say, buildDir }) {
  if (!existsSync(SHIM) || !existsSync(CLI) || !readFileSync(CLI, 'utf8').includes("'serve'")) {
    return notYet(say, 'needs the shim (dist/shim/libtcelab.so and `tcelab serve --socket`)');
  }
  const cc = (name) => {
    const out = join(buildDir, name);
    execFileSync('gcc', ['-O2', '-Wall', '-Werror', '-o', out, here(`./c/${name}.c`)], { stdio: 'inherit' });
    return out;
  };
  const client = cc('b6_socket_client');
  const echoClient = cc('socket_echo_client');
  const dir = mkdtempSync(join(tmpdir(), 'tcelab-bench-'));
  const parties = [];
  try {
    const model = (pollUs) => ({
      what: `poll ${pollUs} us`,
      server: [CLI, 'serve', '--socket'],
      sock: join(dir, `model-${pollUs}.sock`),
      client: (sock) => lineProcess(client, [String(pairs)], { env: { ...process.env, LD_PRELOAD: SHIM, TCELAB_SOCKET: sock, TCELAB_POLL_US: String(pollUs) } }),
    });
    const echo = {
      what: 'floor (echo)',
      server: [here('./echo-server.mjs')],
      sock: join(dir, 'echo.sock'),
      client: (sock) => lineProcess(echoClient, [sock, String(2 * pairs)]),
    };
    for (const p of [model(50), model(0), echo]) parties.push(await start(p));
    for (let i = 0; i < runs + 1; i++) {
      for (const p of parties) {
        const cpu0 = cpuNs(p.server.pid);
        const r = await p.client.run();
        say(`  B6 socket, ${p.what}, ${i === 0 ? 'warm-up' : `run ${i}/${runs}`}: ${r.t.toFixed(3)} s`);
        if (i === 0) continue;
        p.ts.push(r.t);
        p.cpu += cpuNs(p.server.pid) - cpu0;
        p.work = r.work;
      }
    }
    const [polled, asleep, floor] = parties.map((p) => ({
      rate: p.work / median(p.ts),
      cpuNsPerCall: p.cpu / (p.work * p.ts.length),
      hwm: /^VmHWM:\s*(\d+) kB/m.exec(readFileSync(`/proc/${p.server.pid}/status`, 'utf8'))?.[1],
    }));
    for (const p of parties) await p.client.quit();
    const pct = (x) => `${((100 * x) / floor.rate).toFixed(0)} %`;
    const us = (ns) => `${(ns / 1000).toFixed(1)} us`;
    const notes =
      `${pct(polled.rate)} of the round-trip floor of the same rounds; the server's CPU time ${us(polled.cpuNsPerCall)} per call (its polling included; the echo server's ${us(floor.cpuNsPerCall)} per round trip). ` +
      `The shim polls 50 us for each answer before it sleeps (the default) and the server for its adaptive window; the shim sleeping at once (TCELAB_POLL_US=0): ${(asleep.rate / 1e3).toFixed(1)} k/s (${pct(asleep.rate)}), server CPU ${us(asleep.cpuNsPerCall)} per call; ` +
      `round-trip floor on this machine: ${(floor.rate / 1e3).toFixed(1)} k/s (one 52-byte frame each way to a node echo server on the server's transport, both sides polling as the shim and the server do, bench/echo-server.mjs); ` +
      'the three measured in turn, one run of each per round';
    return {
      ...row,
      model: polled.rate,
      peakRssBytes: polled.hwm ? Number(polled.hwm) * 1024 : null,
      met: polled.rate >= 100000,
      runs,
      sleepingRate: asleep.rate,
      floorRoundTrips: floor.rate,
      floorFraction: polled.rate / floor.rate,
      serverCpuNsPerCall: polled.cpuNsPerCall,
      sleepingServerCpuNsPerCall: asleep.cpuNsPerCall,
      floorServerCpuNsPerRoundTrip: floor.cpuNsPerCall,
      notes,
    };
  } catch (e) {
    return notYet(say, `the shim run failed: ${e.message}`);
  } finally {
    for (const p of parties) p.server.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A server and its client, the client ready for its first run. */
async function start({ what, server: argv, sock, client }) {
  const server = spawn(process.execPath, [...argv, sock], { stdio: ['ignore', 'ignore', 'pipe'] });
  let serverErr = '';
  server.stderr.on('data', (d) => {
    serverErr += d;
  });
  const party = { what, server, client: null, ts: [], cpu: 0, work: 0 };
  if (!(await waitFor(sock, 10000))) {
    server.kill('SIGTERM');
    throw new Error(`${what}: the server did not listen (${serverErr.trim() || 'no output'})`);
  }
  party.client = client(sock);
  await party.client.ready();
  return party;
}
