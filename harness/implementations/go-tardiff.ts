/**
 * The Go containers/tar-diff 0.1.2 tools in the matrix (oracles built by `npm run oracles`):
 *
 * - creator `go-tardiff`: our code assembles the delta artifact (same reuse-by-diff_id and
 *   keep-original-unless-smaller rules, spec oci-delta §5.1), but each changed layer's tar-diff is
 *   written by the Go `tar-diff` from ONE old tar: the old image's merged-rootfs sources (see
 *   merged-tar.ts for why). v0.1.2 writes tardf1 only (bsdiff + copies).
 * - applier `go-tarpatch`: our code parses the artifact and does the diff_id check, compression and
 *   `--complete`; each tar-diff layer is rebuilt by the Go `tar-patch` against the old image's
 *   extracted merged rootfs (spec §3.2 `--directory`). It reads tardf1 only.
 */
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { applyDelta, type TarPatcher } from '../../src/delta/apply.js';
import { createDelta, type TarDiffWriter } from '../../src/delta/create.js';
import { compressStream, decompressStream } from '../../src/oci/compression.js';
import { inspectTarDiff } from '../../src/tardiff/inspect.js';
import { OdhError } from '../../src/util/errors.js';
import { findOracle } from '../oracles.js';
import { lastLine, runChild } from '../upstream/child.js';
import { extractOldRootfs, outputImageIn } from './applier-io.js';
import { writeMergedSourcesTar } from './merged-tar.js';
import { secondsSince, type Availability, type DeltaApplier, type DeltaCreator } from './types.js';
import { runTempDir } from '../../src/util/run.js';

const TIMEOUT_MS = 30 * 60_000;

/** The skip reason of tardf2 cells for `go-tarpatch` (never a pass). */
export const TARDF2_UNREADABLE = 'tar-patch 0.1.2 reads tardf1 only';

function oracleAvailability(name: 'tar-diff' | 'tar-patch'): Availability {
  const o = findOracle(name);
  return o.available ? { ok: true, version: o.version, path: o.path } : { ok: false, reason: o.reason };
}

function binary(name: 'tar-diff' | 'tar-patch'): string {
  const o = findOracle(name);
  if (!o.available) throw new OdhError('UNAVAILABLE', o.reason);
  return o.path;
}

/**
 * Test-only fault: inverts the last byte of the decompressed op stream of a tar-diff file (the end
 * of the tar's trailing zero blocks in practice) and recompresses it, so the artifact stays
 * well-formed and digest-consistent but rebuilds a different tar.
 */
export async function flipLastOpByte(file: string): Promise<void> {
  const raw = await fs.readFile(file);
  const magic = raw.subarray(0, 8);
  const chunks: Buffer[] = [];
  await pipeline(Readable.from([raw.subarray(8)]), decompressStream('zstd'), async function* (src) {
    for await (const c of src as AsyncIterable<Buffer>) chunks.push(c);
    yield* [];
  });
  const ops = Buffer.concat(chunks);
  if (ops.length === 0) throw new OdhError('USAGE', 'flip-byte: empty tar-diff op stream', { file });
  ops[ops.length - 1]! ^= 0xff;
  const out: Buffer[] = [magic];
  await pipeline(Readable.from([ops]), compressStream('zstd'), async function* (src) {
    for await (const c of src as AsyncIterable<Buffer>) out.push(c);
    yield* [];
  });
  await fs.writeFile(file, Buffer.concat(out));
}

export interface GoCreatorOptions {
  jobs?: number;
  /** Test only: corrupt every tar-diff the Go tool writes (see flipLastOpByte). */
  fault?: 'flip-byte';
}

