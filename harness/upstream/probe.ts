import { promises as fs, constants as fsc } from 'node:fs';
import { lastLine, runChild, type ChildRun } from './child.js';
import type { UpstreamCapabilities } from './types.js';

/** What a capability probe found out about one binary. */
export type ProbeResult =
  | { ok: true; version: string; capabilities: UpstreamCapabilities; versionOutput: string }
  | { ok: false; reason: string };

export interface ProbeOptions {
  /** Per invocation (the binary is run twice). Default 15 s. */
  timeoutMs?: number;
}

/**
 * The version in `oci-delta --version` output. Cobra prints `oci-delta version 0.6.0`; builds from
 * git may print `v0.6.0-3-gabc`, RPMs `0.6.0-1.fc44`: take the first dotted number group and keep
 * any pre-release/build suffix that directly follows it. Null when there is no such number.
 */
export function parseVersionOutput(text: string): string | null {
  const m = /(?:^|[^\w.])v?(\d+\.\d+(?:\.\d+)?(?:[-+][0-9A-Za-z.-]+)?)/m.exec(text);
  return m?.[1] ?? null;
}

/** spec oci-delta §6: `--binary-diff` exists from 0.6.0 on; composefs-rs gates on its presence in `create --help`. */
export function helpMentionsBinaryDiff(text: string): boolean {
  return /(^|[\s,])--binary-diff\b/m.test(text);
}

function describeFailure(what: string, r: ChildRun, timeoutMs: number): string {
  if (r.spawnError) return `${what}: cannot execute (${r.spawnError})`;
  if (r.timedOut) return `${what}: no answer within ${timeoutMs / 1000} s`;
  if (r.signal) return `${what}: killed by ${r.signal}`;
  const tail = lastLine(r.stderr) || lastLine(r.stdout);
  return `${what}: exit status ${r.exitCode}${tail ? ` (${tail})` : ''}`;
}

/**
 * Probes a binary: `--version` (must exit 0), then `create --help` (must exit 0; its text decides
 * `binaryDiff`). Anything that is not a runnable program gives `{ ok: false, reason }`, never a throw.
 */
export async function probeBinary(bin: string, opts: ProbeOptions = {}): Promise<ProbeResult> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const st = await fs.stat(bin).catch(() => null);
  if (!st) return { ok: false, reason: `${bin}: no such file` };
  if (!st.isFile()) return { ok: false, reason: `${bin}: not a regular file` };
  const exec = await fs.access(bin, fsc.X_OK).then(
    () => true,
    () => false,
  );
  if (!exec) return { ok: false, reason: `${bin}: not executable` };

  const v = await runChild(bin, ['--version'], { timeoutMs });
  if (v.spawnError || v.timedOut || v.signal || v.exitCode !== 0) {
    return { ok: false, reason: describeFailure(`${bin} --version`, v, timeoutMs) };
  }
  const versionOutput = `${v.stdout}${v.stderr}`.trim();
  const version = parseVersionOutput(versionOutput) ?? (lastLine(versionOutput).slice(0, 80) || 'unknown');

  const h = await runChild(bin, ['create', '--help'], { timeoutMs });
  if (h.spawnError || h.timedOut || h.signal || h.exitCode !== 0) {
    return { ok: false, reason: describeFailure(`${bin} create --help`, h, timeoutMs) };
  }
  return {
    ok: true,
    version,
    versionOutput,
    capabilities: { binaryDiff: helpMentionsBinaryDiff(`${h.stdout}\n${h.stderr}`) },
  };
}
