/**
 * Eight client processes against one server at once, each with its own group, each in a
 * MAP_DMA loop. One is SIGKILLed mid-loop: the others finish unaffected, and everything the dead
 * one held comes back (its group to the kernel, its locked_vm to zero, its TCEs cleared).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { validateTopology } from '../../src/machine/topology.js';
import type { PeReport } from '../../src/scenario/report.js';
import { ModelServer } from '../../src/server/server.js';
import { cMissing, EXAMPLES, SHIM } from '../shim/env.js';

const CLIENTS = 8;
const VICTIM = 3;
const MAPS = 512;

/** Eight endpoints, each on a bus of its own, so each is an IOMMU group of its own. */
const topology = validateTopology(
  {
    phbs: 6,
    devices: Array.from({ length: CLIENTS }, (_, i) => ({ bdf: `000${i >> 1}:0${(i & 1) + 1}:00.0`, vendor: 0x8086, device: 0x10d3 })),
  },
  6,
);

const skip = cMissing() ?? false;
const dir = mkdtempSync(join(tmpdir(), 'tcelab-clients-'));
const sock = join(dir, 'model.sock');
const logged: string[] = [];
const server = new ModelServer({ preset: 'powernv9', pageSize: '64k', topology }, (l) => logged.push(l));
before(() => server.listen(sock));
after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Client {
  proc: ChildProcess;
  out: string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  saw(text: string): Promise<void>;
}

function client(group: number, count: number): Client {
  const proc = spawn(join(EXAMPLES, 'map_loop'), [String(group), String(count)], { env: { ...process.env, LD_PRELOAD: SHIM, TCELAB_SOCKET: sock } });
  const c: Client = {
    proc,
    out: '',
    // 'close', not 'exit': a process can exit before its last output has been read from the pipe.
    exit: new Promise((resolve) => proc.on('close', (code, signal) => resolve({ code, signal }))),
    saw: (text) =>
      new Promise((resolve, reject) => {
        const check = () => {
          if (c.out.includes(text)) resolve();
          else if (proc.exitCode !== null || proc.signalCode !== null) reject(new Error(`client ${group} ended before "${text}": ${c.out}`));
          else setTimeout(check, 5);
        };
        check();
      }),
  };
  proc.stdout!.on('data', (d) => (c.out += d));
  proc.stderr!.on('data', (d) => (c.out += d));
  return c;
}

const until = async (what: string, ok: () => boolean) => {
  for (let i = 0; i < 1000 && !ok(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(ok(), what);
};

test('eight clients at once; one SIGKILLed mid-MAP_DMA loop is released, the others are unaffected', { skip }, async () => {
  const view = () => server.host.view();
  const { groups, pes: bootPes } = view();
  assert.equal(groups.length, CLIENTS);
  const clients = groups.map((g) => client(g.id, g.id === VICTIM ? 0 : MAPS));
  await Promise.all(clients.map((c) => c.saw('ready')));
  assert.ok(
    view().groups.every((g) => g.owner === 'vfio' && g.opened),
    'every client owns its group',
  );
  for (const c of clients) c.proc.stdin!.write('go\n');

  const victim = clients[VICTIM]!;
  await victim.saw('progress 128');
  const victimPe = (v = view()) => v.pes.find((p) => p.group === VICTIM)!;
  assert.ok(view().groups[VICTIM]!.tces >= 128, 'the victim has TCEs in use');
  victim.proc.kill('SIGKILL');
  assert.equal((await victim.exit).signal, 'SIGKILL');

  const victimProc = () => view().processes.find((p) => p.realPid === victim.proc.pid)!;
  await until('the server notices the dead client', () => victimProc().exited);
  const v = view();
  assert.equal(victimProc().vmlckKb, 0, 'locked_vm returned');
  assert.deepEqual(v.groups[VICTIM], { ...groups[VICTIM], owner: 'kernel', opened: false, tces: 0 }, 'no TCE left');
  // The same windows as at boot, each on a new iommu_table (release_ownership allocates it).
  const geometry = (pe: PeReport | undefined) => pe && { ...pe, windows: pe.windows.map(({ table: _, ...w }) => w) };
  assert.deepEqual(geometry(victimPe(v)), geometry(bootPes.find((p) => p.group === VICTIM)), "the kernel's own windows are back as at boot");

  const others = clients.filter((c) => c !== victim);
  const exits = await Promise.all(others.map((c) => c.exit));
  const done = others.map((c) => /^done .*$/m.exec(c.out)?.[0]);
  assert.deepEqual(
    exits,
    others.map(() => ({ code: 0, signal: null })),
    others.map((c) => c.out).join('\n'),
  );
  assert.deepEqual(
    done,
    others.map(() => done[0]),
    'every survivor got the same answers',
  );
  assert.match(done[0]!, new RegExp(`^done mapped=${MAPS} unmapped=${2 ** 30} vmlck_kb=\\d+$`));

  await until('every client released', () => view().processes.every((p) => p.exited));
  const end = view();
  assert.ok(end.groups.every((g) => g.owner === 'kernel' && !g.opened));
  assert.ok(end.processes.every((p) => p.vmlckKb === 0));
  assert.ok(end.groups.every((g) => g.tces === 0));
  assert.deepEqual(end.pes.map(geometry), bootPes.map(geometry));
  assert.deepEqual(logged, []);
});
