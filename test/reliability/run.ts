/**
 * Real `odh` processes for the reliability tests: spawn one with a private TMPDIR, wait for a temp
 * entry to appear, signal it, and list what it left behind.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, promises as fs, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT, vectorPath } from '../helpers/shared.js';

export const ODH = process.env.ODH_TEST_BIN ?? path.join(REPO_ROOT, 'dist', 'bin', 'odh.js');

export interface Running {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (null when killed) and the signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
}

export function startOdh(args: string[], env: Record<string, string>, input?: 'pipe'): Running {
  const t0 = Date.now();
  const child = spawn('node', [ODH, ...args], {
    env: { PATH: process.env.PATH ?? '', CI: process.env.CI ?? '', ...env },
    stdio: [input ?? 'ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (err += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>((r) =>
    child.on('exit', (code, signal) => r({ code, signal, ms: Date.now() - t0 })),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Runs odh to the end. */
export async function runOdh(args: string[], env: Record<string, string>) {
  const r = startOdh(args, env);
  const e = await r.exited;
  return { ...e, stdout: r.stdout(), stderr: r.stderr() };
}

/** Polls every 2 ms until `pred` holds (true) or the process ended / time ran out (false). */
export async function waitFor(pred: () => boolean, r: Running, timeoutMs = 60_000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end && r.child.exitCode === null && r.child.signalCode === null) {
    if (pred()) return true;
    await new Promise((res) => setTimeout(res, 2));
  }
  return false;
}

/** Our temp names: `.odh-tmp-*` beside outputs, `odh-*` in TMPDIR, `.build-*` in the fixture cache. */
export const DEBRIS = /^(\.odh-tmp-|odh-|\.build-)/;

/** Debris directly inside each dir (and one level below, for a fixture cache's pair directories). */
export function debris(...dirs: string[]): string[] {
  const found: string[] = [];
  for (const d of dirs) {
    if (!existsSync(d)) continue;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (DEBRIS.test(e.name)) found.push(path.join(d, e.name));
      else if (e.isDirectory())
        for (const n of readdirSync(path.join(d, e.name)))
          if (DEBRIS.test(n)) found.push(path.join(d, e.name, n));
    }
  }
  return found;
}

export function hasEntry(dir: string, prefix: string): boolean {
  return existsSync(dir) && readdirSync(dir).some((n) => n.startsWith(prefix));
}

export function tempRoot(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function removeTree(p: string): void {
  rmSync(p, { recursive: true, force: true });
}

/** The `odh: error:` lines of stderr. */
export function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('odh: error:'));
}

/**
 * `odh tar-patch` of the v2-zstddict-32k vector whose delta arrives through a FIFO in `dir`, so a
 * test can hold the run in the middle: it writes `head` bytes of the delta (default 16), waits for
 * the run's temp entry beside the output, and returns the open writer (`rest` = the remaining bytes).
 */
export async function startTarPatchOnFifo(dir: string, tmp: string, head: Buffer | number = 16) {
  const out = path.join(dir, 'out.tar');
  const fifo = path.join(dir, 'delta.fifo');
  execFileSync('mkfifo', [fifo]);
  const bytes = readFileSync(vectorPath('tardiff', 'v2-zstddict-32k', 'delta.tardiff'));
  const r = startOdh(['tar-patch', '-q', fifo, vectorPath('tardiff', 'v2-zstddict-32k', 'source'), out], {
    TMPDIR: tmp,
  });
  const w = await fs.open(fifo, 'w');
  const first = typeof head === 'number' ? bytes.subarray(0, head) : head;
  await w.write(first);
  const started = await waitFor(() => hasEntry(dir, '.odh-tmp-'), r);
  return { r, w, out, started, rest: typeof head === 'number' ? bytes.subarray(head) : bytes };
}
