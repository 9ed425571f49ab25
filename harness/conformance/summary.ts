/** Counting cells into the run's summary (skipped cells are never passes). */
import type { Cell, FixtureProblem, Summary } from './types.js';

export function summarize(
  cells: Cell[],
  fixtures: number,
  problems: FixtureProblem[],
  seconds: number,
): Summary {
  const count = (s: Cell['status']) => cells.filter((c) => c.status === s).length;
  const s = {
    fixtures,
    cells: cells.length,
    ok: count('ok'),
    mismatch: count('mismatch'),
    error: count('error'),
    skipped: count('skipped'),
    seconds: Math.round(seconds * 10) / 10,
  };
  return { ...s, passed: s.mismatch === 0 && s.error === 0 && problems.length === 0 && s.ok > 0 };
}

/** Process exit code of a run: 1 on any mismatch, error or fixture problem, or when nothing passed. */
export function exitCodeOf(summary: Summary): number {
  return summary.passed ? 0 : 1;
}