export function goTarDiffCreator(o: GoCreatorOptions = {}): DeltaCreator {
  return {
    name: 'go-tardiff',
    foreign: true,
    tarDiffVersions: [1],
    available: async () => oracleAvailability('tar-diff'),
    async create(oldArchive, newArchive, outDelta) {
      const bin = binary('tar-diff');
      const { dir: work, cleanup } = await runTempDir('go-tardiff');
      let peak = 0;
      const failures: string[] = [];
      try {
        const merged = path.join(work, 'old-merged-sources.tar');
        await writeMergedSourcesTar(oldArchive, merged);
        const writer: TarDiffWriter = async (job) => {
          const r = await runChild(bin, [merged, job.newLayerTar, job.out], {
            timeoutMs: TIMEOUT_MS,
            measureRss: true,
          });
          if (r.peakRssKiB) peak = Math.max(peak, r.peakRssKiB);
          if (r.spawnError || r.timedOut || r.signal || r.exitCode !== 0) {
            const why = r.spawnError ?? (r.timedOut ? 'timed out' : `exit ${r.exitCode ?? r.signal}`);
            // createDelta would store the original and warn (upstream's rule); the matrix must see it.
            failures.push(`layer ${job.where}: tar-diff ${why}: ${lastLine(r.stderr)}`);
            throw new OdhError('UPSTREAM_FAILED', failures[failures.length - 1]!);
          }
          if (o.fault === 'flip-byte') await flipLastOpByte(job.out);
          const s = await inspectTarDiff(createReadStream(job.out), { where: job.where });
          return { bytes: (await fs.stat(job.out)).size, version: s.version, ops: s.ops };
        };
        const t0 = process.hrtime.bigint();
        await createDelta({
          old: oldArchive,
          new: newArchive,
          output: outDelta,
          binaryDiff: 'copy',
          tarDiffWriter: writer,
          statistics: true,
          tempDir: work,
          ...(o.jobs !== undefined ? { jobs: o.jobs } : {}),
        });
        if (failures.length) throw new OdhError('UPSTREAM_FAILED', failures[0]!);
        return { seconds: secondsSince(t0), ...(peak ? { peakRssKiB: peak } : {}) };
      } finally {
        await cleanup();
      }
    },
  };
}

/**
 * `tar-patch FILE ROOTFS -`: the tar-diff is staged in `tempDir` (the Go tool opens a path, and
 * Node's stdio pipes are sockets that /dev/stdin cannot reopen), the tar streamed out into `sink`.
 */
export function goTarPatcher(bin: string, rootfs: string, tempDir: string): TarPatcher {
  let n = 0;
  return async (tarDiff, sink: Writable, ctx) => {
    const file = path.join(tempDir, `layer-${n++}.tar-diff`);
    await pipeline(Readable.from(tarDiff as AsyncIterable<Buffer>), createWriteStream(file));
    try {
      const child = spawn(bin, [file, rootfs, '-'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (s: string) => {
        stderr = (stderr + s).slice(-8192);
      });
      const exited = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
      await pipeline(child.stdout, sink, { end: false });
      const [code, signal] = await exited;
      if (code !== 0) {
        throw new OdhError(
          'UPSTREAM_FAILED',
          `tar-patch ${code === null ? `killed by ${signal}` : `exit ${code}`}: ${lastLine(stderr)}`,
          ctx,
        );
      }
    } finally {
      await fs.rm(file, { force: true });
    }
  };
}

export function goTarPatchApplier(o: { jobs?: number } = {}): DeltaApplier {
  return {
    name: 'go-tarpatch',
    foreign: true,
    unreadableReason: TARDF2_UNREADABLE,
    readsTarDiff: (v) => v === 1,
    available: async () => oracleAvailability('tar-patch'),
    async apply(delta, oldArchive, outDir, workDir) {
      const bin = binary('tar-patch');
      const outputImage = outputImageIn(outDir);
      const rootfs = await extractOldRootfs(oldArchive, workDir);
      const t0 = process.hrtime.bigint();
      await applyDelta({
        delta,
        source: { kind: 'image', ref: oldArchive },
        output: outputImage,
        complete: true,
        tarPatcher: goTarPatcher(bin, rootfs, workDir),
        ...(o.jobs !== undefined ? { jobs: o.jobs } : {}),
      });
      return { outputImage, seconds: secondsSince(t0) };
    },
  };
}
