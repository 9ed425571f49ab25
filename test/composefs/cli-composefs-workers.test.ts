/**
 * `odh composefs id --jobs 2` (layer workers forced: these layers are small), as a black box (the built CLI: run `npx tsc -p .`
 * before running this file alone; the worker is then dist/src/composefs/oci/layer-worker.js):
 * a corrupt gzip layer or a truncated tar in a multi-layer image gives one error line naming the
 * layer and exit 1; SIGINT in the middle ends the run with one line and leaves nothing behind.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSyntheticImage } from '../../scripts/bench-composefs.js';
import { buildLayerTar, seededBytes } from '../helpers/images.js';
import { writeGzipLayout } from '../helpers/gzip-layout.js';
import {
  debris,
  errorLines,
  ODH,
  removeTree,
  runOdh,
  startOdh,
  tempRoot,
  waitFor,
} from '../reliability/run.js';
import { nth } from '../helpers/must.js';

let root: string;
beforeAll(() => {
  if (!existsSync(ODH)) throw new Error(`${ODH} missing: build first with npx tsc -p .`);
  root = tempRoot('odh-test-cfs-workers-');
});
afterAll(() => removeTree(root));

const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function tars(): Promise<Buffer[]> {
  const files = (dir: string, seed: string) =>
    Array.from({ length: 20 }, (_, i) => ({
      type: 'file' as const,
      path: `${dir}/f${i}`,
      content: seededBytes(`${seed}${i}`, 100 + i * 500),
    }));
  return Promise.all([
    buildLayerTar([{ type: 'dir', path: 'usr' }, { type: 'dir', path: 'usr/a' }, ...files('usr/a', 'a')]),
    buildLayerTar([{ type: 'dir', path: 'usr/b' }, ...files('usr/b', 'b')]),
    buildLayerTar([{ type: 'dir', path: 'usr/c' }, ...files('usr/c', 'c')]),
  ]);
}

describe('odh composefs id with layer workers', () => {
  it('a corrupt gzip layer: one line naming the layer, exit 1, nothing on stdout', async () => {
    const t = await tars();
    // Layer 1's gzip stream cut in half.
    const gz = t.map((x, i) => {
      const z = gzipSync(x);
      return i === 1 ? z.subarray(0, z.length >> 1) : z;
    });
    const dir = (await writeGzipLayout(path.join(root, 'badgz'), gz, t.map(sha256))).dir;
    const r = await runOdh(['composefs', 'id', '-q', '--jobs', '2', `oci:${dir}`], { TMPDIR: root });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(errorLines(r.stderr)[0]).toMatch(/gzip|unexpected end/i);
    expect(errorLines(r.stderr)[0]).toContain(`layer ${sha256(nth(gz, 1))}`);
  });

  it('a truncated tar layer: one line naming the layer, exit 1', async () => {
    // Layer 2's tar cut inside its second entry.
    const t = (await tars()).map((x, i) => (i === 2 ? x.subarray(0, 512 * 2 + 50) : x));
    const gz = t.map((x) => gzipSync(x));
    const dir = (await writeGzipLayout(path.join(root, 'badtar'), gz, t.map(sha256))).dir;
    const r = await runOdh(['composefs', 'id', '-q', '--jobs', '2', `oci:${dir}`], { TMPDIR: root });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(errorLines(r.stderr)).toHaveLength(1);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(errorLines(r.stderr)[0]).toMatch(/truncated|ends/i);
    expect(errorLines(r.stderr)[0]).toContain(`layer ${sha256(nth(gz, 2))}`);
  });

  it('--jobs takes a count (usage error otherwise)', async () => {
    const r = await runOdh(['composefs', 'id', '--jobs', 'many', 'oci:/nonexistent'], { TMPDIR: root });
    expect(r.code).toBe(2);
    expect(errorLines(r.stderr)).toHaveLength(1);
    expect(errorLines(r.stderr)[0]).toMatch(/--jobs/);
  });

  it('SIGINT while the workers stream: one line, exit 1, no debris', async () => {
    const dir = path.join(root, 'big');
    await writeSyntheticImage(dir, { totalBytes: 96 << 20, files: 2000, layers: 4 });
    const tmp = path.join(root, 'tmp');
    await mkdir(tmp, { recursive: true });
    const r = startOdh(['composefs', 'id', '--jobs', '2', `oci:${dir}`], { TMPDIR: tmp });
    // Progress names the layer being applied: the workers are running by then.
    const started = await waitFor(() => /layer 1\/4/.test(r.stderr()), r);
    expect(started).toBe(true);
    r.child.kill('SIGINT');
    const e = await r.exited;
    expect(e.code).toBe(1);
    expect(r.stdout()).toBe('');
    expect(errorLines(r.stderr())).toEqual(['odh: error: interrupted by SIGINT; nothing was written']);
    expect(debris(tmp, dir)).toEqual([]);
    // The image is untouched: its layout still reads back.
    expect(JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8')).manifests).toHaveLength(1);
  });
});
