/**
 * The conformance matrix end to end with the TypeScript implementations (upstream and cfsctl are
 * not available here and must be reported as skipped, never as passes), and through the CLI: a
 * clean run exits 0 with one JSON object, a run whose applier output has one flipped byte exits 1
 * with every cell a mismatch.
 */
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { buildFixture } from '../../fixtures/build.js';
import { expectedPins, type ComposefsPins } from '../../fixtures/expected.js';
import {
  conformance,
  exitCodeOf,
  selectFlavours,
  type ConformanceResult,
} from '../../harness/conformance/index.js';
import { summarize } from '../../harness/conformance/summary.js';
import { groundTruth } from '../../harness/conformance/verify.js';
import { findTool } from '../../harness/tool-path.js';
import type { UpstreamResolution } from '../../harness/upstream/types.js';
import { REPO_ROOT } from '../helpers/shared.js';

const ODH = path.join(REPO_ROOT, 'dist', 'bin', 'odh.js');
const cacheDir = path.join(os.tmpdir(), 'odh-test-fixture-cache');
const cfsctlOnPath = findTool('cfsctl') !== undefined;
const notPinned: UpstreamResolution = {
  status: 'unavailable',
  reason: 'not built or pinned (run odh upstream build; upstream publishes no binaries)',
};

// A representative part of the quick set: tar-diffs with renames, bootc hardlinked objects,
// whiteouts/opaque dirs, gzip+zstd+plain layers, reused and reordered layers.
const FIXTURES = [
  'rename-move',
  'bootc-chunked',
  'whiteouts-opaque',
  'mixed-compression',
  'layer-reuse-reorder',
];

async function odh(args: string[]) {
  return execa('node', [ODH, ...args], {
    reject: false,
    env: { ODH_OCI_DELTA: '', GITHUB_STEP_SUMMARY: '' },
  });
}

describe('conformance matrix (TypeScript creators × appliers)', () => {
  let result: ConformanceResult;

  it('every cell is ok: diff_ids and all three composefs IDs equal the new image and its pins', async () => {
    result = await conformance({
      fixtures: FIXTURES,
      creators: ['ts-zstd', 'ts-copy'],
      appliers: ['ts-image', 'ts-dir', 'upstream'],
      upstream: notPinned,
      cacheDir,
    });
    const ran = result.cells.filter((c) => c.applier !== 'upstream');
    expect(ran).toHaveLength(FIXTURES.length * 2 * 2 * 3);
    for (const c of ran) {
      const where = `${c.fixture} ${c.creator} ${c.applier} ${c.format}-${c.hash}`;
      expect(c.status, `${where}: ${c.reason}`).toBe('ok');
      expect(c.diffIds, where).toBe('ok');
      expect(c.actualId, where).toBe(c.expectedId);
      // Cross-check with the committed pins (fixtures/expected.json, written by fixtures-regen).
      const pin = expectedPins(c.fixture)?.new.composefs[`${c.format}-${c.hash}` as keyof ComposefsPins];
      if (pin) expect(c.expectedId, where).toBe(pin);
      expect(c.deltaBytes, where).toBeGreaterThan(0);
      expect(c.createSeconds, where).toBeGreaterThan(0);
      expect(c.applySeconds, where).toBeGreaterThan(0);
    }
    expect(result.fixtureProblems).toEqual([]);
    // Content changes inside big layers: the zstd deltas are far smaller than the image.
    for (const f of ['rename-move', 'bootc-chunked']) {
      const c = ran.find((x) => x.fixture === f && x.creator === 'ts-zstd')!;
      expect(c.deltaBytes!).toBeLessThan(c.fullBytes / 4);
    }
  });

  it('an unavailable applier gives skipped cells with its reason, and skips are not passes', () => {
    const skipped = result.cells.filter((c) => c.applier === 'upstream');
    expect(skipped).toHaveLength(FIXTURES.length * 2 * 3);
    for (const c of skipped) {
      expect(c.status).toBe('skipped');
      expect(c.reason).toBe(
        'applier upstream: not built or pinned (run odh upstream build; upstream publishes no binaries)',
      );
    }
    expect(result.implementations).toContainEqual({
      role: 'applier',
      name: 'upstream',
      available: false,
      foreign: true,
      reason: 'not built or pinned (run odh upstream build; upstream publishes no binaries)',
    });
    // Skips for unavailability are listed but not required; every required cell ran and is ok.
    expect(skipped.every((c) => c.required === false)).toBe(true);
    expect(result.summary).toMatchObject({
      ok: FIXTURES.length * 12,
      skipped: FIXTURES.length * 6,
      passed: true,
    });
    expect(result.summary.cells).toBe(result.summary.ok + result.summary.skipped);
    expect(exitCodeOf(result.summary)).toBe(0);
  });

  it('a run where nothing could run fails (exit 1): skips never count as passes', async () => {
    const r = await conformance({
      fixtures: ['identical'],
      creators: ['upstream'],
      upstream: notPinned,
      cacheDir,
    });
    expect(
      r.cells.every(
        (c) =>
          c.status === 'skipped' &&
          c.reason ===
            'creator upstream: not built or pinned (run odh upstream build; upstream publishes no binaries)',
      ),
    ).toBe(true);
    expect(r.summary.passed).toBe(false);
    expect(exitCodeOf(r.summary)).toBe(1);
  });

  it('an old upstream (no --binary-diff) skips tardf2 deltas and a broken binary is an error, exit 1', async () => {
    const old: UpstreamResolution = {
      status: 'available',
      path: path.join(os.tmpdir(), 'odh-no-such-oci-delta'),
      version: '0.2.0',
      source: 'local',
      capabilities: { binaryDiff: false },
    };
    const r = await conformance({
      fixtures: ['rename-move'],
      creators: ['ts-zstd', 'ts-copy'],
      appliers: ['upstream'],
      upstream: old,
      format: 'v1',
      hash: 'sha512',
      cacheDir,
    });
    const zstd = r.cells.find((c) => c.creator === 'ts-zstd')!;
    expect(zstd).toMatchObject({
      status: 'skipped',
      reason: 'applier upstream cannot read tar-diff v2 (tardf2)',
    });
    const copy = r.cells.find((c) => c.creator === 'ts-copy')!;
    expect(copy.status).toBe('error');
    expect(copy.reason).toMatch(/^apply failed: oci-delta apply: cannot execute upstream binary/);
    expect(exitCodeOf(r.summary)).toBe(1);
  });

  it('the ground truth is cross-checked with the pins: a differing pin is a fixture problem, exit 1', async () => {
    const b = await buildFixture('identical', cacheDir);
    const pins = expectedPins('identical')!;
    expect(pins).toBeDefined();
    const good = await groundTruth(b.new.ref, selectFlavours('v1', 'sha256'), pins);
    expect(good.problems).toEqual([]);
    expect(good.ids.get('v1-sha256')).toBe(pins.new.composefs['v1-sha256']);
    const wrong = structuredClone(pins);
    wrong.new.composefs['v1-sha256'] = '0'.repeat(64);
    wrong.new.diffIds = [...wrong.new.diffIds].reverse().concat(['sha256:' + '1'.repeat(64)]);
    const bad = await groundTruth(b.new.ref, selectFlavours('v1', 'sha256'), wrong);
    expect(bad.problems).toEqual([
      'new image diff_ids differ from fixtures/expected.json',
      `new image composefs v1-sha256 ID ${good.ids.get('v1-sha256')!.slice(0, 16)}… differs from the pin 0000000000000000…`,
    ]);
    const summary = summarize([], 1, [{ fixture: 'identical', reason: bad.problems[0]! }], 1);
    expect(exitCodeOf(summary)).toBe(1);
  });

  it('--format/--hash narrow the composefs flavours', () => {
    expect(selectFlavours()).toHaveLength(3);
    expect(selectFlavours('v2')).toEqual([{ format: 'v2', hash: 'sha512' }]);
    expect(selectFlavours(undefined, 'sha256')).toEqual([{ format: 'v1', hash: 'sha256' }]);
    expect(selectFlavours('v2', 'sha256')).toEqual([{ format: 'v2', hash: 'sha256' }]);
  });
});

