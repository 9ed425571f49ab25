/**
 * The Open op bomb (issue 13 item 7): a million Open ops compress to a few hundred bytes of
 * tar-diff. Each Open resolved and opened a file (tens of µs), so the work per input byte was huge;
 * now recently opened names stay open and a re-Open costs a map lookup. Counted, not timed: the
 * source's `open` calls are what the op costs.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirectorySource } from '../../src/image-source/directory.js';
import { applyTarDiff } from '../../src/tardiff/apply.js';
import type { DataSource } from '../../src/tardiff/data-source.js';
import { TarDiffBuilder } from '../helpers/tardiff-builder.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'odh-test-openbomb-'));
  for (const n of ['a', 'b', 'c']) writeFileSync(path.join(dir, n), `${n}${n}${n}\n`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function countOpens(delta: Buffer): Promise<{ opens: number; out: string }> {
  const inner = await DirectorySource.create(dir);
  let opens = 0;
  const source: DataSource = {
    open: (name) => {
      opens++;
      return inner.open(name);
    },
  };
  let out = '';
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      out += c.toString();
      cb();
    },
  });
  await applyTarDiff(Readable.from([delta]), source, sink);
  return { opens, out };
}

describe('a million Open ops in a tiny delta', () => {
  it('of one name: one open', async () => {
    const b = new TarDiffBuilder();
    for (let i = 0; i < 1_000_000; i++) b.open('a');
    const delta = b.copy(4).build();
    expect(delta.length).toBeLessThan(1024);
    const r = await countOpens(delta);
    expect(r.out).toBe('aaa\n');
    expect(r.opens).toBe(1);
  });

  it('of three names in turn, each followed by a copy: three opens', async () => {
    const b = new TarDiffBuilder();
    for (let i = 0; i < 100_000; i++) b.open('a').copy(1).open('b').copy(1).open('c').copy(1);
    const r = await countOpens(b.build());
    expect(r.out).toBe('abc'.repeat(100_000));
    expect(r.opens).toBe(3);
  });
});
