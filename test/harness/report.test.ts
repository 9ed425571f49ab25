/**
 * The three renderings of a conformance result (terminal, Markdown step summary, HTML) on a
 * hand-made result with every status, and the HTML report in headless Chromium: the DOM holds both
 * charts and a screenshot shows their bars.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import type { Cell, ConformanceResult } from '../../harness/conformance/types.js';
import { summarize } from '../../harness/conformance/summary.js';
import { renderHtml, writeHtmlReport } from '../../harness/report/html.js';
import { appendStepSummary, renderMarkdown } from '../../harness/report/markdown.js';
import { renderTerminal } from '../../harness/report/terminal.js';
import { findBrowser } from '../helpers/tools.js';
import { countColor, readPng } from './png.js';

const tmp = await mkdtemp(path.join(os.tmpdir(), 'odh-report-test-'));
afterAll(() => rm(tmp, { recursive: true, force: true }));

function cell(
  fixture: string,
  creator: string,
  applier: string,
  status: Cell['status'],
  reason = '',
): Cell[] {
  return (['sha512', 'sha256'] as const).map((hash) => ({
    fixture,
    creator,
    applier,
    format: 'v1',
    hash,
    status,
    reason,
    fullBytes: fixture === 'alpha' ? 4 << 20 : 1 << 20,
    ...(status === 'skipped' && reason.startsWith('creator')
      ? {}
      : { deltaBytes: creator === 'ts-zstd' ? 300_000 : 900_000 }),
    ...(status === 'ok' || status === 'mismatch'
      ? { createSeconds: 1.5, applySeconds: applier === 'ts-image' ? 2 : 0.5 }
      : {}),
    diffIds: status === 'ok' ? 'ok' : status === 'mismatch' ? 'mismatch' : 'not checked',
    required: status !== 'skipped',
    foreign: creator === 'upstream',
  }));
}

function sample(): ConformanceResult {
  const cells = [
    ...cell('alpha', 'ts-zstd', 'ts-image', 'ok'),
    ...cell('alpha', 'ts-zstd', 'ts-dir', 'ok'),
    ...cell(
      'alpha',
      'ts-copy',
      'ts-image',
      'mismatch',
      'layer 1 diff_id is sha256:aaaa…, want sha256:bbbb… <img src=x> | pipe',
    ),
    ...cell('alpha', 'ts-copy', 'ts-dir', 'ok'),
    ...cell('beta', 'ts-zstd', 'ts-image', 'ok'),
    ...cell('beta', 'ts-zstd', 'ts-dir', 'error', 'apply failed: boom'),
    ...cell('beta', 'ts-copy', 'ts-image', 'ok'),
    ...cell('beta', 'ts-copy', 'ts-dir', 'ok'),
    ...cell(
      'beta',
      'upstream',
      'ts-image',
      'skipped',
      'creator upstream: not built or pinned (run odh upstream build; upstream publishes no binaries)',
    ),
  ];
  const fixtureProblems: ConformanceResult['fixtureProblems'] = [];
  return {
    cells,
    implementations: [
      { role: 'creator', name: 'ts-zstd', available: true },
      { role: 'creator', name: 'ts-copy', available: true },
      {
        role: 'creator',
        name: 'upstream',
        available: false,
        reason: 'not built or pinned (run odh upstream build; upstream publishes no binaries)',
      },
      { role: 'applier', name: 'ts-image', available: true },
      { role: 'applier', name: 'ts-dir', available: true },
    ],
    fixtureProblems,
    summary: summarize(cells, 2, fixtureProblems, 12.34),
  };
}

describe('reports', () => {
  const r = sample();

  it('summary counts every status; skips are not passes', () => {
    expect(r.summary).toEqual({
      fixtures: 2,
      cells: 18,
      ok: 12,
      mismatch: 2,
      error: 2,
      skipped: 2,
      required: 16,
      requiredOk: 12,
      foreign: 0,
      checked: 0,
      passed: false,
      seconds: 12.3,
    });
  });

  it('terminal: implementations, one row per run with a column per flavour, reasons, verdict', () => {
    const t = renderTerminal(r);
    expect(t).toContain(
      'creator upstream        unavailable: not built or pinned (run odh upstream build; upstream publishes no binaries)',
    );
    expect(t).toMatch(
      /^fixture\s+creator\s+applier\s+diff_ids\s+v1-sha512\s+v1-sha256\s+delta\s+of full\s+create\s+apply$/m,
    );
    expect(t).toMatch(
      /^alpha\s+ts-copy\s+ts-image\s+mismatch\s+MISMATCH\s+MISMATCH\s+878\.9 KiB\s+21\.5%\s+1\.50 s\s+2\.00 s$/m,
    );
    expect(t).toContain('  ERROR beta ts-zstd → ts-dir v1-sha512: apply failed: boom');
    expect(t).toContain(
      '     2 cell(s): creator upstream: not built or pinned (run odh upstream build; upstream publishes no binaries)',
    );
    expect(t.trimEnd().split('\n').at(-1)).toBe(
      'FAIL: 12/16 required cells ok (0 foreign, 0 checked by C mkcomposefs); 12 ok, 2 mismatch, 2 error, 2 skipped (18 cells, 2 fixtures, 12.3 s)',
    );
  });

  it('Markdown: verdict heading, escaped table cells, appended to $GITHUB_STEP_SUMMARY', async () => {
    const md = renderMarkdown(r);
    expect(md.split('\n')[0]).toBe(
      '## oci-delta conformance: FAIL: 12/16 required cells ok (0 foreign, 0 checked by C mkcomposefs); 12 ok, 2 mismatch, 2 error, 2 skipped (18 cells, 2 fixtures, 12.3 s)',
    );
    expect(md).toContain(
      '| alpha | ts-copy | ts-image | mismatch | ❌ mismatch | ❌ mismatch | 878.9 KiB | 21.5% | 1.50 s | 2.00 s |',
    );
    expect(md).toContain('<img src=x> \\| pipe');
    const file = path.join(tmp, 'summary.md');
    await writeFile(file, 'before\n');
    expect(await appendStepSummary(r, { GITHUB_STEP_SUMMARY: file })).toBe(true);
    expect(await readFile(file, 'utf8')).toBe(`before\n${md}`);
    expect(await appendStepSummary(r, {})).toBe(false);
  });

  it('HTML: self-contained (no script, no external asset), text escaped, two charts with one bar per value', () => {
    const html = renderHtml(r, new Date(0));
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).not.toMatch(/<(script|link|img|iframe|object|embed)\b|\s(src|href)\s*=\s*"|@import|url\(/i);
    // The only URL is the SVG namespace name (an identifier, never fetched).
    expect(html.match(/https?:\/\/[^"\s]*/g)!.every((u) => u === 'http://www.w3.org/2000/svg')).toBe(true);
    expect(html).toContain('&lt;img src=x&gt; | pipe');
    const charts = [...html.matchAll(/<svg[\s\S]*?<\/svg>/g)].map((m) => m[0]);
    expect(charts).toHaveLength(2);
    // Delta sizes: per fixture the full image plus each creator that made a delta (upstream did not).
    expect(charts[0]!.match(/<rect /g)).toHaveLength(6);
    expect(charts[0]).toContain('<title>beta full image: 1.0 MiB</title>');
    // Apply times: per fixture each applier with a timing (beta ts-dir only errored with ts-zstd).
    expect(charts[1]!.match(/<rect /g)).toHaveLength(4);
    expect(charts[1]).toContain('<title>alpha ts-image: 2.00 s</title>');
  });

  const browser = findBrowser();
  it.skipIf(browser === undefined)(
    'HTML renders in headless Chromium: both charts in the DOM, bars visible in a screenshot',
    async () => {
      const dir = path.join(tmp, 'report');
      const file = await writeHtmlReport(r, dir);
      const run = promisify(execFile);
      const args = (profile: string) => [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        `--user-data-dir=${path.join(tmp, profile)}`,
      ];
      const url = `file://${file}`;
      const dom = await run(browser!, [...args('p1'), '--dump-dom', url], {
        maxBuffer: 16 << 20,
        timeout: 90_000,
      });
      expect(dom.stdout).toContain('id="chart-delta-size"');
      expect(dom.stdout.match(/<svg /g)).toHaveLength(2);
      expect(dom.stdout.match(/<rect /g)).toHaveLength(10);
      const shot = path.join(tmp, 'shot.png');
      await run(browser!, [...args('p2'), `--screenshot=${shot}`, '--window-size=1280,2000', url], {
        timeout: 90_000,
      });
      const png = readPng(await readFile(shot));
      expect([png.width, png.height]).toEqual([1280, 2000]);
      // First palette colour: the "full image" bars and the ts-image bars; second: ts-zstd and ts-dir.
      expect(countColor(png, '#4e79a7')).toBeGreaterThan(2000);
      expect(countColor(png, '#f28e2b')).toBeGreaterThan(1000);
    },
  );
});
