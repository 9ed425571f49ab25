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
  const required = cells.filter((c) => c.required);
  const requiredOk = required.filter((c) => c.status === 'ok').length;
  return {
    ...s,
    required: required.length,
    requiredOk,
    foreign: required.filter((c) => c.foreign && c.status === 'ok').length,
    checked: cells.filter((c) => c.checkedBy?.length).length,
    passed:
      required.length > 0 &&
      requiredOk === required.length &&
      s.mismatch === 0 &&
      s.error === 0 &&
      problems.length === 0,
  };
}

/** Process exit code of a run: 1 unless every required cell is ok (and there is one) without fixture problems. */
export function exitCodeOf(summary: Summary): number {
  return summary.passed ? 0 : 1;
}
