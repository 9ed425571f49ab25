import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Reporter, TestCase, TestModule, Vitest } from 'vitest/node';

interface Skip {
  file: string;
  reason: string;
}

/**
 * After vitest's own summary: every skipped test by name with its reason (a skip is never a pass, so
 * a reader must see what did not run and why), then one plain closing line
 * `tests: N passed, N failed, N skipped` that a CI reader who does not know vitest's format still
 * understands. Reasons come from `ctx.skip(note)`, from `it.skip('reason …')` names, or from the
 * helpers that decide to skip (test/helpers/skip-log.ts, through ODH_SKIP_LOG).
 */
export default class SummaryLineReporter implements Reporter {
  private logDir: string | undefined;
  private filtered = false;

  onInit(vitest: Vitest): void {
    this.filtered = Boolean(vitest.config.testNamePattern);
    // Set before the workers start, so they inherit it.
    this.logDir = mkdtempSync(path.join(os.tmpdir(), 'odh-skip-log-'));
    process.env.ODH_SKIP_LOG = path.join(this.logDir, 'skips.jsonl');
  }

  private recorded(): Skip[] {
    const log = process.env.ODH_SKIP_LOG;
    if (!log) return [];
    try {
      return readFileSync(log, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Skip);
    } catch {
      return [];
    }
  }

  private reasonFor(test: TestCase, skips: Skip[]): string {
    const note = (test.result() as { note?: string }).note;
    if (note) return note;
    const file = test.module.moduleId;
    const reasons = [...new Set(skips.filter((s) => s.file === file).map((s) => s.reason))];
    if (reasons.length) return reasons.join('; ');
    if (test.options.mode === 'todo') return 'todo';
    return this.filtered
      ? 'not selected by the -t filter, or skipped in the test file'
      : 'skipped in the test file (its name says why)';
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    const skippedTests: TestCase[] = [];
    for (const mod of testModules) {
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else skippedTests.push(test);
      }
      if (mod.state() === 'failed' && mod.children.size === 0) failed++;
    }
    const skips = this.recorded();
    const lines: string[] = [];
    if (skippedTests.length) {
      lines.push('', `skipped tests (${skippedTests.length}):`);
      for (const t of skippedTests) {
        const rel = path.relative(process.cwd(), t.module.moduleId);
        lines.push(`  - ${rel} > ${t.fullName}: ${this.reasonFor(t, skips)}`);
      }
    }
    lines.push('', `tests: ${passed} passed, ${failed} failed, ${skippedTests.length} skipped`);
    process.stdout.write(`${lines.join('\n')}\n`);
    if (this.logDir) rmSync(this.logDir, { recursive: true, force: true });
  }
}
