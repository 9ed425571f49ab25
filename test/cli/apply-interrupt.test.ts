/**
 * Interrupting apply: kill -9 leaves nothing at the destination (only a hidden `.odh-tmp-*` may
 * remain); SIGINT/SIGTERM abort cleanly (exit 1, one error line, no output, no temp leftovers).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDeltaArchive } from '../helpers/delta-builder.js';
import { buildScenario, leftovers, ODH, removeTree, tempRoot, type Scenario } from './fixture.js';

let root: string;
let sc: Scenario;
let delta: string;

beforeAll(async () => {
  root = tempRoot('odh-test-interrupt-');
  // A 16 MiB incompressible file copied by the tar-diff: gzip-compressing it takes long enough to
  // catch the output while it is being written.
  sc = await buildScenario(path.join(root, 'images'), 16 << 20);
  delta = path.join(root, 'delta.tar');
  await buildDeltaArchive(delta, sc.spec);
}, 300_000);
afterAll(() => removeTree(root));

let n = 0;

/** Starts apply, waits until the output's temp entry exists, then sends `signal`. */
async function interruptApply(signal: NodeJS.Signals) {
  const dir = path.join(root, `case-${n++}`);
  const tmp = path.join(dir, 'tmp');
  mkdirSync(tmp, { recursive: true });
  const out = path.join(dir, 'out.tar');
  const child = spawn('node', [ODH, 'apply', '--jobs', '1', '--source-dir', sc.sourceDir, delta, out], {
    env: { ...process.env, TMPDIR: tmp },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (c) => (stderr += c));
  child.stdout.on('data', (c) => (stdout += c));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let sent = false;
  for (let i = 0; i < 3000 && child.exitCode === null; i++) {
    if (readdirSync(dir).some((f) => f.startsWith('.odh-tmp-'))) {
      child.kill(signal);
      sent = true;
      break;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  const code = await exited;
  return { dir, tmp, out, code, stderr, stdout, sent };
}

describe('odh apply: interruption', () => {
  it('kill -9 while writing leaves no file at the destination', async () => {
    const r = await interruptApply('SIGKILL');
    expect(r.sent, `apply finished before it could be killed: ${r.stderr}`).toBe(true);
    expect(existsSync(r.out)).toBe(false);
    expect(r.stdout).toBe('');
  });

  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    it(`${sig} aborts cleanly: exit 1, one error line, no output, no leftovers`, async () => {
      const r = await interruptApply(sig);
      expect(r.sent, `apply finished before the signal: ${r.stderr}`).toBe(true);
      expect(r.code).toBe(1);
      const errors = r.stderr.split('\n').filter((l) => l.startsWith('odh: error:'));
      expect(errors).toEqual([`odh: error: interrupted by ${sig}; nothing was written`]);
      expect(existsSync(r.out)).toBe(false);
      expect(leftovers(r.dir)).toEqual([]);
      expect(leftovers(r.tmp)).toEqual([]);
    });
  }
});
