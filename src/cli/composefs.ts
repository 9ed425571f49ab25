import { closeSync, createReadStream, createWriteStream, openSync, promises as fs, writeSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { Option, type Command } from 'commander';
import { Core, type CoreV1Options } from '../composefs/format/core.js';
import type { Inode } from '../composefs/format/tree.js';
import { FsVerityHasher, fsverityDigest, type FsVerityAlgorithm } from '../composefs/format/fsverity.js';
import {
  COMPOSEFS_RS_RELEASE,
  defaultXattrPolicy,
  DEFAULT_FORMAT,
  DEFAULT_HASH,
  type ComposefsFormat,
  type ComposefsImageOptions,
} from '../composefs/oci/image-id.js';
import type { OciXattrPolicy } from '../composefs/oci/merge.js';
import { AtomicOutput } from '../util/atomic.js';
import { registryFlags, REGISTRY_TIMEOUT_HELP } from './registry-flags.js';
import { OdhError } from '../util/errors.js';
import { createProgress } from '../util/progress.js';
import { runSignal } from '../util/run.js';
import { parseJobs } from './jobs.js';

export interface MkfsOptions {
  format: ComposefsFormat;
  minVersion?: number;
  maxVersion?: number;
  /** fs-verity algorithm of --print-digest and of the writer's metacopy (default: the digests' length). */
  hash?: FsVerityAlgorithm;
  /**
   * V1 only: C `CFS_PARSE_STRICT=1` rules. Default false, as `mkcomposefs --from-file` parses
   * (spec composefs-v1 §4.1: strictness is an environment opt-in in C).
   */
  strict?: boolean;
}

/**
 * `mkcomposefs --from-file` (spec composefs-v1 §3–§4) or its composefs-rs V2 counterpart: dumpfile
 * (path or `-` for stdin) → EROFS image bytes. V1 parses with C rules, V2 with composefs-rs rules.
 */
export async function mkfsFromDumpfile(input: string, opts: MkfsOptions): Promise<Buffer> {
  return writeImage(await parseForMkfs(input, opts), opts);
}

/** V1: the tree inside a compiled core (format/core.ts), which parses and writes it. */
type ParsedDumpfile = { format: 'v1'; core: Core; tree: number } | { format: 'v2'; tree: Inode };

/** The dumpfile as the writer of its format reads it: V1 with C rules (flat), V2 with composefs-rs rules. */
async function parseForMkfs(input: string, opts: MkfsOptions): Promise<ParsedDumpfile> {
  const file = input === '-' ? 'stdin' : input;
  if (opts.format === 'v1') {
    const core = new Core();
    // C reads 32-byte digests only; SHA-512 images (composefs-rs V1) carry 64-byte ones.
    const options = {
      strict: opts.strict ?? false,
      digestBytes: opts.hash === 'sha512' ? 64 : 32,
      file,
    } as const;
    const regular = input === '-' ? undefined : await openRegular(input);
    if (regular === undefined)
      return { format: 'v1', core, tree: await core.parseDumpfile(await openStream(input), options) };
    try {
      return {
        format: 'v1',
        core,
        tree: core.parseFile(regular.fd, { ...options, sizeHint: (await regular.stat()).size }),
      };
    } finally {
      await regular.close();
    }
  }
  // Loaded on use: `mkfs` of a V1 image (the common case) does not need the V2 parser and writer.
  const { parseDumpfile } = await import('../composefs/dumpfile/parse.js');
  return {
    format: 'v2',
    tree: await parseDumpfile(await openStream(input), { rules: 'composefs-rs', file }),
  };
}

/** stdin or openInput's stream. */
async function openStream(input: string): Promise<AsyncIterable<Buffer>> {
  return (input === '-' ? process.stdin : await openInput(input)) as AsyncIterable<Buffer>;
}

/** The input opened when it is a regular file (read straight into the core), else undefined. */
async function openRegular(input: string): Promise<fs.FileHandle | undefined> {
  const st = await fs.stat(input).catch(() => null);
  if (!st?.isFile()) return undefined;
  return fs.open(input, 'r');
}

/** The image bytes in memory (stdout output or digest only; a V1 file output streams instead). */
async function writeImage(parsed: ParsedDumpfile, opts: MkfsOptions): Promise<Buffer> {
  if (parsed.format === 'v1') return parsed.core.imageV1(parsed.tree, v1Options(opts));
  const { writeErofs } = await import('../composefs/format/erofs/write.js');
  return writeErofs(parsed.tree, { format: 'v2', hash: opts.hash });
}

function v1Options(opts: MkfsOptions): CoreV1Options {
  return { minVersion: opts.minVersion, maxVersion: opts.maxVersion, hash: opts.hash };
}

/**
 * V1 to a file: the image streams from the emitter to the reserved temp file (and to the digest),
 * never whole in memory; committed at the end. Returns the image's fs-verity digest when asked.
 */
async function streamV1Image(
  parsed: Extract<ParsedDumpfile, { format: 'v1' }>,
  opts: MkfsOptions,
  atomic: AtomicOutput,
  digest: FsVerityAlgorithm | undefined,
): Promise<{ bytes: number; digest: Buffer | undefined }> {
  const hasher = digest === undefined ? undefined : new FsVerityHasher(digest);
  let fd: number | undefined;
  let bytes = 0;
  try {
    fd = openSync(atomic.tempPath, 'w');
    const out = fd;
    parsed.core.writeV1(parsed.tree, v1Options(opts), (chunk) => {
      writeAllSync(out, chunk);
      hasher?.update(chunk);
      bytes += chunk.length;
    });
    closeSync(fd);
    fd = undefined;
    await atomic.commit();
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    await atomic.abort();
    if (e instanceof OdhError) throw e;
    throw new OdhError(
      'IO',
      `cannot write the image: ${(e as Error).message}`,
      { file: atomic.finalPath },
      { cause: e },
    );
  }
  return { bytes, digest: hasher?.digest() };
}

function writeAllSync(fd: number, chunk: Buffer): void {
  for (let off = 0; off < chunk.length;) off += writeSync(fd, chunk, off);
}

/**
 * A regular file, or a stream-like file (pipe, `/dev/fd/N`, character device) read front to back.
 * `/dev/fd/N` naming a socket (what a parent process's stdio pipes are) cannot be open(2)ed
 * (ENXIO), so that one is read through the inherited descriptor itself, as C's fopen would not.
 */
async function openInput(file: string): Promise<NodeJS.ReadableStream> {
  const fdMatch = /^\/(?:dev|proc\/self)\/fd\/([0-9]+)$/.exec(file);
  if (fdMatch) {
    const fd = Number(fdMatch[1]);
    const st = await fs.stat(file).catch(() => null);
    if (st?.isSocket()) return createReadStream('', { fd, highWaterMark: 1 << 20 });
  }
  const st = await fs.stat(file).catch(() => null);
  if (st === null) throw new OdhError('NOT_FOUND', 'input file not found', { file });
  if (st.isDirectory()) throw new OdhError('USAGE', 'input is a directory, not a dumpfile', { file });
  if (!st.isFile() && !st.isFIFO() && !st.isCharacterDevice() && !st.isSocket()) {
    throw new OdhError('USAGE', 'input is not a file or a pipe', { file });
  }
  return createReadStream(file, { highWaterMark: 1 << 20 });
}

/**
 * Writes bytes to `out` (`-` = stdout, refused on a terminal) or atomically to a file. A file output
 * is reserved before the work (`reserveOutput`) so an existing one fails first; pass it as `atomic`.
 */
export async function writeOutput(
  out: string,
  bytes: Buffer | string,
  what: string,
  atomic?: AtomicOutput,
): Promise<void> {
  if (out === '-') {
    if (process.stdout.isTTY && typeof bytes !== 'string') {
      throw new OdhError('USAGE', `refusing to write the ${what} to a terminal`);
    }
    await new Promise<void>((resolve, reject) =>
      process.stdout.write(bytes, (e) => (e ? reject(e) : resolve())),
    );
    return;
  }
  atomic ??= await AtomicOutput.create(out);
  const stream = createWriteStream(atomic.tempPath, { flags: 'w' });
  try {
    stream.end(bytes);
    await finished(stream);
    await atomic.commit();
  } catch (e) {
    await discard(stream);
    await atomic.abort();
    if (e instanceof OdhError) throw e;
    throw new OdhError(
      'IO',
      `cannot write the ${what}: ${(e as Error).message}`,
      { file: out },
      { cause: e },
    );
  }
}

/**
 * Claims a file output before the work: EXISTS now rather than after the build (unless `force`),
 * and its temp entry exists from here on (what a concurrent writer of the same path races with).
 */
export async function reserveOutput(out: string, force: boolean): Promise<AtomicOutput> {
  const atomic = await AtomicOutput.create(out, { overwrite: force });
  try {
    await fs.writeFile(atomic.tempPath, '', { flag: 'wx' });
  } catch (e) {
    await atomic.abort();
    throw new OdhError('IO', `cannot create the output: ${(e as Error).message}`, { file: out });
  }
  return atomic;
}

/** Images are metadata only; a larger file is not a composefs image we can hold in memory. */
const MAX_IMAGE_BYTES = 1 << 30;

/** `composefs-info dump`: the dumpfile of an image (C rules for V1 images, composefs-rs for V2). */
export async function dumpErofsImage(file: string, write: (piece: Buffer) => Promise<void>): Promise<void> {
  const st = await fs.stat(file).catch(() => null);
  if (!st?.isFile()) throw new OdhError('NOT_FOUND', 'image file not found', { file });
  if (st.size > MAX_IMAGE_BYTES) {
    throw new OdhError('LIMIT', `image is ${st.size} bytes, more than the ${MAX_IMAGE_BYTES} accepted`, {
      file,
    });
  }
  const [{ readErofs }, { writeDumpfile }] = await Promise.all([
    import('../composefs/format/erofs/reader.js'),
    import('../composefs/dumpfile/print.js'),
  ]);
  const { root, rules } = readErofs(await fs.readFile(file), { file });
  await writeDumpfile(root, { format: rules === 'composefs-rs' ? 'composefs-rs' : 'composefs-info' }, write);
}

/** Writes to stdout, waiting when it is full (a pipe to a slow reader must not fill memory). */
function writeStdout(piece: Buffer): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (process.stdout.write(piece, (e) => (e ? reject(e) : undefined))) resolve();
    else process.stdout.once('drain', resolve);
  });
}

