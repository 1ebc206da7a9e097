#!/usr/bin/env node
// Builds the C parts with the system's cc: the LD_PRELOAD shim (dist/shim/libtcelab.so) and the
// example clients (dist/examples/c/). Without a compiler it says so and leaves the rest of the
// build alone; `tcelab exec` and the tests that need the shim then say what is missing.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const CC = process.env.CC || 'cc';

if (spawnSync(CC, ['--version'], { stdio: 'ignore' }).status !== 0) {
  console.warn(`tcelab build: no C compiler ("${CC}") found: the shim and the C examples were not built.`);
  console.warn('tcelab build: `tcelab exec` needs the shim; install gcc or clang and run `npm run build` again.');
  process.exit(0);
}

function cc(args, what) {
  const r = spawnSync(CC, args, { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`tcelab build: ${CC} failed to build ${what}`);
    process.exit(1);
  }
}

const shim = readdirSync(join(ROOT, 'shim'))
  .filter((f) => f.endsWith('.c'))
  .map((f) => join('shim', f));
mkdirSync(join(ROOT, 'dist/shim'), { recursive: true });
cc(['-shared', '-fPIC', '-O2', '-Wall', '-Wextra', '-o', 'dist/shim/libtcelab.so', ...shim, '-ldl'], 'the shim');

mkdirSync(join(ROOT, 'dist/examples/c'), { recursive: true });
for (const f of readdirSync(join(ROOT, 'examples/c')).filter((f) => f.endsWith('.c'))) {
  cc(['-O2', '-Wall', '-Wextra', '-o', join('dist/examples/c', basename(f, '.c')), join('examples/c', f)], `examples/c/${f}`);
}
