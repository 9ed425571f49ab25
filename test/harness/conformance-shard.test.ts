/**
 * Reports for CI systems and sharding: `odh conformance --junit` (parsed back with a strict XML
 * reader: one testsuite per fixture, exactly one testcase per cell, skipped / failure / error kept
 * apart) and `--shard I/N` + `odh conformance merge` (the merged shards equal one unsharded run,
 * cell for cell).
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listFixtures } from '../../fixtures/catalog.js';
import {
  mergeResults,
  parseShard,
  shardFixtures,
  type ShardedResult,
} from '../../harness/conformance/shard.js';
import type { Cell, ConformanceResult } from '../../harness/conformance/types.js';
import { cellName, renderJunit } from '../../harness/report/junit.js';
import { REPO_ROOT } from '../helpers/shared.js';
import { parseXml, type XmlElement } from '../helpers/xml.js';

const ODH = path.join(REPO_ROOT, 'dist', 'bin', 'odh.js');
const cacheDir = path.join(os.tmpdir(), 'odh-test-fixture-cache');
const FIXTURES = ['identical', 'rename-move', 'small-files-edges', 'type-replacements', 'xattrs'];
/** Run-dependent fields: timings and memory. Everything else must be equal cell for cell. */
const TIMING = ['createSeconds', 'applySeconds', 'createPeakRssKiB', 'applyPeakRssKiB'] as const;

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'odh-shard-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function odh(args: string[]) {
  const r = await execa('node', [ODH, ...args], {
    reject: false,
    env: { ODH_OCI_DELTA: '', GITHUB_STEP_SUMMARY: '', TMPDIR: work },
    timeout: 600_000,
  });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

const matrixArgs = [
  'conformance',
  '-q',
  '--offline',
  '--fixtures',
  FIXTURES.join(','),
  '--creators',
  'ts-zstd',
  '--appliers',
  'ts-image,upstream',
  '--cache',
  cacheDir,
];

function withoutTimings(c: Cell): Partial<Cell> {
  const copy: Partial<Cell> = { ...c };
  for (const k of TIMING) delete copy[k];
  return copy;
}

const children = (e: XmlElement, name: string) => e.children.filter((c) => c.name === name);

