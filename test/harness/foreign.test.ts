/**
 * Foreign implementations in the conformance matrix: the Go containers/tar-diff 0.1.2 `tar-diff`
 * (creator go-tardiff) and `tar-patch` (applier go-tarpatch), and C mkcomposefs 1.0.8 (checker).
 * Expected values come from those tools, never from our own code: a cell is ok only when the Go
 * tools' output reconstructs the new image, and the C image ID equals ours.
 */
import { promises as fs, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { buildFixture } from '../../fixtures/build.js';
import { checkWithMkcomposefs } from '../../harness/conformance/mkcomposefs.js';
import type { Cell, ConformanceResult } from '../../harness/conformance/types.js';
import { TARDF2_UNREADABLE, goTarDiffCreator } from '../../harness/implementations/go-tardiff.js';
import { composefsImage } from '../../src/composefs/oci/image-id.js';
import { inspectDelta } from '../../src/delta/inspect.js';
import { hasOracle } from '../helpers/oracles.js';
import { REPO_ROOT } from '../helpers/shared.js';

const ODH = path.join(REPO_ROOT, 'dist', 'bin', 'odh.js');
const cacheDir = path.join(os.tmpdir(), 'odh-test-fixture-cache');
const FOREIGN = ['go-tardiff', 'go-tarpatch'];
const haveAll = hasOracle('tar-diff') && hasOracle('tar-patch') && hasOracle('mkcomposefs');

async function odh(args: string[], env: Record<string, string> = {}) {
  return execa('node', [ODH, ...args], {
    reject: false,
    env: { ODH_OCI_DELTA: '', GITHUB_STEP_SUMMARY: '', ...env },
  });
}

const where = (c: Cell) => `${c.fixture} ${c.creator} → ${c.applier} ${c.format}-${c.hash}`;

describe.skipIf(!haveAll)('Go tar-diff / tar-patch and C mkcomposefs in the matrix', () => {
  it('--quick --require go-tardiff,go-tarpatch,mkcomposefs: exit 0, every foreign cell ok (tardf2 → go-tarpatch skipped with the reason)', async () => {
    const r = await odh([
      'conformance',
      '--quick',
      '--creators',
      'ts-bsdiff,ts-zstd,ts-copy,go-tardiff',
      '--appliers',
      'ts-image,ts-dir,go-tarpatch',
      '--require',
      'go-tardiff,go-tarpatch,mkcomposefs',
      '--cache',
      cacheDir,
      '--json',
      '-q',
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as ConformanceResult;
    const foreign = out.cells.filter((c) => FOREIGN.includes(c.creator) || FOREIGN.includes(c.applier));
    const fixtures = new Set(out.cells.map((c) => c.fixture));
    expect(fixtures.size).toBeGreaterThanOrEqual(5);
    for (const c of foreign) {
      if (c.status === 'skipped') {
        // Only the Go tar-patch may skip, and only a delta it cannot read (ts-zstd writes tardf2).
        expect(c.applier, where(c)).toBe('go-tarpatch');
        expect(c.creator, where(c)).toBe('ts-zstd');
        expect(c.reason, where(c)).toBe(TARDF2_UNREADABLE);
        expect(c.required, where(c)).toBe(false);
        continue;
      }
      expect(c.status, `${where(c)}: ${c.reason}`).toBe('ok');
      expect(c.foreign, where(c)).toBe(true);
      expect(c.diffIds, where(c)).toBe('ok');
      expect(c.actualId, where(c)).toBe(c.expectedId);
    }
    // Every fixture ran both Go tools end to end (the Go delta applied by the Go tar-patch), and the
    // Go tar-patch rebuilt our default-mode (bsdiff, tardf1) delta.
    for (const f of fixtures) {
      for (const creator of ['go-tardiff', 'ts-bsdiff']) {
        const cells = foreign.filter(
          (c) => c.fixture === f && c.creator === creator && c.applier === 'go-tarpatch',
        );
        expect(cells.length, `${f} ${creator}`).toBe(3);
        expect(
          cells.every((c) => c.status === 'ok'),
          `${f} ${creator}`,
        ).toBe(true);
      }
    }
    // C mkcomposefs agreed on every V1-sha256 cell that has an output image.
    const v1 = out.cells.filter((c) => c.format === 'v1' && c.hash === 'sha256' && c.status === 'ok');
    expect(v1.length).toBeGreaterThan(0);
    for (const c of v1) expect(c.checkedBy, where(c)).toEqual(['mkcomposefs']);
    expect(out.summary.passed).toBe(true);
    expect(out.summary.requiredOk).toBe(out.summary.required);
    expect(out.summary.foreign).toBe(foreign.filter((c) => c.status === 'ok').length);
    expect(out.summary.checked).toBe(v1.length);
    for (const name of ['go-tardiff', 'go-tarpatch', 'mkcomposefs']) {
      const i = out.implementations.find((x) => x.name === name)!;
      expect(i, name).toMatchObject({ available: true, foreign: true });
      expect(path.isAbsolute(i.path!), name).toBe(true);
      expect(i.version, name).toMatch(/\d+\.\d+\.\d+/);
    }
    expect(out.implementations.find((x) => x.name === 'mkcomposefs')!.role).toBe('checker');
  }, 300_000);

  it('the Go creator really writes tar-diffs (tardf1, with Open ops naming old files)', async () => {
    const built = await buildFixture('rename-move', cacheDir);
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'odh-go-delta-'));
    try {
      const out = path.join(dir, 'delta.oci-archive');
      await goTarDiffCreator().create(built.old.path, built.new.path, out);
      const d = await inspectDelta(out);
      const diffs = d.layers.filter((l) => l.tarDiffVersion !== undefined);
      expect(diffs.length).toBeGreaterThan(0);
      expect(diffs.every((l) => l.tarDiffVersion === 1)).toBe(true);
      expect(diffs.some((l) => (l.ops?.Open ?? 0) > 0 && (l.ops?.Copy ?? 0) > 0)).toBe(true);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('a flipped byte inside a Go-made tar-diff is a mismatch, exit 1', async () => {
    const r = await odh([
      'conformance',
      '--fixtures',
      'rename-move,mixed-compression',
      '--creators',
      'go-tardiff',
      '--appliers',
      'ts-image,go-tarpatch',
      '--inject-fault',
      'flip-delta-byte',
      '--cache',
      cacheDir,
      '--json',
      '-q',
    ]);
    expect(r.exitCode, r.stderr).toBe(1);
    const out = JSON.parse(r.stdout) as ConformanceResult;
    expect(out.cells.length).toBe(2 * 2 * 3);
    for (const c of out.cells) expect(c.status, `${where(c)}: ${c.reason}`).toBe('mismatch');
    expect(out.summary.passed).toBe(false);
  }, 300_000);

  it('C mkcomposefs disagreeing with our image is reported with both names and the first differing line', async () => {
    const built = await buildFixture('rename-move', cacheDir);
    const flavour = { format: 'v1', hash: 'sha256' } as const;
    const a = await composefsImage(`oci-archive:${built.new.path}`, flavour);
    const b = await composefsImage(`oci-archive:${built.old.path}`, flavour);
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'odh-mkcfs-'));
    try {
      expect(await checkWithMkcomposefs(a.tree, a.image, a.id, dir)).toEqual({ ok: true, id: a.id });
      const bad = await checkWithMkcomposefs(a.tree, b.image, b.id, dir);
      expect(bad.ok).toBe(false);
      if (bad.ok) return;
      expect(bad.id).toBe(a.id);
      expect(bad.reason).toMatch(/^C mkcomposefs v1-sha256 ID [0-9a-f]{16}… differs from ours \(odh\)/);
      expect(bad.reason).toMatch(/first differing dumpfile line \d+: odh .* \| C /);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('--require', () => {
  it('names an unavailable implementation: exit 1 with its reason, before building anything', async () => {
    const cache = path.join(os.tmpdir(), `odh-require-${process.pid}-${Date.now()}`);
    const r = await odh(
      ['conformance', '--quick', '--require', 'go-tardiff,upstream', '--cache', cache, '--offline'],
      { ODH_OCI_DELTA: '/nonexistent/oci-delta' },
    );
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^odh: error: required (go-tardiff|upstream\S*) is unavailable: /);
    expect(existsSync(cache)).toBe(false);
  });

  it('an unknown name is a usage error', async () => {
    const r = await odh(['conformance', '--quick', '--require', 'no-such-impl']);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/unknown implementation no-such-impl/);
  });
});