async function discard(out: Writable): Promise<void> {
  out.destroy();
  await finished(out).catch(() => {});
}

function versionNumber(v: string): number {
  // spec composefs-v1 §3.1: decimal, trailing garbage is an error.
  if (!/^[0-9]+$/.test(v))
    throw new OdhError('USAGE', `invalid version ${JSON.stringify(v)}: expected 0 or 1`);
  return Number(v);
}

const formatOption = (dflt: ComposefsFormat | undefined, text: string) => {
  const o = new Option('--format <format>', text).choices(['v1', 'v2']);
  return dflt ? o.default(dflt) : o;
};
const hashOption = (dflt: FsVerityAlgorithm | undefined, text: string) => {
  const o = new Option('--hash <alg>', text).choices(['sha256', 'sha512']);
  return dflt ? o.default(dflt) : o;
};
const xattrsOption = () =>
  new Option(
    '--xattrs <policy>',
    `xattrs kept from the layers, for either format: capability (composefs-rs ${COMPOSEFS_RS_RELEASE} ` +
      'allowlist-only, the default), capability+user (its keep-user-xattrs) or all ' +
      '(composefs-rs ≤0.7.0, the V2 spec snapshot)',
  ).choices(['all', 'capability', 'capability+user']);

const REF_HELP =
  'an OCI image: oci:DIR[:NAME|:@N], oci-archive:FILE[:NAME|:@N] (a bare path is an oci-archive) ' +
  'or docker://HOST/REPO[:TAG|@DIGEST]';
