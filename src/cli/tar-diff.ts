import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Option, type Command } from 'commander';
import {
  createTarDiff,
  DEFAULT_MAX_BSDIFF,
  DEFAULT_MAX_ZSTD_DICT,
  layerFile,
  type CreateTarDiffResult,
  type TarDiffMode,
} from '../tardiff/create/index.js';
import { indexOldImage } from '../tardiff/create/index.js';
import { AtomicOutput } from '../util/atomic.js';
import { OdhError } from '../util/errors.js';
import { releaseTemp, runTempDir } from '../util/run.js';
import { createProgress } from '../util/progress.js';

export interface TarDiffCliOptions {
  binaryDiff?: TarDiffMode;
  compressionLevel?: number;
  /** MiB (0 = no extra cap). */
  maxZstdDiffSize?: number;
  /** MiB (0 = no limit). */
  maxBsdiffSize?: number;
  zstdDiffLevel?: number;
  /** MiB, a power of two ≤ 512 (0 = auto). */
  zstdDiffWindow?: number;
  tmpDir?: string;
  /** Names under these prefixes are never Open names (default `sysroot/ostree/`). */
  ignoreSourcePrefix?: string[];
  force?: boolean;
  quiet?: boolean;
}

/**
 * `odh tar-diff OLD… NEW OUT` (upstream `tar-diff`, spec oci-delta §6): old tars in extraction order,
 * any of them gzip/zstd/plain (sniffed), whiteouts applied, `sysroot/ostree/` never used as a name.
 * The output appears only once complete.
 */
export async function tarDiff(
  olds: string[],
  newTar: string,
  output: string,
  opts: TarDiffCliOptions = {},
): Promise<CreateTarDiffResult> {
  for (const f of [...olds, newTar]) {
    const st = await fs.stat(f).catch(() => null);
    if (!st?.isFile()) throw new OdhError('NOT_FOUND', 'input tar not found', { file: f });
  }
  const mode = opts.binaryDiff ?? 'bsdiff';
  const progress = createProgress({ quiet: opts.quiet });
  const atomic = await AtomicOutput.create(output, { overwrite: opts.force });
  const work = (await runTempDir('tar-diff', opts.tmpDir)).dir;
  try {
    progress.step(`tar-diff: analysing ${olds.length} old tar(s)`);
    const oldIndex = await indexOldImage(olds.map(layerFile), {
      tempDir: work,
      ignorePrefixes: opts.ignoreSourcePrefix,
      layerNames: olds,
      onProgress: (p) => progress.step(`tar-diff: analysed old tar ${p.layer}/${p.layers}`),
    });
    try {
      let phase = '';
      const result = await createTarDiff({
        oldIndex,
        newLayer: newTar,
        mode,
        tempDir: work,
        out: atomic.tempPath,
        compressionLevel: opts.compressionLevel || undefined,
        maxZstdDictSize: opts.maxZstdDiffSize !== undefined ? opts.maxZstdDiffSize * 1024 * 1024 : undefined,
        maxBsdiffSize: opts.maxBsdiffSize !== undefined ? opts.maxBsdiffSize * 1024 * 1024 : undefined,
        zstdDiffLevel: opts.zstdDiffLevel,
        zstdDiffWindow: opts.zstdDiffWindow ? opts.zstdDiffWindow * 1024 * 1024 : undefined,
        where: newTar,
        onProgress: (p) => {
          if (p.phase === phase) return;
          phase = p.phase;
          progress.step(`tar-diff: ${PHASES[p.phase]} ${path.basename(newTar)}`);
        },
      });
      await atomic.commit();
      return result;
    } finally {
      await oldIndex.dispose();
    }
  } catch (e) {
    await atomic.abort();
    throw e;
  } finally {
    progress.done();
    await releaseTemp(work, { remove: true });
  }
}

const PHASES = {
  analyze: 'analysing old tars for',
  scan: 'hashing the files of',
  extract: 'extracting the old files used by',
  diff: 'writing ops for',
} as const;

