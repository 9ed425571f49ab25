import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runTempDir } from '../../src/util/run.js';

/**
 * Runs one external program with captured (bounded) output, a hard timeout and, when asked, its
 * peak RSS. Never throws: spawn failures come back in `spawnError` so callers turn them into an
 * "unavailable" status or a typed error with their own wording.
 */
export interface ChildRun {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  seconds: number;
  timedOut: boolean;
  peakRssKiB?: number;
  /** errno-style reason when the program could not be started (ENOENT, EACCES, ENOEXEC, …). */
  spawnError?: string;
}

export interface ChildOptions {
  timeoutMs: number;
  /** Measure peak RSS (GNU time `-f %M` when /usr/bin/time exists, else /proc VmHWM polling). */
  measureRss?: boolean;
  /** Force one measuring method (tests); default GNU time when present. */
  rssVia?: 'time' | 'proc';
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

/** Only the tail of each stream is kept: error reports need the last lines, not megabytes of log. */
const KEEP_BYTES = 64 * 1024;

class Tail {
  private chunks: Buffer[] = [];
  private bytes = 0;
  push(b: Buffer): void {
    this.chunks.push(b);
    this.bytes += b.length;
    // Drop whole chunks from the front while the rest still holds KEEP_BYTES.
    let first = this.chunks[0];
    while (first !== undefined && this.bytes - first.length >= KEEP_BYTES) {
      this.chunks.shift();
      this.bytes -= first.length;
      first = this.chunks[0];
    }
  }
  text(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - KEEP_BYTES)).toString('utf8');
  }
}

const GNU_TIME = '/usr/bin/time';

/** VmHWM (peak RSS, KiB) of a live process from /proc; undefined when gone or not Linux. */
async function readVmHwm(pid: number): Promise<number | undefined> {
  const s = await fs.readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(s);
  return m ? Number(m[1]) : undefined;
}

/**
 * GNU time's output file: optional "Command exited with non-zero status N" / "Command terminated by
 * signal N" lines, then the `%M` value. GNU time itself exits 128+N for a signalled program, so the
 * signal is recovered from here.
 */
function parseTimeOutput(text: string): { rss?: number; signalNumber?: number } {
  const lines = text.trim().split('\n');
  const last = lines[lines.length - 1]?.trim() ?? '';
  const sig = /Command terminated by signal (\d+)/.exec(text);
  return {
    ...(/^\d+$/.test(last) ? { rss: Number(last) } : {}),
    ...(sig ? { signalNumber: Number(sig[1]) } : {}),
  };
}

function signalName(n: number): NodeJS.Signals | null {
  for (const [name, num] of Object.entries(os.constants.signals))
    if (num === n) return name as NodeJS.Signals;
  return null;
}

export async function runChild(file: string, args: string[], opts: ChildOptions): Promise<ChildRun> {
  const useTime = opts.measureRss === true && opts.rssVia !== 'proc' && existsSync(GNU_TIME);
  let timeFile: string | undefined;
  let removeTimeDir = async () => {};
  if (useTime) {
    const t = await runTempDir('time');
    timeFile = path.join(t.dir, 'rss');
    removeTimeDir = t.cleanup;
  }
  const [cmd, argv] = useTime ? [GNU_TIME, ['-f', '%M', '-o', timeFile!, file, ...args]] : [file, args];
  const started = process.hrtime.bigint();
  const out = new Tail();
  const err = new Tail();
  const result = await new Promise<ChildRun>((resolve) => {
    // Own process group, so a timeout kills the program and not only GNU time in front of it.
    const child = spawn(cmd, argv, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let timedOut = false;
    let hwm: number | undefined;
    let poll: NodeJS.Timeout | undefined;
    if (opts.measureRss && !useTime && child.pid !== undefined) {
      const pid = child.pid;
      poll = setInterval(() => {
        // Fire-and-forget is safe: a late sample only raises `hwm`, and a failed read (the process already
        // gone) just misses one sample; readVmHwm maps read errors to undefined, the handler is a guard.
        void readVmHwm(pid).then(
          (v) => {
            if (v !== undefined) hwm = Math.max(hwm ?? 0, v);
          },
          () => {},
        );
      }, 50);
    }
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      }
    }, opts.timeoutMs);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const finish = (r: Omit<ChildRun, 'seconds' | 'stdout' | 'stderr' | 'timedOut'>) => {
      clearTimeout(timer);
      if (poll) clearInterval(poll);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      resolve({
        ...r,
        stdout: out.text(),
        stderr: err.text(),
        seconds,
        timedOut,
        ...(hwm ? { peakRssKiB: hwm } : {}),
      });
    };
    child.on('error', (e: NodeJS.ErrnoException) => {
      finish({ exitCode: null, signal: null, spawnError: e.code ?? e.message });
    });
    child.on('close', (code, signal) => finish({ exitCode: code, signal }));
  });
  if (timeFile) {
    const t = parseTimeOutput(await fs.readFile(timeFile, 'utf8').catch(() => ''));
    if (t.rss !== undefined) result.peakRssKiB = t.rss;
    if (t.signalNumber !== undefined && result.signal === null) {
      result.signal = signalName(t.signalNumber);
      result.exitCode = null;
    }
    await removeTimeDir();
  }
  return result;
}

/** The last non-empty line of a program's stderr (what an error message quotes). */
export function lastLine(text: string): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  return lines.at(-1) ?? '';
}
