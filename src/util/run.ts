import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { appendFileSync, mkdirSync, promises as fs, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OdhError } from './errors.js';

/**
 * One run of odh: its cancellation signal, its temp space, and the sweep of what dead runs left.
 *
 * Every temp entry a run makes carries its pid in the name (`$TMPDIR/odh-<pid>-<hex>` for the run's
 * own directory, `.odh-tmp-<pid>-…` beside an output, `.build-<pid>-…` in the fixture cache), and
 * entries outside `$TMPDIR` are written to a journal inside the run directory *before* they are
 * created. A run killed with -9 therefore leaves only names that a later run can attribute: it
 * sweeps entries whose pid is no longer alive, following the journals to the output directories.
 */

const RUN_DIR_RE = /^odh-([0-9]+)-[0-9a-f]{8}$/;
const JOURNAL = 'journal';

/** `.odh-tmp-<pid>-` (beside outputs) and `.build-<pid>-` (fixture cache): names we may sweep. */
const PID_ENTRY_RE = /^\.(?:odh-tmp|build)-([0-9]+)-/;

let runDir: string | undefined;
const tracked = new Set<string>();
let exitHookInstalled = false;

/** Where the run's private temp data lives (created on first use, removed when nothing is tracked). */
function ensureRunDir(): string {
  if (runDir === undefined) {
    const dir = path.join(os.tmpdir(), `odh-${process.pid}-${randomBytes(4).toString('hex')}`);
    mkdirSync(dir, { mode: 0o700 });
    runDir = dir;
  }
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // The safety net for every way out of the process that still runs JS (errors, process.exit).
    process.on('exit', removeTrackedSync);
  }
  return runDir;
}

/**
 * Registers `p` (absolute) as temp data of this run: journaled before the caller creates it, removed
 * at exit unless released. Returns `p`.
 */
export function trackTemp(p: string): string {
  const dir = ensureRunDir();
  if (path.dirname(p) !== dir) appendFileSync(path.join(dir, JOURNAL), `${p}\n`);
  tracked.add(p);
  return p;
}