describe('--shard I/N', () => {
  it('parses I/N and refuses anything else', () => {
    expect(parseShard('2/3')).toEqual({ index: 2, count: 3 });
    for (const bad of ['0/3', '4/3', '1/0', '1', '1/2/3', '-1/2', '01/2', 'a/b', '1/1001'])
      expect(() => parseShard(bad), bad).toThrow(expect.objectContaining({ code: 'USAGE' }));
  });

  it('slices are a deterministic, balanced partition in run order', () => {
    const all = listFixtures()
      .filter((f) => !f.big)
      .map((f) => f.name);
    for (const n of [1, 2, 3, 4, 7, all.length, all.length + 3]) {
      const slices = Array.from({ length: n }, (_, i) => shardFixtures(all, { index: i + 1, count: n }));
      expect(slices.flat().sort()).toEqual([...all].sort());
      for (const s of slices) expect(s).toEqual(all.filter((f) => s.includes(f))); // run order kept
      const sizes = slices.map((s) => s.length);
      expect(Math.max(...sizes) - Math.min(...sizes), `n=${n}`).toBeLessThanOrEqual(1);
      expect(Array.from({ length: n }, (_, i) => shardFixtures(all, { index: i + 1, count: n }))).toEqual(
        slices,
      );
    }
  });

  it('a big fixture weighs more: it gets a shard of its own', () => {
    const all = listFixtures().map((f) => f.name);
    const big = listFixtures()
      .filter((f) => f.big)
      .map((f) => f.name);
    expect(big.length).toBeGreaterThan(0);
    const slices = [1, 2, 3].map((i) => shardFixtures(all, { index: i, count: 3 }));
    for (const b of big) expect(slices.find((s) => s.includes(b))).toHaveLength(1);
  });

  it('is a usage error on the CLI when malformed', async () => {
    const r = await odh(['conformance', '--shard', '0/3']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toBe(
      'odh: error: invalid --shard "0/3" (want I/N with 1 ≤ I ≤ N ≤ 1000) (odh conformance --help)',
    );
  });
});

describe('odh conformance --shard 1/3 + 2/3 + 3/3, merged, equals one unsharded run', () => {
  let whole: ConformanceResult;
  const shards: ShardedResult[] = [];
  const files: string[] = [];

  beforeAll(async () => {
    const w = await odh([...matrixArgs, '--json', '--junit', path.join(work, 'whole.xml')]);
    expect(w.exitCode, w.stderr).toBe(0);
    whole = JSON.parse(w.stdout) as ConformanceResult;
    for (const i of [1, 2, 3]) {
      const r = await odh([...matrixArgs, '--json', '--shard', `${i}/3`]);
      expect(r.exitCode, r.stderr).toBe(0);
      files.push(path.join(work, `shard-${i}.json`));
      await writeFile(files[i - 1]!, r.stdout);
      shards.push(JSON.parse(r.stdout) as ShardedResult);
    }
  }, 900_000);

  it('each shard ran only its own fixtures, and together all of them once', () => {
    const ran = shards.map((s) => [...new Set(s.cells.map((c) => c.fixture))]);
    for (const [i, s] of shards.entries()) {
      expect(s.shard).toMatchObject({ index: i + 1, count: 3, fixtures: FIXTURES });
      expect(ran[i]).toEqual(s.shard!.mine);
    }
    expect(ran.flat().sort()).toEqual([...FIXTURES].sort());
  });

  it('the unsharded run has ok and skipped cells (upstream is unavailable here: skipped, not passed)', () => {
    expect(whole.cells.length).toBe(FIXTURES.length * 2 * 3);
    expect(whole.cells.filter((c) => c.status === 'ok')).toHaveLength(FIXTURES.length * 3);
    expect(whole.cells.filter((c) => c.status === 'skipped').every((c) => c.applier === 'upstream')).toBe(
      true,
    );
  });

  it('merge --json equals the unsharded JSON cell for cell (timings aside), with the same verdict', async () => {
    // Shards given out of order: merge orders by shard metadata, not by argument position.
    const r = await odh([
      'conformance',
      'merge',
      '--json',
      '--junit',
      path.join(work, 'merged.xml'),
      files[2]!,
      files[0]!,
      files[1]!,
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    const merged = JSON.parse(r.stdout) as ConformanceResult;
    expect(merged.cells.map(withoutTimings)).toEqual(whole.cells.map(withoutTimings));
    expect(merged.implementations).toEqual(whole.implementations);
    expect(merged.fixtureProblems).toEqual(whole.fixtureProblems);
    const { seconds: _a, ...m } = merged.summary;
    const { seconds: _b, ...u } = whole.summary;
    expect(m).toEqual(u);
    expect(mergeResults([shards[1]!, shards[0]!, shards[2]!]).cells.map(withoutTimings)).toEqual(
      whole.cells.map(withoutTimings),
    );
    // The merged JUnit equals the unsharded one except for times.
    const strip = (f: string) => readFileSync(f, 'utf8').replace(/ time="[0-9.]+"/g, '');
    expect(strip(path.join(work, 'merged.xml'))).toBe(strip(path.join(work, 'whole.xml')));
  });

  it('merge refuses an incomplete or mixed set with one line', async () => {
    const missing = await odh(['conformance', 'merge', files[0]!, files[2]!]);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toBe(
      "odh: error: missing shard(s) 2/3: every shard's result is needed for one verdict",
    );
    const twice = await odh(['conformance', 'merge', files[0]!, files[0]!, files[1]!, files[2]!]);
    expect(twice.exitCode).toBe(1);
    expect(twice.stderr).toMatch(/^odh: error: shard 1\/3 given twice \(file .*shard-1\.json\)$/);
    const junk = path.join(work, 'junk.json');
    await writeFile(junk, '{"cells": 3}');
    const bad = await odh(['conformance', 'merge', junk]);
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toMatch(/^odh: error: not a conformance result .*\(file .*junk\.json\)$/);
    const none = await odh(['conformance', 'merge']);
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toBe(
      "odh: error: missing required argument 'RESULTS' (odh conformance merge --help)",
    );
  });

  it('--junit validates: one testsuite per fixture, exactly one testcase per cell', () => {
    const doc = parseXml(readFileSync(path.join(work, 'whole.xml'), 'utf8'));
    expect(doc.name).toBe('testsuites');
    const suites = children(doc, 'testsuite');
    expect(suites.map((s) => s.attrs.name)).toEqual(FIXTURES);
    const cases = suites.flatMap((s) => children(s, 'testcase').map((t) => ({ suite: s.attrs.name!, t })));
    expect(cases).toHaveLength(whole.cells.length);
    expect(Number(doc.attrs.tests)).toBe(whole.cells.length);
    // One-to-one: every cell has its testcase, named uniquely within its fixture.
    const keys = cases.map(({ suite, t }) => `${suite}\u0000${t.attrs.name}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys.sort()).toEqual(whole.cells.map((c) => `${c.fixture}\u0000${cellName(c)}`).sort());
    for (const s of suites) {
      const tcs = children(s, 'testcase');
      expect(Number(s.attrs.tests)).toBe(tcs.length);
      expect(Number(s.attrs.skipped)).toBe(tcs.filter((t) => children(t, 'skipped').length === 1).length);
      expect(Number(s.attrs.failures)).toBe(0);
      expect(Number(s.attrs.errors)).toBe(0);
    }
    const skipped = cases.filter(({ t }) => children(t, 'skipped').length);
    expect(skipped).toHaveLength(whole.cells.filter((c) => c.status === 'skipped').length);
    for (const { t } of skipped) expect(t.children[0]!.attrs.message).toMatch(/^applier upstream: /);
  });
});

describe('renderJunit keeps skipped, failure and error apart', () => {
  const base = { creator: 'ts-zstd', applier: 'ts-image', hash: 'sha512' as const, fullBytes: 10 };
  const cells: Cell[] = [
    { ...base, fixture: 'a', format: 'v1', status: 'ok', reason: '' },
    {
      ...base,
      fixture: 'a',
      format: 'v2',
      status: 'mismatch',
      reason: 'id <x> & "y"',
      expectedId: 'e',
      actualId: 'f',
    },
    { ...base, fixture: 'b', format: 'v1', status: 'error', reason: 'apply failed: \u0001 bad byte' },
    {
      ...base,
      fixture: 'b',
      format: 'v2',
      status: 'skipped',
      reason: "applier cfsctl: cfsctl's not on PATH",
    },
  ];
  const r: ConformanceResult = {
    cells,
    implementations: [],
    fixtureProblems: [{ fixture: 'c', reason: 'pins disagree' }],
    summary: {
      fixtures: 3,
      cells: 4,
      ok: 1,
      mismatch: 1,
      error: 1,
      skipped: 1,
      required: 3,
      requiredOk: 1,
      foreign: 0,
      checked: 0,
      passed: false,
      seconds: 1.5,
    },
  };

  it('each status its own element, counts on every level, text escaped', () => {
    const doc = parseXml(renderJunit(r));
    expect(doc.attrs).toMatchObject({ tests: '5', failures: '1', errors: '2', skipped: '1' });
    const [a, b, problems] = children(doc, 'testsuite');
    expect(a!.attrs).toMatchObject({ name: 'a', tests: '2', failures: '1', errors: '0', skipped: '0' });
    expect(b!.attrs).toMatchObject({ name: 'b', tests: '2', failures: '0', errors: '1', skipped: '1' });
    const [ok, mismatch] = children(a!, 'testcase');
    expect(ok!.children).toEqual([]);
    expect(mismatch!.children.map((c) => c.name)).toEqual(['failure']);
    expect(mismatch!.children[0]!.attrs.message).toBe('id <x> & "y"');
    expect(mismatch!.children[0]!.text).toContain('expected composefs id: e');
    const [error, skipped] = children(b!, 'testcase');
    expect(error!.children.map((c) => c.name)).toEqual(['error']);
    expect(error!.children[0]!.attrs.message).toBe('apply failed: \uFFFD bad byte');
    expect(skipped!.children.map((c) => c.name)).toEqual(['skipped']);
    expect(skipped!.children[0]!.attrs.message).toBe("applier cfsctl: cfsctl's not on PATH");
    expect(problems!.attrs).toMatchObject({ name: 'fixture problems', tests: '1', errors: '1' });
    expect(children(problems!, 'testcase')[0]!.children[0]!.attrs.message).toBe('pins disagree');
  });

  it('the XML reader itself rejects broken documents', () => {
    for (const bad of [
      '<a>',
      '<a></b>',
      '<a x="1" x="2"/>',
      '<a>&nope;</a>',
      '<a/><b/>',
      '<a>x & y</a>',
      '<a x=1/>',
    ])
      expect(() => parseXml(bad), bad).toThrow();
  });
});
