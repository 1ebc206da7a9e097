import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';

/** Layers from the bottom up (docs/architecture.md). A module may import its own layer or lower ones. */
const ORDER = ['base', 'hw', 'firmware', 'kernel', 'iommufd', 'vfio', 'uapi', 'machine', 'conformance', 'check', 'scenario', 'explore', 'server', 'web', 'cli'];
const SRC = join(import.meta.dirname, '../../src');

function layerOf(file: string): number {
  const rel = relative(SRC, file).replaceAll('\\', '/');
  let best = -1;
  ORDER.forEach((l, i) => {
    if (rel.startsWith(`${l}/`) && (best < 0 || l.length > ORDER[best]!.length)) best = i;
  });
  return best;
}

function* walk(dir: string): Generator<string> {
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) yield* walk(p);
    else if (p.endsWith('.ts')) yield p;
  }
}

test('imports only point down the layers', () => {
  const bad: string[] = [];
  for (const f of walk(SRC)) {
    const from = layerOf(f);
    assert.ok(from >= 0, `${f} is in no layer`);
    for (const m of readFileSync(f, 'utf8').matchAll(/from '(\.[^']+)'/g)) {
      const target = join(f, '..', m[1]!).replace(/\.js$/, '.ts');
      const to = layerOf(target);
      if (to > from) bad.push(`${relative(SRC, f)} imports ${relative(SRC, target)}`);
    }
  }
  assert.deepEqual(bad, []);
});

/** The page (src/web/app) runs in the browser: no model there, only its own modules and the server's protocol types. */
test('the front end imports no model code', () => {
  const app = join(SRC, 'web/app');
  const bad: string[] = [];
  for (const f of walk(app)) {
    for (const m of readFileSync(f, 'utf8').matchAll(/^import (type )?[^;]*? from '([^']+)'/gms)) {
      const target = join(f, '..', m[2]!);
      const typesOnly = m[1] !== undefined;
      if (relative(app, target).startsWith('..') && !(typesOnly && target === join(SRC, 'web/protocol.js'))) bad.push(`${relative(SRC, f)} imports ${m[2]}`);
    }
  }
  for (const m of readFileSync(join(SRC, 'web/protocol.ts'), 'utf8').matchAll(/^(import|export) (?!type )(.*)$/gm))
    if (/ from '/.test(m[0])) bad.push(`web/protocol.ts: ${m[0]}`);
  assert.deepEqual(bad, []);
});