/** Forgets `p` (moved into place or removed); `remove` deletes it first. */
export async function releaseTemp(p: string, opts: { remove?: boolean } = {}): Promise<void> {
  if (opts.remove) await fs.rm(p, { recursive: true, force: true });
  tracked.delete(p);
  if (tracked.size === 0 && runDir !== undefined) {
    const dir = runDir;
    runDir = undefined;
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** A hidden temp name beside `finalPath` (same file system, so the commit is a link or rename). */
export function tempBeside(finalPath: string, tag = path.basename(finalPath)): string {
  const abs = path.resolve(finalPath);
  const name = `.odh-tmp-${process.pid}-${tag}-${randomBytes(6).toString('hex')}`;
  return trackTemp(path.join(path.dirname(abs), name));
}

/**
 * A private temp directory of this run, `$TMPDIR/odh-<pid>-<hex>/<purpose>-<hex>` (or under
 * `parent` when a caller chose a temp dir; then named `odh-<pid>-<purpose>-<hex>`).
 */
export async function runTempDir(
  purpose: string,
  parent?: string,
): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const base = parent ?? ensureRunDir();
  const name =
    parent === undefined
      ? `${purpose}-${randomBytes(4).toString('hex')}`
      : `.odh-tmp-${process.pid}-${purpose}-${randomBytes(4).toString('hex')}`;
  const dir = trackTemp(path.join(base, name));
  try {
    await fs.mkdir(dir, { mode: 0o700 });
  } catch (e) {
    await releaseTemp(dir);
    throw new OdhError('IO', `cannot create a temp directory: ${(e as Error).message}`, { path: base });
  }
  return { dir, cleanup: () => releaseTemp(dir, { remove: true }) };
}

function removeTrackedSync(): void {
  for (const p of tracked) rmSync(p, { recursive: true, force: true });
  tracked.clear();
  if (runDir !== undefined) rmSync(runDir, { recursive: true, force: true });
  runDir = undefined;
}

/** True when `pid` names no live process (EPERM means alive but not ours). */
export function pidIsDead(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * Removes what dead runs left: their run directories in `$TMPDIR` (and every journaled entry
 * beside outputs or in the fixture cache), plus `.odh-tmp-<pid>-*` / `.build-<pid>-*` entries of
 * dead pids directly inside each of `dirs`. Never fails: a sweep is housekeeping.
 */
export async function sweepStale(dirs: string[] = []): Promise<void> {
  const tmp = os.tmpdir();
  for (const n of await fs.readdir(tmp).catch(() => [] as string[])) {
    const m = RUN_DIR_RE.exec(n);
    if (!m || !pidIsDead(Number(m[1]))) continue;
    const dir = path.join(tmp, n);
    const journal = await fs.readFile(path.join(dir, JOURNAL), 'utf8').catch(() => '');
    for (const p of journal.split('\n')) {
      // Only names this pid made: a corrupt journal must not point the sweep elsewhere.
      if (path.isAbsolute(p) && PID_ENTRY_RE.exec(path.basename(p))?.[1] === m[1]) {
        await fs.rm(p, { recursive: true, force: true }).catch(() => {});
      }
    }
    await fs.rm(dir, { recursive: true, force: true }).catch(() => {});
  }
  for (const d of dirs) {
    for (const n of await fs.readdir(d).catch(() => [] as string[])) {
      const m = PID_ENTRY_RE.exec(n);
      if (m && pidIsDead(Number(m[1])))
        await fs.rm(path.join(d, n), { recursive: true, force: true }).catch(() => {});
    }
  }
}

// ---- cancellation ----------------------------------------------------------------------------

const cancel = new AbortController();
// Many concurrent layers and fetches listen to the one signal; that is by design, not a leak.
setMaxListeners(0, cancel.signal);
/** How long a first signal may take to wind down before the run exits anyway. */
const GRACE_MS = 1500;
const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

/** The run's cancellation: aborted by the first SIGINT, SIGTERM or SIGHUP (CLI only). */
export function runSignal(): AbortSignal {
  return cancel.signal;
}

/** Throws the interruption if the run was cancelled (before committing an output). */
export function throwIfCancelled(): void {
  if (cancel.signal.aborted) throw cancel.signal.reason;
}

/**
 * The one cancellation path of the CLI: the first SIGINT/SIGTERM/SIGHUP aborts `runSignal()` (every
 * in-flight read, write and registry fetch listens to it) and the command cleans up and fails with
 * one line; if it has not ended after a short grace, or on a second signal, the run removes its
 * temp data synchronously and exits at once (128 + signal number).
 */
export function installSignalHandlers(): void {
  const onSignal = (sig: NodeJS.Signals) => {
    if (cancel.signal.aborted) exitNow(sig);
    cancel.abort(new OdhError('IO', `interrupted by ${sig}; nothing was written`));
    setTimeout(() => exitNow(sig), GRACE_MS).unref();
  };
  for (const sig of HANDLED) process.on(sig, onSignal);
}

const HANDLED = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Removes the run's temp data, then dies of `sig` itself (default action), as a shell expects.
 * Not `process.exit`: it waits for thread-pool reads, and a read of a FIFO nobody writes never ends.
 */
function exitNow(sig: NodeJS.Signals): void {
  removeTrackedSync();
  // The CLI sets an exit code once it has printed its one error line.
  if (process.exitCode === undefined) {
    process.stderr.write(`odh: error: interrupted by ${sig}; nothing was written\n`);
  }
  for (const s of HANDLED) process.removeAllListeners(s);
  process.kill(process.pid, sig);
  setTimeout(() => process.exit(128 + (SIGNAL_NUMBERS[sig] ?? 0)), 100).unref();
}