const SCOPE_HELP =
  '\nOnly the plain (non-bootable) image: the --bootable variant of cfsctl ' +
  '(/boot and /sysroot emptied, SELinux relabelling) is out of scope.';

/** What an OCI-image subcommand (id, dumpfile) says of itself; the options they share are added here. */
interface OciImageCommandText {
  name: string;
  summary: string;
  description: string;
  formatHelp: string;
  hashHelp: string;
}

function ociImageCommand(cfs: Command, t: OciImageCommandText): Command {
  return cfs
    .command(t.name)
    .summary(t.summary)
    .description(t.description + SCOPE_HELP)
    .argument('<image-ref>', REF_HELP)
    .addOption(formatOption(DEFAULT_FORMAT, t.formatHelp))
    .addOption(hashOption(DEFAULT_HASH, t.hashHelp))
    .addOption(xattrsOption())
    .option('--tls-verify <BOOL>', 'false: plain HTTP to the registry (loopback registries default to it)')
    .option('--timeout <SECONDS>', REGISTRY_TIMEOUT_HELP)
    .option('--jobs <N>', JOBS_HELP)
    .option('-q, --quiet', 'no progress on stderr');
}

interface OciCommandOptions {
  format: ComposefsFormat;
  hash: FsVerityAlgorithm;
  xattrs?: OciXattrPolicy;
  quiet?: boolean;
  tlsVerify?: string;
  timeout?: string;
  jobs?: string;
}

