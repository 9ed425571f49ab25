/**
 * composefs benchmarks (run after the build: `node dist/scripts/bench-composefs.js`):
 *  (a) V1 image of the C asset cs9-x86_64-developer.dump.gz (parse + layout + write), checked
 *      against C mkcomposefs's pinned sha256; time and peak RSS;
 *  (b) `odh composefs id` of a synthetic OCI image (default 1 GiB in 50k files, gzip layers)
 *      against a floor measured in the same run: `gzip -dc LAYER | sha256sum` over the same layers.
 * Each measured part runs in a child process of its own, so its peak RSS is its own.
 * `benchComposefs()` is exported for a top-level bench script.
 */
import { execFile } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { createGunzip, createGzip } from 'node:zlib';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SELF = fileURLToPath(import.meta.url);
/** dist/scripts/bench-composefs.js → repository root → ../shared/vectors. */
const REPO = path.resolve(path.dirname(SELF), '..', '..');
const CS9 = path.resolve(REPO, '..', 'shared', 'vectors', 'composefs-c', 'cs9-x86_64-developer.dump.gz');

export interface PartResult {
  ms: number;
  peakRssMiB: number;
  detail: Record<string, string | number | boolean>;
}

export interface ComposefsBenchResult {
  v1Image: PartResult;
  ociId: PartResult & {
    floorMs: number;
    bytes: number;
    files: number;
    mibPerSec: number;
    floorMibPerSec: number;
    ratio: number;
  };
}

export interface BenchComposefsOptions {
  /** Uncompressed content bytes of the synthetic image (default 1 GiB). */
  totalBytes?: number;
  /** Regular files in it (default 50 000). */
  files?: number;
  /** Layers (default 4). */
  layers?: number;
  log?: (line: string) => void;
}

// ---------------------------------------------------------------- synthetic image

/** xorshift32: deterministic sizes and content, no dependency on Math.random. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

function ustarHeader(name: string, typeflag: '0' | '5', mode: number, size: number): Buffer {
  const h = Buffer.alloc(512);
  const oct = (v: number, w: number) => v.toString(8).padStart(w - 1, '0') + '\0';
  h.write(name, 0, 100, 'utf8');
  h.write(oct(mode, 8), 100, 'ascii');
  h.write(oct(0, 8), 108, 'ascii');
  h.write(oct(0, 8), 116, 'ascii');
  h.write(oct(size, 12), 124, 'ascii');
  h.write(oct(1_700_000_000, 12), 136, 'ascii');
  h.write(typeflag, 156, 'ascii');
  h.write('ustar\x0000', 257, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return h;
}

/** File sizes summing exactly to `total`: a fifth are tiny (inline ≤ 64 bytes), the rest > 64 bytes. */
function fileSizes(files: number, total: number, next: () => number): number[] {
  const sizes = new Array<number>(files).fill(0);
  const weights = new Array<number>(files).fill(0);
  let tiny = 0;
  let weightSum = 0;
  for (let i = 0; i < files; i++) {
    if (i % 5 === 0) tiny += sizes[i] = next() % 65;
    else weightSum += weights[i] = 1 + (next() % 1000);
  }
  const big = files - Math.ceil(files / 5);
  // Each larger file gets 65 bytes plus its share of the rest, by weight; the last one takes the remainder.
  const spare = total - tiny - 65 * big;
  let sum = tiny;
  let last = -1;
  for (let i = 0; i < files; i++) {
    if (i % 5 === 0) continue;
    sum += sizes[i] = 65 + Math.floor((weights[i] * spare) / weightSum);
    last = i;
  }
  if (last >= 0) sizes[last] += total - sum;
  return sizes;
}

