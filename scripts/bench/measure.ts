import { execFile, spawn } from 'node:child_process';

/** Wall-clock seconds of an async function. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  const t0 = process.hrtime.bigint();
  const value = await fn();
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, value };
}

/** Best of `runs` timings (page cache warm after the first). */
export async function best(runs: number, fn: () => Promise<unknown>): Promise<number> {
  let min = Infinity;
  for (let i = 0; i < runs; i++) min = Math.min(min, (await timed(fn)).seconds);
  return min;
}

/**
 * This process's environment without NODE_EXTRA_CA_CERTS, or null when it is not set. Node 20 loads
 * that certificate file at every start-up, before any of odh's code runs (0.03–0.05 s measured here),
 * so the benches that include start-up also time odh without it, for a reader to tell the two apart.
 */
export function envWithoutExtraCaCerts(): NodeJS.ProcessEnv | null {
  if (process.env.NODE_EXTRA_CA_CERTS === undefined) return null;
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

/** How the benches name that variant in their lines. */
export const WITHOUT_EXTRA_CA_CERTS =
  'with NODE_EXTRA_CA_CERTS unset (set here; Node 20 loads that file at every start-up)';

export interface ShellRun {
  seconds: number;
  /** Peak resident set size of the command, in KiB (GNU time %M). */
  maxRssKiB: number;
  stdout: string;
}

/** Runs a shell command under /usr/bin/time to get its peak RSS; throws on a non-zero exit. */
export function sh(command: string): Promise<ShellRun> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', '%M', 'sh', '-c', command], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const lines = err.trim().split('\n');
      const rss = Number(lines[lines.length - 1]);
      if (code !== 0) reject(new Error(`bench command failed (${code}): ${command}\n${err}`));
      else resolve({ seconds, maxRssKiB: rss, stdout: out });
    });
  });
}

export async function bestSh(runs: number, command: string): Promise<ShellRun> {
  let bestRun: ShellRun | null = null;
  for (let i = 0; i < runs; i++) {
    const r = await sh(command);
    if (!bestRun || r.seconds < bestRun.seconds) bestRun = r;
  }
  return bestRun!;
}

export function mib(bytes: number): string {
  return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
}

export function rate(bytes: number, seconds: number): string {
  return `${(bytes / (1 << 20) / seconds).toFixed(0)} MiB/s`;
}

/** One result line: figure, floor, ratio and the goal, all measured in this run. */
export function report(name: string, ours: number, floor: number, goal: number, unit = 's'): void {
  const ratio = floor / ours;
  const verdict = ratio >= goal ? 'meets' : 'BELOW';
  process.stdout.write(
    `${name}: ours ${ours.toFixed(3)} ${unit}, floor ${floor.toFixed(3)} ${unit}, ratio ${(ratio * 100).toFixed(0)}% ` +
      `(goal ≥ ${(goal * 100).toFixed(0)}%: ${verdict})\n`,
  );
}

/** One command's wall and CPU seconds and peak RSS, from GNU time (the machine may be shared). */
export interface CmdStats {
  wall: number;
  cpu: number;
  rssMiB: number;
}

/** Runs `cmd args` under GNU time (in `env` when given); throws on a non-zero exit. */
export function timedCmd(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<CmdStats> {
  return new Promise((resolve, reject) => {
    execFile(
      '/usr/bin/time',
      ['-f', 'ODHTIME %e %U %S %M', cmd, ...args],
      { maxBuffer: 64 << 20, encoding: 'buffer', ...(env ? { env } : {}) },
      (err, _out, errBuf) => {
        const text = errBuf.toString();
        const m = /ODHTIME ([0-9.]+) ([0-9.]+) ([0-9.]+) ([0-9]+)/.exec(text);
        if (err || !m) {
          reject(new Error(`bench command failed: ${cmd} ${args.join(' ')}\n${text}`));
          return;
        }
        resolve({ wall: Number(m[1]), cpu: Number(m[2]) + Number(m[3]), rssMiB: Number(m[4]) / 1024 });
      },
    );
  });
}

/** Best (least) wall and CPU, largest RSS over runs. */
function bestOf(runs: CmdStats[]): CmdStats {
  return {
    wall: Math.min(...runs.map((r) => r.wall)),
    cpu: Math.min(...runs.map((r) => r.cpu)),
    rssMiB: Math.max(...runs.map((r) => r.rssMiB)),
  };
}

/** Runs each command once a round, in turn (A B C A B C …: all see the same machine load); the best of each. */
export async function interleaved(rounds: number, cmds: (() => Promise<CmdStats>)[]): Promise<CmdStats[]> {
  const runs = cmds.map((): CmdStats[] => []);
  for (let i = 0; i < rounds; i++) {
    for (const [k, cmd] of cmds.entries()) runs[k]?.push(await cmd());
  }
  return runs.map(bestOf);
}
