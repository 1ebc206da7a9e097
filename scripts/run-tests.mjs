#!/usr/bin/env node
// Runs every compiled test file with node's test runner: the readable report on stdout, TAP in
// test-results/tests.tap, and a closing "N passed, N failed" line. Exits non-zero on any failure.
// Only `*.test.js` files run: node's runner would also run the helpers beside them (a file
// without tests counts as one passed test).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const testFiles = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? testFiles(join(dir, e.name)) : e.name.endsWith('.test.js') ? [join(dir, e.name)] : [],
  );

mkdirSync('test-results', { recursive: true });
const tap = 'test-results/tests.tap';
const r = spawnSync(
  process.execPath,
  [
    '--test',
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=tap',
    `--test-reporter-destination=${tap}`,
    ...(process.argv.slice(2).length ? process.argv.slice(2) : testFiles('dist/test').sort()),
  ],
  { stdio: 'inherit' },
);
const text = readFileSync(tap, 'utf8');
const count = (k) => Number(new RegExp(`^# ${k} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
const passed = count('pass');
const failed = count('fail') + count('cancelled');
console.log(`${passed} passed, ${failed} failed${count('skipped') ? `, ${count('skipped')} skipped` : ''}`);
process.exit(r.status === 0 && failed === 0 && passed > 0 ? 0 : 1);
