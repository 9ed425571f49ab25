import { spawn } from 'node:child_process';

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
export async function sh(command: string): Promise<ShellRun> {
  const r = await gnuTime('sh', ['-c', command], command);
  return { seconds: r.seconds, maxRssKiB: r.maxRssKiB, stdout: r.stdout };
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
export async function timedCmd(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<CmdStats> {
  const r = await gnuTime(cmd, args, `${cmd} ${args.join(' ')}`, env);
  return { wall: r.wall, cpu: r.cpu, rssMiB: r.maxRssKiB / 1024 };
}

interface GnuTimeRun {
  /** Wall seconds as this process saw them (high resolution). */
  seconds: number;
  /** GNU time's own figures: elapsed (%e), user + system CPU, peak RSS in KiB. */
  wall: number;
  cpu: number;
  maxRssKiB: number;
  stdout: string;
}

/** The one GNU-time runner of the benches (`sh` and `timedCmd` read what they need of it). */
function gnuTime(cmd: string, args: string[], label: string, env?: NodeJS.ProcessEnv): Promise<GnuTimeRun> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', 'ODHTIME %e %U %S %M', cmd, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(env ? { env } : {}),
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const m = /ODHTIME ([0-9.]+) ([0-9.]+) ([0-9.]+) ([0-9]+)\s*$/.exec(err);
      if (code !== 0 || !m) {
        reject(new Error(`bench command failed (${code}): ${label}\n${err}`));
        return;
      }
      const [wall, user, sys, rss] = m.slice(1).map(Number) as [number, number, number, number];
      resolve({ seconds, wall, cpu: user + sys, maxRssKiB: rss, stdout: out });
    });
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