const JOBS_HELP =
  'layer worker threads (absent: one per core when two or more layers are ≥ 32 MiB compressed; ' +
  '0: CPU count; 1: one thread)';

type ImageIdModule = typeof import('../composefs/oci/image-id.js');

/**
 * Runs `build` (an image ID or a tree) with what `id` and `dumpfile` share: registry flags, progress,
 * the run's signal and the layer workers.
 */
async function withOciImage<T>(
  o: OciCommandOptions,
  build: (m: ImageIdModule, opts: ComposefsImageOptions) => Promise<T>,
): Promise<T> {
  // Loaded here, not at start-up: `mkfs` and `dumpfile` never touch registries (start-up counts in
  // every `odh composefs mkfs` timing).
  const [{ setRegistryDefaults }, m] = await Promise.all([
    import('../oci/registry/reader.js'),
    import('../composefs/oci/image-id.js'),
  ]);
  setRegistryDefaults(registryFlags(o));
  const progress = createProgress({ quiet: o.quiet });
  try {
    return await build(m, {
      format: o.format,
      hash: o.hash,
      xattrs: o.xattrs ?? defaultXattrPolicy(o.format),
      progress,
      signal: runSignal(),
      // Absent: the automatic choice (workers only for large layers); given: forced.
      ...(o.jobs !== undefined ? { workers: parseJobs(o.jobs) } : {}),
    });
  } finally {
    progress.done();
  }
}