/** Writes an oci: layout of gzip layers; content is half random, half text (so gzip has work on both). */
export async function writeSyntheticImage(
  dir: string,
  opts: { totalBytes: number; files: number; layers: number },
): Promise<{ layerFiles: string[]; bytes: number }> {
  const blobs = path.join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const next = rng(0x5eed);
  const sizes = fileSizes(opts.files, opts.totalBytes, next);
  const keystream = createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16));
  const text = Buffer.from('composefs benchmark text line, compressible on purpose.\n'.repeat(2048));
  const perLayer = Math.ceil(opts.files / opts.layers);
  const layerDescs: { mediaType: string; digest: string; size: number }[] = [];
  const diffIds: string[] = [];
  const layerFiles: string[] = [];
  for (let l = 0; l < opts.layers; l++) {
    const tmp = path.join(dir, `layer-${l}.tmp`);
    const diff = createHash('sha256');
    const blob = createHash('sha256');
    let blobSize = 0;
    const gz = createGzip({ level: 1 });
    const out = createWriteStream(tmp);
    gz.on('data', (c: Buffer) => {
      blob.update(c);
      blobSize += c.length;
    });
    const done = pipeline(gz, out);
    const write = async (b: Buffer) => {
      diff.update(b);
      if (!gz.write(b)) await new Promise((r) => gz.once('drain', r));
    };
    if (l === 0) {
      for (const d of ['usr/', 'usr/share/', 'usr/share/bench/']) await write(ustarHeader(d, '5', 0o755, 0));
    }
    for (let i = l * perLayer; i < Math.min(opts.files, (l + 1) * perLayer); i++) {
      const dirName = `usr/share/bench/d${String(Math.floor(i / 100)).padStart(4, '0')}/`;
      if (i % 100 === 0) await write(ustarHeader(dirName, '5', 0o755, 0));
      const size = sizes[i];
      await write(ustarHeader(`${dirName}f${i}`, '0', 0o644, size));
      let left = size;
      while (left > 0) {
        const n = Math.min(left, 65536);
        // Pseudo-random first half of each chunk (AES-CTR keystream), text second half.
        const half = n >> 1;
        const chunk = Buffer.concat([keystream.update(Buffer.alloc(half)), text.subarray(0, n - half)]);
        await write(chunk);
        left -= n;
      }
      const pad = (512 - (size % 512)) % 512;
      if (pad) await write(Buffer.alloc(pad));
    }
    await write(Buffer.alloc(1024));
    gz.end();
    await done;
    const digest = blob.digest('hex');
    const final = path.join(blobs, digest);
    await rm(final, { force: true });
    await rename(tmp, final);
    layerDescs.push({
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      digest: `sha256:${digest}`,
      size: blobSize,
    });
    diffIds.push(`sha256:${diff.digest('hex')}`);
    layerFiles.push(final);
  }
  const put = async (b: Buffer) => {
    const d = createHash('sha256').update(b).digest('hex');
    await writeFile(path.join(blobs, d), b);
    return { digest: `sha256:${d}`, size: b.length };
  };
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds } }),
  );
  const c = await put(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...c },
      layers: layerDescs,
    }),
  );
  const m = await put(manifest);
  await writeFile(
    path.join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m }],
    }),
  );
  await writeFile(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  return { layerFiles, bytes: sizes.reduce((a, b) => a + b, 0) };
}

// ---------------------------------------------------------------- measured parts (child processes)

async function partV1(): Promise<Record<string, string | number | boolean>> {
  const { parseDumpfile } = await import('../src/composefs/dumpfile-parse.js');
  const { writeErofs } = await import('../src/composefs/erofs/write.js');
  const tree = await parseDumpfile(createReadStream(CS9).pipe(createGunzip()), {
    rules: 'mkcomposefs',
    strict: true,
    file: CS9,
  });
  const image = writeErofs(tree, { format: 'v1' });
  const sha = createHash('sha256').update(image).digest('hex');
  const pinned = readFileSync(`${CS9}.sha256`, 'utf8').trim().split(/\s+/)[0];
  return { imageBytes: image.length, sha256: sha, matchesC: sha === pinned };
}

async function partId(dir: string): Promise<Record<string, string | number | boolean>> {
  // composefsImage() in two timed phases: layers → tree, tree → V1 EROFS image + ID.
  const { openImage } = await import('../src/oci/image.js');
  const { ociImageLayers, erofsOptionsFor, defaultXattrPolicy } =
    await import('../src/composefs/image-id.js');
  const { treeFromOciImage } = await import('../src/composefs/oci-tree.js');
  const { writeErofs } = await import('../src/composefs/erofs/write.js');
  const { fsverityDigest } = await import('../src/composefs/fsverity.js');
  const t0 = performance.now();
  const opened = await openImage(`oci:${dir}`);
  let tree;
  try {
    tree = await treeFromOciImage(ociImageLayers(opened), {
      hash: 'sha512',
      xattrs: defaultXattrPolicy('v1'),
    });
  } finally {
    await opened.reader.close();
  }
  const t1 = performance.now();
  const image = writeErofs(tree, erofsOptionsFor('v1', 'sha512'));
  const id = fsverityDigest(image, 'sha512').toString('hex');
  const t2 = performance.now();
  return {
    id,
    imageBytes: image.length,
    format: 'v1',
    hash: 'sha512',
    treeMs: Math.round(t1 - t0),
    erofsMs: Math.round(t2 - t1),
  };
}

