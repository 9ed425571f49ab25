import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { Command } from 'commander';
import { DirectorySource } from '../image-source/directory.js';
import { applyTarDiff, type ApplyResult } from '../tardiff/apply.js';
import { AtomicOutput } from '../util/atomic.js';
import { OdhError } from '../util/errors.js';
import { createProgress } from '../util/progress.js';
import { runSignal } from '../util/run.js';

export interface TarPatchOptions {
  /** Replace an existing output file. */
  force?: boolean;
  quiet?: boolean;
  /** Cancels the patch (the CLI passes the run's SIGINT/SIGTERM/SIGHUP signal). */
  signal?: AbortSignal;
}

/**
 * `odh tar-patch DELTA SRCDIR OUTPUT` (upstream `tar-patch`, spec oci-delta §8.3): rebuilds the tar a
 * tar-diff describes from an extracted old root filesystem. `-` reads the delta from stdin or writes
 * the tar to stdout. A file output appears only once it is complete (temp name, then rename).
 */
export async function tarPatch(
  deltaPath: string,
  srcDir: string,
  output: string,
  opts: TarPatchOptions = {},
): Promise<ApplyResult> {
  const source = await DirectorySource.create(srcDir);
  let delta: Readable;
  let deltaSize: number | undefined;
  if (deltaPath === '-') {
    delta = process.stdin;
  } else {
    const st = await fs.stat(deltaPath).catch(() => null);
    if (!st) throw new OdhError('NOT_FOUND', 'tar-diff file not found', { path: deltaPath });
    // A FIFO is read as a stream, like `-`; anything else but a regular file is refused by name.
    if (!st.isFile() && !st.isFIFO()) {
      const what = st.isDirectory() ? 'a directory' : 'not a regular file or FIFO';
      throw new OdhError('USAGE', `tar-diff is ${what}`, { path: deltaPath });
    }
    if (st.isFile()) deltaSize = st.size;
    delta = createReadStream(deltaPath, { highWaterMark: 1 << 20 });
  }
  const progress = createProgress({ quiet: opts.quiet });
  progress.step(`tar-patch ${deltaPath === '-' ? 'stdin' : path.basename(deltaPath)}`);
  const onProgress = (p: { deltaBytesRead: number }) => progress.bytes(p.deltaBytesRead, deltaSize);
  // Both outputs, stdout and a file stream, are done with a chunk when its write callback runs.
  const applyOpts = { onProgress, where: deltaPath, sinkReleasesChunks: true };
  try {
    if (output === '-') {
      return await untilCancelled(applyTarDiff(delta, source, process.stdout, applyOpts), opts.signal);
    }
    const atomic = await AtomicOutput.create(output, { overwrite: opts.force });
    // A deep write queue lets disk writes overlap with reading and decoding.
    const out = createWriteStream(atomic.tempPath, { flags: 'wx', highWaterMark: 8 << 20 });
    try {
      const result = await untilCancelled(applyTarDiff(delta, source, out, applyOpts), opts.signal);
      out.end();
      await finished(out);
      await atomic.commit();
      return result;
    } catch (e) {
      await discard(out);
      await atomic.abort();
      throw e;
    }
  } finally {
    delta.destroy();
    progress.done();
  }
}

/**
 * `work`, or the signal's reason as soon as it aborts (the caller then destroys the streams, which
 * ends `work` too; its late rejection is dropped).
 */
async function untilCancelled<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  work.catch(() => {});
  signal.throwIfAborted();
  let onAbort!: () => void;
  const aborted = new Promise<never>((_r, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([work, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

async function discard(out: Writable): Promise<void> {
  out.destroy();
  await finished(out).catch(() => {});
}

/** Registers `odh tar-patch`. */
export function register(program: Command): void {
  program
    .command('tar-patch')
    .description('apply a tar-diff to an extracted old root filesystem and write the rebuilt tar')
    .argument('<delta>', 'tar-diff file (tardf1 or tardf2), - for stdin')
    .argument('<srcdir>', 'the old image merged root filesystem (names resolve inside it)')
    .argument('<output>', 'the rebuilt tar, - for stdout')
    .option('-f, --force', 'replace an existing output file')
    .option('-q, --quiet', 'no progress on stderr')
    .option(
      '--json',
      'print the result (output, bytes, ops applied) as one JSON object; needs an output file',
    )
    .action(
      async (delta: string, srcdir: string, output: string, opts: TarPatchOptions & { json?: boolean }) => {
        if (opts.json && output === '-') {
          throw new OdhError('USAGE', '--json cannot share stdout with the tar (use a file output)');
        }
        const r = await tarPatch(delta, srcdir, output, { ...opts, signal: runSignal() });
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ output, bytes: Number(r.bytesOut), ops: r.ops })}\n`);
        }
      },
    );
}
