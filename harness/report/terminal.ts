/**
 * The terminal report (stdout): which implementations ran or why not, one row per fixture ×
 * creator × applier with a column per composefs flavour, then the reasons of everything not ok and
 * a PASS/FAIL line.
 */
import type { ConformanceResult } from '../conformance/types.js';
import {
  STATUS_MARK,
  bytes,
  flavourNames,
  percent,
  reasons,
  runRows,
  seconds,
  verdictLine,
} from './format.js';

function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(w[i]!))
      .join('  ')
      .trimEnd();
  return [line(head), line(w.map((n) => '-'.repeat(n))), ...rows.map(line)].join('\n');
}

export function renderTerminal(r: ConformanceResult): string {
  const out: string[] = [];
  out.push('Implementations:');
  for (const i of r.implementations) {
    const what = i.available
      ? `available${i.version ? ` (${i.version})` : ''}${i.path ? ` ${i.path}` : ''}`
      : `unavailable: ${i.reason}`;
    out.push(`  ${i.role.padEnd(7)} ${i.name.padEnd(15)} ${what}`);
  }
  out.push('');
  const flavours = flavourNames(r);
  // Runs skipped in every flavour are left out of the table: the "Skipped" list gives their reasons.
  const all = runRows(r);
  const shown = all.filter((row) => row.cells.some((c) => c.status !== 'skipped'));
  const rows = shown.map((row) => {
    const c0 = row.cells[0]!;
    const byFlavour = new Map(row.cells.map((c) => [`${c.format}-${c.hash}`, c]));
    return [
      row.fixture,
      row.creator,
      row.applier,
      c0.diffIds ?? '–',
      ...flavours.map((f) => STATUS_MARK[byFlavour.get(f)?.status ?? 'skipped']),
      bytes(c0.deltaBytes),
      percent(c0.deltaBytes, c0.fullBytes),
      seconds(c0.createSeconds),
      seconds(c0.applySeconds),
    ];
  });
  out.push(
    table(
      ['fixture', 'creator', 'applier', 'diff_ids', ...flavours, 'delta', 'of full', 'create', 'apply'],
      rows,
    ),
  );
  if (shown.length < all.length)
    out.push(`(${all.length - shown.length} fully skipped run(s) not shown: see "Skipped")`);
  for (const p of r.fixtureProblems) out.push(`FIXTURE PROBLEM ${p.fixture}: ${p.reason}`);
  const bad = r.cells.filter((c) => c.status === 'mismatch' || c.status === 'error');
  if (bad.length) {
    out.push('', 'Not ok:');
    for (const c of bad) {
      out.push(
        `  ${STATUS_MARK[c.status]} ${c.fixture} ${c.creator} → ${c.applier} ${c.format}-${c.hash}: ${c.reason}`,
      );
    }
  }
  const skipped = reasons(r.cells, 'skipped');
  if (skipped.length) {
    out.push('', 'Skipped (not passes):');
    for (const s of skipped) out.push(`  ${String(s.count).padStart(4)} cell(s): ${s.reason}`);
  }
  out.push('', verdictLine(r));
  return `${out.join('\n')}\n`;
}