describe('odh conformance CLI', () => {
  it('--json prints one object; a clean run exits 0', async () => {
    const r = await odh([
      'conformance',
      '-q',
      '--json',
      '--fixtures',
      'identical',
      '--creators',
      'ts-zstd',
      '--appliers',
      'ts-image',
      '--cache',
      cacheDir,
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as ConformanceResult;
    expect(out.cells.map((c) => c.status)).toEqual(['ok', 'ok', 'ok']);
    expect(Object.keys(out)).toEqual(['cells', 'implementations', 'fixtureProblems', 'summary']);
  });

  it('a flipped byte in a reconstructed layer is a mismatch in every flavour, exit 1', async () => {
    const r = await odh([
      'conformance',
      '-q',
      '--json',
      '--fixtures',
      'rename-move',
      '--creators',
      'ts-zstd',
      '--appliers',
      'ts-image,ts-dir',
      '--cache',
      cacheDir,
      '--inject-fault',
      'flip-byte',
    ]);
    expect(r.exitCode).toBe(1);
    const out = JSON.parse(r.stdout) as ConformanceResult;
    expect(out.cells).toHaveLength(6);
    for (const c of out.cells) {
      expect(c.status).toBe('mismatch');
      expect(c.diffIds).toBe('mismatch');
      expect(c.reason).toMatch(/^layer \d+ diff_id is sha256:[0-9a-f]{12}…, want sha256:[0-9a-f]{12}…/);
    }
    expect(out.summary).toMatchObject({ mismatch: 6, ok: 0, passed: false });
  });

  it.skipIf(cfsctlOnPath)(
    'the terminal report names unavailable implementations and the verdict; unknown names are usage errors',
    async () => {
      const r = await odh([
        'conformance',
        '-q',
        '--fixtures',
        'identical',
        '--creators',
        'ts-copy',
        '--appliers',
        'ts-dir,cfsctl',
        '--cache',
        cacheDir,
      ]);
      expect(r.stdout).toMatch(
        /^PASS: 3\/3 required cells ok \(0 foreign, \d checked by C mkcomposefs\); 3 ok, 0 mismatch, 0 error, 3 skipped/m,
      );
      expect(r.stdout).toMatch(/applier cfsctl\s+unavailable: cfsctl not on PATH/);
      expect(r.stderr).toMatch(/odh conformance: applier cfsctl: unavailable: cfsctl not on PATH/);
      const bad = await odh(['conformance', '--appliers', 'nope']);
      expect(bad.exitCode).toBe(2); // a usage error (the CLI contract)
      expect(bad.stderr).toMatch(
        /unknown applier\(s\) nope; known: ts-image, ts-dir, go-tarpatch, upstream, cfsctl/,
      );
    },
  );
});
