/**
 * JUnit XML for CI systems (`odh conformance --junit FILE`): one <testsuite> per fixture, one
 * <testcase> per cell (creator → applier, composefs flavour). ok passes; mismatch is a <failure>
 * (the implementations disagree); error is an <error> (the cell could not be decided); skipped is
 * <skipped> with its reason, never a pass. Problems with a fixture's ground truth, which belong to no
 * cell, form one more suite, "fixture problems", with an <error> testcase each.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Cell, ConformanceResult } from '../conformance/types.js';

/** XML 1.0 text: escaped, and characters XML cannot carry at all replaced by U+FFFD. */
function xml(s: string): string {
  return s
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** The cell's test name, unique within its fixture. */
export function cellName(c: Cell): string {
  return `${c.creator} -> ${c.applier} [${c.format}-${c.hash}]`;
}

function seconds(c: Cell): string {
  return ((c.createSeconds ?? 0) + (c.applySeconds ?? 0)).toFixed(3);
}

function testcase(c: Cell): string {
  const open = `    <testcase classname="${xml(`conformance.${c.fixture}`)}" name="${xml(cellName(c))}" time="${seconds(c)}"`;
  const details = [
    c.diffIds !== undefined ? `diff_ids: ${c.diffIds}` : undefined,
    c.expectedId !== undefined ? `expected composefs id: ${c.expectedId}` : undefined,
    c.actualId !== undefined ? `actual composefs id:   ${c.actualId}` : undefined,
    c.deltaBytes !== undefined ? `delta bytes: ${c.deltaBytes} (full pull ${c.fullBytes})` : undefined,
  ]
    .filter((x): x is string => x !== undefined)
    .join('\n');
  switch (c.status) {
    case 'ok':
      return `${open}/>`;
    case 'skipped':
      return `${open}>\n      <skipped message="${xml(c.reason)}"/>\n    </testcase>`;
    case 'mismatch':
      return `${open}>\n      <failure message="${xml(c.reason)}" type="mismatch">${xml(details)}</failure>\n    </testcase>`;
    case 'error':
      return `${open}>\n      <error message="${xml(c.reason)}" type="error">${xml(details)}</error>\n    </testcase>`;
  }
}

function suite(
  name: string,
  cases: string[],
  counts: { failures: number; errors: number; skipped: number },
  time: number,
): string {
  return (
    `  <testsuite name="${xml(name)}" tests="${cases.length}" failures="${counts.failures}" errors="${counts.errors}" ` +
    `skipped="${counts.skipped}" time="${time.toFixed(3)}">\n${cases.join('\n')}${cases.length ? '\n' : ''}  </testsuite>`
  );
}

export function renderJunit(r: ConformanceResult): string {
  const fixtures: string[] = [];
  const byFixture = new Map<string, Cell[]>();
  for (const c of r.cells) {
    if (!byFixture.has(c.fixture)) {
      byFixture.set(c.fixture, []);
      fixtures.push(c.fixture);
    }
    byFixture.get(c.fixture)!.push(c);
  }
  const suites = fixtures.map((f) => {
    const cells = byFixture.get(f)!;
    const n = (s: Cell['status']) => cells.filter((c) => c.status === s).length;
    const time = cells.reduce((t, c) => t + (c.createSeconds ?? 0) + (c.applySeconds ?? 0), 0);
    return suite(
      f,
      cells.map(testcase),
      { failures: n('mismatch'), errors: n('error'), skipped: n('skipped') },
      time,
    );
  });
  if (r.fixtureProblems.length) {
    const cases = r.fixtureProblems.map(
      (p, i) =>
        `    <testcase classname="conformance.fixture-problems" name="${xml(`${p.fixture} #${i + 1}`)}" time="0.000">\n` +
        `      <error message="${xml(p.reason)}" type="fixture"/>\n    </testcase>`,
    );
    suites.push(suite('fixture problems', cases, { failures: 0, errors: cases.length, skipped: 0 }, 0));
  }
  const s = r.summary;
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<testsuites name="odh conformance" tests="${s.cells + r.fixtureProblems.length}" failures="${s.mismatch}" ` +
    `errors="${s.error + r.fixtureProblems.length}" skipped="${s.skipped}" time="${s.seconds.toFixed(3)}">\n` +
    `${suites.join('\n')}${suites.length ? '\n' : ''}</testsuites>\n`
  );
}

/** Writes the JUnit XML to `file` (its directory must exist); returns the absolute path. */
export async function writeJunit(r: ConformanceResult, file: string): Promise<string> {
  const abs = path.resolve(file);
  await fs.writeFile(abs, renderJunit(r));
  return abs;
}
