/**
 * The self-contained HTML report (`--report DIR` → DIR/index.html): verdict, implementations,
 * charts (delta size vs the full image per fixture and creator; apply time per applier), the
 * matrix and the reasons of every cell not ok. Inline CSS and SVG only: no script, no network.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ConformanceResult } from '../conformance/types.js';
import {
  bytes,
  deltaSizes,
  flavourNames,
  percent,
  reasons,
  runRows,
  seconds,
  verdictLine,
} from './format.js';
import { colorFor, escapeXml as esc, renderBarChart, type BarGroup } from './svg.js';

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1d1d1f;background:#fff}
h1{font-size:22px;margin:0 0 8px}h2{font-size:17px;margin:28px 0 8px}
.verdict{display:inline-block;padding:6px 12px;border-radius:6px;font-weight:600}
.pass{background:#e3f6e5;color:#17612a}.fail{background:#fde7e7;color:#8a1111}
table{border-collapse:collapse;margin:6px 0}th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;white-space:nowrap}
th{background:#f4f4f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{background:#e3f6e5}.mismatch{background:#f8c9c9;font-weight:600}.error{background:#fde2c4;font-weight:600}.skipped{background:#eeeeee;color:#666}
.chart text{font:12px system-ui,sans-serif;fill:#1d1d1f}.chart .title{font-size:14px;font-weight:600}.chart .group{font-weight:600}
ul.reasons li{margin:2px 0}code{font-size:12px}
`;

function chartDeltaSizes(r: ConformanceResult): string {
  const sizes = deltaSizes(r);
  const creators = [...new Set(r.cells.map((c) => c.creator))];
  const color = colorFor(['full image', ...creators]);
  const full = new Map(r.cells.map((c) => [c.fixture, c.fullBytes]));
  const groups: BarGroup[] = [...sizes.entries()].map(([fixture, byCreator]) => ({
    label: fixture,
    bars: [
      { label: 'full image', value: full.get(fixture) ?? 0, color: color('full image') },
      ...creators
        .filter((c) => byCreator.has(c))
        .map((c) => ({ label: c, value: byCreator.get(c)!, color: color(c) })),
    ],
  }));
  return renderBarChart({
    title: 'Delta size vs full image (sum of the new image’s compressed layers)',
    description: 'delta size per fixture and creator compared with the full image size',
    format: bytes,
    groups,
  });
}

function chartApplyTimes(r: ConformanceResult): string {
  const appliers = [...new Set(r.cells.map((c) => c.applier))];
  const color = colorFor(appliers);
  const groups: BarGroup[] = [];
  for (const fixture of [...new Set(r.cells.map((c) => c.fixture))]) {
    const bars = appliers.flatMap((a) => {
      // One timing per creator × applier run (the flavour cells of a run share it): their mean.
      const runs = runRows(r).filter((x) => x.fixture === fixture && x.applier === a);
      const times = runs.map((x) => x.cells[0]!.applySeconds).filter((t): t is number => t !== undefined);
      if (!times.length) return [];
      return [{ label: a, value: times.reduce((s, t) => s + t, 0) / times.length, color: color(a) }];
    });
    if (bars.length) groups.push({ label: fixture, bars });
  }
  return renderBarChart({
    title: 'Apply time per applier (mean over creators)',
    description: 'apply time per fixture and applier',
    format: seconds,
    groups,
  });
}

export function renderHtml(r: ConformanceResult, generatedAt = new Date()): string {
  const flavours = flavourNames(r);
  const impl = r.implementations
    .map(
      (i) =>
        `<tr><td>${i.role}</td><td>${esc(i.name)}</td><td class="${i.available ? 'ok' : 'skipped'}">` +
        `${i.available ? `available${i.version ? ` ${esc(i.version)}` : ''}` : `unavailable: ${esc(i.reason ?? '')}`}</td></tr>`,
    )
    .join('');
  const rows = runRows(r)
    .map((row) => {
      const c0 = row.cells[0]!;
      const by = new Map(row.cells.map((c) => [`${c.format}-${c.hash}`, c]));
      const st = flavours
        .map((f) => {
          const c = by.get(f);
          return `<td class="${c?.status ?? 'skipped'}" title="${esc(c?.reason ?? '')}">${c?.status ?? 'skipped'}</td>`;
        })
        .join('');
      return (
        `<tr><td>${esc(row.fixture)}</td><td>${esc(row.creator)}</td><td>${esc(row.applier)}</td>` +
        `<td class="${c0.diffIds === 'mismatch' ? 'mismatch' : c0.diffIds === 'ok' ? 'ok' : 'skipped'}">${c0.diffIds ?? '–'}</td>${st}` +
        `<td class="num">${bytes(c0.deltaBytes)}</td><td class="num">${bytes(c0.fullBytes)}</td>` +
        `<td class="num">${percent(c0.deltaBytes, c0.fullBytes)}</td><td class="num">${seconds(c0.createSeconds)}</td>` +
        `<td class="num">${seconds(c0.applySeconds)}</td></tr>`
      );
    })
    .join('');
  const bad = r.cells.filter((c) => c.status === 'mismatch' || c.status === 'error');
  const skipped = reasons(r.cells, 'skipped');
  const problems = r.fixtureProblems.map(
    (p) => `<li class="mismatch">${esc(p.fixture)}: ${esc(p.reason)}</li>`,
  );
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>oci-delta conformance</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>${CSS}</style></head>
<body>
<h1>oci-delta conformance</h1>
<p><span class="verdict ${r.summary.passed ? 'pass' : 'fail'}">${esc(verdictLine(r))}</span></p>
<p>Generated ${esc(generatedAt.toISOString())}. Every applier output is checked against the new image itself: layer diff_ids
recomputed from the output blobs, and composefs image IDs (${esc(flavours.join(', '))}).</p>
${problems.length ? `<h2>Fixture problems</h2><ul class="reasons">${problems.join('')}</ul>` : ''}
<h2>Implementations</h2>
<table><tr><th>role</th><th>name</th><th>status</th></tr>${impl}</table>
<h2>Charts</h2>
<div id="chart-delta-size">${chartDeltaSizes(r)}</div>
<div id="chart-apply-time">${chartApplyTimes(r)}</div>
<h2>Matrix</h2>
<table id="matrix"><tr><th>fixture</th><th>creator</th><th>applier</th><th>diff_ids</th>${flavours.map((f) => `<th>${esc(f)}</th>`).join('')}
<th>delta</th><th>full</th><th>of full</th><th>create</th><th>apply</th></tr>${rows}</table>
${bad.length ? `<h2>Not ok</h2><ul class="reasons">${bad.map((c) => `<li class="${c.status}">${c.status}: ${esc(`${c.fixture} ${c.creator} → ${c.applier} ${c.format}-${c.hash}: ${c.reason}`)}</li>`).join('')}</ul>` : ''}
${skipped.length ? `<h2>Skipped (not counted as passes)</h2><ul class="reasons">${skipped.map((s) => `<li>${s.count} cell(s): ${esc(s.reason)}</li>`).join('')}</ul>` : ''}
</body></html>
`;
}

/** Writes DIR/index.html (DIR is created when missing); returns the file path. */
export async function writeHtmlReport(r: ConformanceResult, dir: string): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  const file = path.join(dir, 'index.html');
  const tmp = `${file}.odh-tmp-${process.pid}`;
  await fs.writeFile(tmp, renderHtml(r));
  await fs.rename(tmp, file);
  return file;
}
