/**
 * composefs-rs `cfsctl` as an applier (spec composefs-v2 §5): a fresh SHA-512 repository
 * (`init --insecure`), `oci pull` of the old image, then of the delta (composefs-rs applies oci-delta
 * artifacts on pull, spec oci-delta §4.3), then `oci compute-id @<target config>`. It yields no OCI
 * image, only the V1 SHA-512 image ID, so the matrix checks that flavour alone for it.
 *
 * Every argument checked against composefs-rs v0.9.0 `crates/composefs-ctl/src/lib.rs` (the pinned
 * version CI installs): `--repo PATH` is a global option (group "repopath") and `init` without a
 * path initialises it; `init --insecure` skips fs-verity on meta.json (needed on tmpfs/overlay);
 * `init --algorithm` defaults to fsverity-sha512-12 and the repository's EROFS version to V1, which
 * is the flavour reported; `oci pull IMAGE` takes a skopeo-style reference (`oci-archive:PATH`)
 * and tags it by the reference; `oci compute-id @sha256:…` resolves `@digest` as a CONFIG digest
 * (OciReference::Digest → resolve_oci_config) and prints the bare hex image ID. There is no
 * `apply-delta` command: a delta is applied by pulling it after its source image.
 */
import path from 'node:path';
import { openManifest } from '../../src/oci/image.js';
import { OdhError } from '../../src/util/errors.js';
import { parseDeltaArtifact } from '../../src/delta/artifact.js';
import { findTool } from '../tool-path.js';
import { lastLine, runChild } from '../upstream/child.js';
import type { Availability, DeltaApplier } from './types.js';

const TIMEOUT_MS = 30 * 60_000;

/** The delta's target config digest: what compute-id is asked for after the pull. */
async function targetConfigDigest(delta: string): Promise<string> {
  const m = await openManifest(delta);
  try {
    const a = await parseDeltaArtifact(m.manifestRaw, {
      readBlob: (d) => m.reader.readBlobBytes(d, 64 << 20),
    });
    return a.targetConfigDescriptor.digest;
  } finally {
    await m.reader.close();
  }
}

export function cfsctlApplier(bin: string | undefined = findTool('cfsctl')): DeltaApplier {
  let peak = 0;
  const run = async (args: string[]): Promise<{ stdout: string; seconds: number }> => {
    const r = await runChild(bin!, args, { timeoutMs: TIMEOUT_MS, measureRss: true });
    if (r.peakRssKiB) peak = Math.max(peak, r.peakRssKiB);
    if (r.spawnError || r.timedOut || r.signal || r.exitCode !== 0) {
      const why =
        r.spawnError ??
        (r.timedOut ? 'timed out' : r.signal ? `killed by ${r.signal}` : `exit ${r.exitCode}`);
      throw new OdhError(
        'UPSTREAM_FAILED',
        `cfsctl ${args.slice(2).join(' ')}: ${why}: ${lastLine(r.stderr)}`,
        {
          file: bin,
        },
      );
    }
    return { stdout: r.stdout, seconds: r.seconds };
  };
  return {
    name: 'cfsctl',
    foreign: true,
    readsTarDiff: () => true,
    available: async (): Promise<Availability> =>
      bin ? { ok: true, path: bin } : { ok: false, reason: 'cfsctl not on PATH' },
    async apply(delta, oldArchive, _outDir, workDir) {
      if (!bin) throw new OdhError('UNAVAILABLE', 'cfsctl not on PATH');
      peak = 0;
      const repo = ['--repo', path.join(workDir, 'repo')];
      await run([...repo, 'init', '--insecure']);
      await run([...repo, 'oci', 'pull', `oci-archive:${oldArchive}`]);
      const pulled = await run([
        ...repo,
        'oci',
        'pull',
        delta.startsWith('oci') ? delta : `oci-archive:${delta}`,
      ]);
      const id = (
        await run([...repo, 'oci', 'compute-id', `@${await targetConfigDigest(delta)}`])
      ).stdout.trim();
      return {
        composefsIds: { 'v1-sha512': id },
        seconds: pulled.seconds,
        ...(peak ? { peakRssKiB: peak } : {}),
      };
    },
  };
}