/** Registers `odh composefs` and its subcommands. */
export function register(program: Command): void {
  // Usage errors stay one line (spec of the CLI contract): no help dump after them.
  const cfs = program
    .command('composefs')
    .showHelpAfterError(false)
    .description('composefs EROFS images: build from dumpfiles or OCI images, dump, compute image IDs');

  cfs
    .command('mkfs')
    .summary('build a composefs image from a dumpfile (mkcomposefs --from-file)')
    .description('build a composefs image from a dumpfile, like mkcomposefs --from-file')
    .requiredOption(
      '--from-file <dumpfile>',
      'the dumpfile to read: a file, a pipe (/dev/fd/N) or - for stdin',
    )
    .argument('[output]', 'the image to write, - for stdout (not with --print-digest-only)')
    .addOption(formatOption('v1', 'v1: C mkcomposefs 1.0.8 format and dumpfile rules; v2: composefs-rs V2'))
    .option('--min-version <n>', 'v1: minimum composefs version (0 or 1)', versionNumber)
    .option('--max-version <n>', 'v1: maximum composefs version (0 or 1)', versionNumber)
    .addOption(
      hashOption(
        undefined,
        'fs-verity algorithm of the printed digest (default sha256); when given, also checked against the ' +
          'dumpfile digests (sha512: DIGEST fields of 128 hex digits, as composefs-rs V1 SHA-512 images carry)',
      ),
    )
    .option('--print-digest', 'print the fs-verity digest of the image on stdout')
    .option('--print-digest-only', 'print the digest and write no image')
    .option(
      '--strict',
      'v1: also apply the C CFS_PARSE_STRICT=1 checks (default: lenient, as mkcomposefs --from-file parses)',
    )
    .option('-f, --force', 'replace an existing output file')
    .option('--json', 'print the result (output, format, size, digest when asked) as one JSON object')
    .action(async (output: string | undefined, o) => {
      if (o.format === 'v2' && (o.minVersion !== undefined || o.maxVersion !== undefined)) {
        throw new OdhError('USAGE', '--min-version/--max-version apply to --format v1 only');
      }
      if (!o.printDigestOnly && output === undefined)
        throw new OdhError('USAGE', 'missing output image path');
      if ((o.printDigest || o.json) && output === '-') {
        const flag = o.json ? '--json' : '--print-digest';
        throw new OdhError('USAGE', `${flag} cannot share stdout with the image (use a file output)`);
      }
      const fileOut = !o.printDigestOnly && output !== '-';
      const atomic = fileOut ? await reserveOutput(output!, o.force === true) : undefined;
      const mkfs: MkfsOptions = {
        format: o.format,
        minVersion: o.minVersion,
        maxVersion: o.maxVersion,
        hash: o.hash,
        strict: o.strict === true,
      };
      const printDigest = o.printDigest === true || o.printDigestOnly === true;
      const digestAlg: FsVerityAlgorithm = o.hash ?? 'sha256';
      let parsed: ParsedDumpfile;
      try {
        parsed = await parseForMkfs(o.fromFile, mkfs);
      } catch (e) {
        await atomic?.abort();
        throw e;
      }
      let digest: Buffer | undefined;
      let bytes: number;
      if (parsed.format === 'v1' && atomic !== undefined) {
        ({ bytes, digest } = await streamV1Image(parsed, mkfs, atomic, printDigest ? digestAlg : undefined));
      } else {
        let image: Buffer;
        try {
          image = await writeImage(parsed, mkfs);
        } catch (e) {
          await atomic?.abort();
          throw e;
        }
        bytes = image.length;
        if (!o.printDigestOnly) await writeOutput(output!, image, 'image', atomic);
        if (printDigest) digest = fsverityDigest(image, digestAlg);
      }
      const hex = digest?.toString('hex');
      if (o.json) {
        const written = o.printDigestOnly ? null : output!;
        const result = {
          output: written,
          format: parsed.format,
          bytes,
          ...(hex ? { digest: hex, digestAlgorithm: digestAlg } : {}),
        };
        process.stdout.write(`${JSON.stringify(result)}\n`);
      } else if (hex !== undefined) process.stdout.write(`${hex}\n`);
    });

  cfs
    .command('dump')
    .summary('print the dumpfile of a composefs image (composefs-info dump)')
    .description('print the dumpfile of a composefs image, like composefs-info dump')
    .argument('<image>', 'the composefs EROFS image')
    .action(async (image: string) => {
      await dumpErofsImage(image, writeStdout);
    });

  ociImageCommand(cfs, {
    name: 'id',
    summary: 'composefs image ID of an OCI image (cfsctl oci compute-id)',
    description:
      'compute the composefs image ID of an OCI image, like cfsctl oci compute-id. Defaults are those of ' +
      `cfsctl ${COMPOSEFS_RS_RELEASE} for a new repository: V1 format and SHA-512 (spec composefs-v1 §14.2), ` +
      'xattrs filtered to security.capability for both formats.',
    formatHelp: 'EROFS format: v1 (composefs-rs ≥0.8 default) or v2 (legacy)',
    hashHelp: 'repository fs-verity algorithm (object IDs and image ID)',
  })
    .option('--json', 'print the ID and the settings that made it as one JSON object')
    .action(async (ref: string, o: OciCommandOptions & { json?: boolean }) => {
      const id = await withOciImage(o, (m, opts) => m.composefsImageId(ref, opts));
      const settings = { format: o.format, hash: o.hash, xattrs: o.xattrs ?? defaultXattrPolicy(o.format) };
      const json = { image: ref, imageId: id, ...settings };
      process.stdout.write(o.json ? `${JSON.stringify(json)}\n` : `${id}\n`);
    });

  ociImageCommand(cfs, {
    name: 'dumpfile',
    summary: 'the composefs tree of an OCI image as a dumpfile',
    description:
      `print the composefs tree of an OCI image as a dumpfile, as cfsctl ${COMPOSEFS_RS_RELEASE} ` +
      'create-dumpfile writes it (mtime with nanoseconds).',
    formatHelp: 'EROFS format the tree is for (the tree itself is the same for both)',
    hashHelp: 'fs-verity algorithm of the external file digests',
  }).action(async (ref: string, o: OciCommandOptions) => {
    const tree = await withOciImage(o, (m, opts) => m.composefsTree(ref, opts));
    // cfsctl create-dumpfile prints composefs-rs `write_dumpfile` lines (spec composefs-v2 §7).
    const { printDumpfile } = await import('../composefs/dumpfile/print.js');
    process.stdout.write(printDumpfile(tree, { format: 'composefs-rs' }));
  });
}
