/** The Markdown report for `$GITHUB_STEP_SUMMARY`: verdict, implementations, matrix, reasons. */
import { appendFile } from 'node:fs/promises';
import type { ConformanceResult } from '../conformance/types.js';
import { bytes, flavourNames, percent, reasons, runRows, seconds, verdictLine } from './format.js';

const ICON = { ok: '✅ ok', mismatch: '❌ mismatch', error: '💥 error', skipped: '⏭️ skipped' } as const;

/** Table cells may not hold `|` or newlines. */
function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
}

export function renderMarkdown(r: ConformanceResult): string {
  const flavours = flavourNames(r);
  const out: string[] = [`## oci-delta conformance: ${verdictLine(r)}`, ''];
  out.push('| role | implementation | status |', '|---|---|---|');
  for (const i of r.implementations) {
    out.push(
      `| ${i.role} | ${cell(i.name)} | ${i.available ? `available${i.version ? ` ${cell(i.version)}` : ''}` : `unavailable: ${cell(i.reason ?? '')}`} |`,
    );
  }
  out.push(
    '',
    `| fixture | creator | applier | diff_ids | ${flavours.join(' | ')} | delta | of full | create | apply |`,
  );
  out.push(`|${'---|'.repeat(8 + flavours.length)}`);
  for (const row of runRows(r)) {
    const c0 = row.cells[0]!;
    const by = new Map(row.cells.map((c) => [`${c.format}-${c.hash}`, c]));
    const st = flavours.map((f) => ICON[by.get(f)?.status ?? 'skipped']);
    out.push(
      `| ${row.fixture} | ${row.creator} | ${row.applier} | ${c0.diffIds ?? '–'} | ${st.join(' | ')} | ${bytes(c0.deltaBytes)} | ${percent(c0.deltaBytes, c0.fullBytes)} | ${seconds(c0.createSeconds)} | ${seconds(c0.applySeconds)} |`,
    );
  }
  for (const p of r.fixtureProblems) out.push('', `**Fixture problem** ${p.fixture}: ${cell(p.reason)}`);
  const bad = r.cells.filter((c) => c.status === 'mismatch' || c.status === 'error');
  if (bad.length) {
    out.push('', '### Not ok', '');
    for (const c of bad)
      out.push(
        `- ${ICON[c.status]} ${c.fixture} ${c.creator} → ${c.applier} ${c.format}-${c.hash}: ${cell(c.reason)}`,
      );
  }
  const skipped = reasons(r.cells, 'skipped');
  if (skipped.length) {
    out.push('', '### Skipped (not counted as passes)', '');
    for (const s of skipped) out.push(`- ${s.count} cell(s): ${cell(s.reason)}`);
  }
  return `${out.join('\n')}\n`;
}

/** Appends the report to `$GITHUB_STEP_SUMMARY` when that variable is set; returns whether it did. */
export async function appendStepSummary(r: ConformanceResult, env = process.env): Promise<boolean> {
  const file = env.GITHUB_STEP_SUMMARY;
  if (!file) return false;
  await appendFile(file, renderMarkdown(r));
  return true;
}