function intArg(name: string, min: number, max: number) {
  return (v: string) => {
    const n = Number(v);
    if (!/^-?[0-9]+$/.test(v) || n < min || n > max) {
      throw new OdhError('USAGE', `invalid ${name} ${JSON.stringify(v)} (want an integer ${min}..${max})`);
    }
    return n;
  };
}

/** Registers `odh tar-diff`. */
export function register(program: Command): void {
  program
    .command('tar-diff')
    .description(
      'create a tar-diff rebuilding NEW from the merged contents of the OLD tars (like upstream tar-diff)',
    )
    .argument(
      '<tars...>',
      'OLD.tar [OLD2.tar …] NEW.tar OUT.tardiff (old tars in extraction order; gzip/zstd sniffed)',
    )
    .addOption(
      new Option(
        '--binary-diff <method>',
        'bsdiff (default, like upstream; tardf1), zstd (tardf2 ZstdDict patches), auto (tardf2: zstd ' +
          'within --max-zstd-diff-size, bsdiff above) or copy (ours: tardf1, copies only)',
      )
        .choices(['bsdiff', 'zstd', 'auto', 'copy'])
        .default('bsdiff'),
    )
    .option(
      '--compression-level <n>',
      'outer zstd level (default: chosen by the literal bytes expected, like odh create; upstream: 3)',
      intArg('--compression-level', 0, 22),
    )
    .option(
      '--max-bsdiff-size <MiB>',
      'bsdiff only for files below this size (0 = no limit)',
      intArg('--max-bsdiff-size', 0, 1 << 20),
      DEFAULT_MAX_BSDIFF >> 20,
    )
    .option(
      '--max-zstd-diff-size <MiB>',
      'ZstdDict only for files below this size (0 = no extra cap below 512)',
      intArg('--max-zstd-diff-size', 0, 512),
      DEFAULT_MAX_ZSTD_DICT >> 20,
    )
    .option(
      '--zstd-diff-level <n>',
      'zstd level of ZstdDict patches (default: by file size)',
      intArg('--zstd-diff-level', 1, 22),
    )
    .option('--zstd-diff-window <MiB>', 'ZstdDict window, a power of two ≤ 512 (0 = auto)', (v: string) => {
      const n = intArg('--zstd-diff-window', 0, 512)(v);
      if ((n & (n - 1)) !== 0)
        throw new OdhError('USAGE', `invalid --zstd-diff-window ${n} (must be 0 or a power of two)`);
      return n;
    })
    .option(
      '--ignore-source-prefix <prefix>',
      'never use old files under this prefix (repeatable; default sysroot/ostree/)',
      (v: string, prev: string[] | undefined) => [...(prev ?? []), v],
    )
    .option('--tmp-dir <dir>', 'directory for temporary files')
    .option('-f, --force', 'replace an existing output file')
    .option('-q, --quiet', 'no progress on stderr')
    .option('--json', 'print the result (output, format version, sizes, ops) as one JSON object')
    .action(async (tars: string[], opts: TarDiffCliOptions & { json?: boolean }) => {
      if (tars.length < 3) {
        throw new OdhError('USAGE', 'tar-diff needs at least one old tar, the new tar and the output path');
      }
      const out = tars[tars.length - 1]!;
      const neu = tars[tars.length - 2]!;
      const r = await tarDiff(tars.slice(0, -2), neu, out, opts);
      if (opts.json) {
        const result = {
          output: out,
          version: r.version,
          bytes: r.bytes,
          newTarBytes: r.newLayerBytes,
          ops: r.ops,
        };
        process.stdout.write(`${JSON.stringify(result)}\n`);
      }
      if (!opts.quiet) {
        const ops = Object.entries(r.ops)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ');
        process.stderr.write(
          `tar-diff: wrote ${r.bytes} bytes (tardf${r.version}) for a ${r.newLayerBytes}-byte tar; ops ${ops}\n`,
        );
      }
    });
}
