/** Small shared formatting for the reports: sizes, seconds, statuses, grouping cells per run. */
import type { Cell, CellStatus, ConformanceResult } from '../conformance/types.js';

export function bytes(n: number | undefined): string {
  if (n === undefined) return '–';
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}

export function seconds(s: number | undefined): string {
  return s === undefined ? '–' : s < 10 ? `${s.toFixed(2)} s` : `${s.toFixed(1)} s`;
}

export function percent(part: number | undefined, whole: number): string {
  return part === undefined || whole === 0 ? '–' : `${((100 * part) / whole).toFixed(1)}%`;
}

export const STATUS_MARK: Record<CellStatus, string> = {
  ok: 'ok',
  mismatch: 'MISMATCH',
  error: 'ERROR',
  skipped: 'skip',
};

/** One applier run = the cells of one fixture × creator × applier (one per composefs flavour). */
export interface RunRow {
  fixture: string;
  creator: string;
  applier: string;
  cells: Cell[];
  /** Worst status: mismatch > error > skipped > ok. */
  status: CellStatus;
}

const RANK: Record<CellStatus, number> = { ok: 0, skipped: 1, error: 2, mismatch: 3 };

export function runRows(r: ConformanceResult): RunRow[] {
  const rows = new Map<string, RunRow>();
  for (const c of r.cells) {
    const key = `${c.fixture}\0${c.creator}\0${c.applier}`;
    let row = rows.get(key);
    if (!row) {
      row = { fixture: c.fixture, creator: c.creator, applier: c.applier, cells: [], status: 'ok' };
      rows.set(key, row);
    }
    row.cells.push(c);
    if (RANK[c.status] > RANK[row.status]) row.status = c.status;
  }
  return [...rows.values()];
}

/** Flavour column names in first-seen order (e.g. `v1-sha512`). */
export function flavourNames(r: ConformanceResult): string[] {
  return [...new Set(r.cells.map((c) => `${c.format}-${c.hash}`))];
}

/** Distinct reasons of non-ok cells with their counts, most frequent first. */
export function reasons(cells: Cell[], status: CellStatus): Array<{ reason: string; count: number }> {
  const m = new Map<string, number>();
  for (const c of cells) if (c.status === status) m.set(c.reason, (m.get(c.reason) ?? 0) + 1);
  return [...m.entries()].map(([reason, count]) => ({ reason, count })).sort((a, b) => b.count - a.count);
}

export function verdictLine(r: ConformanceResult): string {
  const s = r.summary;
  const head = s.passed ? 'PASS' : 'FAIL';
  return (
    `${head}: ${s.requiredOk}/${s.required} required cells ok ` +
    `(${s.foreign} foreign, ${s.checked} checked by C mkcomposefs); ` +
    `${s.ok} ok, ${s.mismatch} mismatch, ${s.error} error, ${s.skipped} skipped ` +
    `(${s.cells} cells, ${s.fixtures} fixtures, ${s.seconds} s)` +
    (r.fixtureProblems.length ? `; ${r.fixtureProblems.length} fixture problem(s)` : '')
  );
}

/** A delta's size once per fixture × creator (all cells of that pair share it). */
export function deltaSizes(r: ConformanceResult): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>();
  for (const c of r.cells) {
    if (c.deltaBytes === undefined) continue;
    if (!out.has(c.fixture)) out.set(c.fixture, new Map());
    out.get(c.fixture)!.set(c.creator, c.deltaBytes);
  }
  return out;
}