async function childPart(args: string[]): Promise<PartResult> {
  const { stdout } = await run(process.execPath, [SELF, '--part', ...args], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout) as PartResult;
}

async function floorMs(layerFiles: string[]): Promise<number> {
  const t0 = performance.now();
  for (const f of layerFiles) await run('sh', ['-c', `gzip -dc "$1" | sha256sum >/dev/null`, 'sh', f]);
  return performance.now() - t0;
}

export async function benchComposefs(opts: BenchComposefsOptions = {}): Promise<ComposefsBenchResult> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const totalBytes = opts.totalBytes ?? 1 << 30;
  const files = opts.files ?? 50_000;
  if (!existsSync(CS9)) throw new Error(`benchmark input not found: ${CS9}`);
  log('composefs (a): V1 image of cs9-x86_64-developer.dump.gz …');
  const v1Image = await childPart(['v1']);
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'odh-bench-cfs-'));
  try {
    log(`composefs (b): generating a ${(totalBytes / 2 ** 20).toFixed(0)} MiB / ${files}-file OCI image …`);
    const img = await writeSyntheticImage(tmp, { totalBytes, files, layers: opts.layers ?? 4 });
    log('composefs (b): floor (gzip -dc | sha256sum) …');
    const floor = await floorMs(img.layerFiles);
    log('composefs (b): odh composefs id …');
    const id = await childPart(['id', tmp]);
    const mib = img.bytes / 2 ** 20;
    return {
      v1Image,
      ociId: {
        ...id,
        floorMs: floor,
        bytes: img.bytes,
        files,
        mibPerSec: mib / (id.ms / 1000),
        floorMibPerSec: mib / (floor / 1000),
        ratio: id.ms / floor,
      },
    };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

export function formatComposefsBench(r: ComposefsBenchResult): string[] {
  const a = r.v1Image;
  const b = r.ociId;
  return [
    `composefs V1 image of cs9-x86_64-developer: ${(a.ms / 1000).toFixed(2)} s, peak RSS ${a.peakRssMiB.toFixed(0)} MiB, ` +
      `${a.detail.imageBytes} bytes, identical to C mkcomposefs: ${a.detail.matchesC ? 'yes' : 'NO'}`,
    `composefs id (V1, sha512) of ${(b.bytes / 2 ** 20).toFixed(0)} MiB / ${b.files} files: ${(b.ms / 1000).toFixed(2)} s ` +
      `(${b.mibPerSec.toFixed(0)} MiB/s), peak RSS ${b.peakRssMiB.toFixed(0)} MiB; floor gzip -dc | sha256sum ` +
      `${(b.floorMs / 1000).toFixed(2)} s (${b.floorMibPerSec.toFixed(0)} MiB/s); ratio ${b.ratio.toFixed(2)}× ` +
      `(layers → tree ${(Number(b.detail.treeMs) / 1000).toFixed(2)} s, tree → EROFS + ID ${(Number(b.detail.erofsMs) / 1000).toFixed(2)} s)`,
  ];
}

async function main(argv: string[]): Promise<void> {
  const i = argv.indexOf('--part');
  if (i >= 0) {
    const t0 = performance.now();
    const detail = argv[i + 1] === 'v1' ? await partV1() : await partId(argv[i + 2]);
    const ms = performance.now() - t0;
    const result: PartResult = { ms, peakRssMiB: process.resourceUsage().maxRSS / 1024, detail };
    process.stdout.write(JSON.stringify(result));
    return;
  }
  const r = await benchComposefs();
  for (const line of formatComposefsBench(r)) process.stdout.write(`${line}\n`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === SELF) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`bench-composefs: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  });
}
