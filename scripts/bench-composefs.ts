/**
 * composefs benchmarks (run after the build: `node dist/scripts/bench-composefs.js`, BENCH_QUICK=1
 * for a small id image). Every figure is the odh CLI as a user runs it (node start-up included),
 * measured with GNU time (wall, user+sys CPU, peak RSS) and interleaved with its competitor:
 *  (a) `odh composefs mkfs` V1 vs C `mkcomposefs --from-file` 1.0.8 (ODH_ORACLES or .oracles) on
 *      cs9-x86_64-developer (64k entries) and config.dump (8.7k entries), bytes compared;
 *  (b) `odh composefs id` of a synthetic OCI image (default 1 GiB in 50k files, gzip layers) vs the
 *      floor `gzip -dc LAYER | sha256sum` over the same layers.
 * CPU ratios matter most on a shared machine: wall times there include other people's work.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { createGunzip, createGzip } from 'node:zlib';
import { runTempDir } from '../src/util/run.js';
import {
  envWithoutExtraCaCerts,
  interleaved,
  timedCmd,
  WITHOUT_EXTRA_CA_CERTS,
  type CmdStats,
} from './bench/measure.js';

const SELF = fileURLToPath(import.meta.url);
/** dist/scripts/bench-composefs.js → repository root → test/vectors (the golden vectors kept in the repo). */
const REPO = path.resolve(path.dirname(SELF), '..', '..');
const CS9 = path.resolve(REPO, 'test', 'vectors', 'composefs-c', 'cs9-x86_64-developer.dump.gz');

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
  // In file order: every fifth file draws its tiny size, the others a weight.
  const drawn = Array.from({ length: files }, (_, i) =>
    i % 5 === 0 ? { tiny: true, n: next() % 65 } : { tiny: false, n: 1 + (next() % 1000) },
  );
  let tiny = 0;
  let weightSum = 0;
  for (const d of drawn) {
    if (d.tiny) tiny += d.n;
    else weightSum += d.n;
  }
  const big = files - Math.ceil(files / 5);
  // Each larger file gets 65 bytes plus its share of the rest, by weight; the last one takes the remainder.
  const spare = total - tiny - 65 * big;
  const sizes = drawn.map((d) => (d.tiny ? d.n : 65 + Math.floor((d.n * spare) / weightSum)));
  const remainder = total - sizes.reduce((a, b) => a + b, 0);
  const last = drawn.findLastIndex((d) => !d.tiny);
  return sizes.map((size, i) => (i === last ? size + remainder : size));
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
    const first = l * perLayer;
    for (const [k, size] of sizes.slice(first, first + perLayer).entries()) {
      const i = first + k;
      const dirName = `usr/share/bench/d${String(Math.floor(i / 100)).padStart(4, '0')}/`;
      if (i % 100 === 0) await write(ustarHeader(dirName, '5', 0o755, 0));
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

const ODH = path.join(REPO, 'dist', 'bin', 'odh.js');
const CONFIG = path.resolve(REPO, 'test', 'vectors', 'composefs-c', 'config.dump.gz');

async function gunzipTo(src: string, dst: string): Promise<void> {
  await pipeline(createReadStream(src), createGunzip(), createWriteStream(dst));
}

export interface MkfsBench {
  entries: number;
  odh: CmdStats;
  c: CmdStats;
  /** `node -e ''`: the start-up every odh run pays, on this machine in this run. */
  nodeStart: CmdStats;
  /** odh and `node -e ''` again without NODE_EXTRA_CA_CERTS (envWithoutExtraCaCerts); null when unset. */
  withoutExtraCaCerts: { odh: CmdStats; nodeStart: CmdStats } | null;
  identical: boolean;
  matchesPin: boolean | null;
}

/** `odh composefs mkfs` (the CLI, start-up included) vs C `mkcomposefs --from-file` on one dumpfile. */
async function benchMkfs(tmp: string, gz: string, rounds: number): Promise<MkfsBench> {
  const mkcomposefs = findMkcomposefs();
  const dump = path.join(tmp, path.basename(gz, '.gz'));
  await gunzipTo(gz, dump);
  const ours = path.join(tmp, 'odh.img');
  const theirs = path.join(tmp, 'c.img');
  // --force: every round after the first replaces the previous round's output (C overwrites too).
  const odhArgs = [ODH, 'composefs', 'mkfs', '--force', '--from-file', dump, ours];
  const bare = envWithoutExtraCaCerts();
  const [odh, c, nodeStart, odhBare, nodeStartBare] = (await interleaved(rounds, [
    () => timedCmd(process.execPath, odhArgs),
    () => timedCmd(mkcomposefs, ['--from-file', dump, theirs]),
    () => timedCmd(process.execPath, ['-e', '']),
    ...(bare === null
      ? []
      : [
          () => timedCmd(process.execPath, odhArgs, bare),
          () => timedCmd(process.execPath, ['-e', ''], bare),
        ]),
  ])) as [CmdStats, CmdStats, CmdStats, CmdStats?, CmdStats?];
  const a = readFileSync(ours);
  const pinFile = `${gz}.sha256`;
  const pin = existsSync(pinFile) ? readFileSync(pinFile, 'utf8').trim().split(/\s+/)[0] : null;
  return {
    entries: readFileSync(dump).toString('latin1').split('\n').length - 1,
    odh,
    c,
    nodeStart,
    withoutExtraCaCerts:
      odhBare === undefined || nodeStartBare === undefined
        ? null
        : { odh: odhBare, nodeStart: nodeStartBare },
    identical: a.equals(readFileSync(theirs)),
    matchesPin: pin === null ? null : createHash('sha256').update(a).digest('hex') === pin,
  };
}

function findMkcomposefs(): string {
  const dir = process.env.ODH_ORACLES ?? path.join(REPO, '.oracles');
  const p = path.join(dir, 'bin', 'mkcomposefs');
  if (!existsSync(p))
    throw new Error(`C mkcomposefs not found at ${p}: run npm run oracles or set ODH_ORACLES`);
  return p;
}

export interface IdBench {
  /** The default (layer workers when two or more layers are large). */
  odh: CmdStats;
  /** `--jobs 1`: one thread. */
  odh1: CmdStats;
  floor: CmdStats;
  bytes: number;
  files: number;
  /** floor wall / odh wall: ≥ 1 means at or above the floor. */
  ofFloor: number;
}

async function benchId(tmp: string, opts: Required<Omit<BenchComposefsOptions, 'log'>>, rounds: number) {
  const img = await writeSyntheticImage(tmp, opts);
  const floorCmd = img.layerFiles.map((f) => `gzip -dc '${f}' | sha256sum >/dev/null`).join('; ');
  // Interleaved: default, --jobs 1, floor, then again (all three see the same machine load).
  const [odh, odh1, floor] = (await interleaved(rounds, [
    () => timedCmd(process.execPath, [ODH, 'composefs', 'id', '-q', `oci:${tmp}`]),
    () => timedCmd(process.execPath, [ODH, 'composefs', 'id', '-q', '--jobs', '1', `oci:${tmp}`]),
    () => timedCmd('sh', ['-c', floorCmd]),
  ])) as [CmdStats, CmdStats, CmdStats];
  return { odh, odh1, floor, bytes: img.bytes, files: opts.files, ofFloor: floor.wall / odh.wall };
}

export interface ComposefsBenchResult {
  cs9: MkfsBench;
  small: MkfsBench;
  ociId: IdBench;
}

export async function benchComposefs(opts: BenchComposefsOptions = {}): Promise<ComposefsBenchResult> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const idOpts = {
    totalBytes: opts.totalBytes ?? 1 << 30,
    files: opts.files ?? 50_000,
    layers: opts.layers ?? 4,
  };
  if (!existsSync(CS9)) throw new Error(`benchmark input not found: ${CS9}`);
  const { dir: tmp, cleanup } = await runTempDir('bench-cfs');
  try {
    log('composefs (a): mkfs V1 of cs9-x86_64-developer, odh and C interleaved …');
    const cs9 = await benchMkfs(tmp, CS9, 3);
    log('composefs (a): mkfs V1 of config.dump (start-up included), odh and C interleaved …');
    const small = await benchMkfs(tmp, CONFIG, 5);
    const idDir = path.join(tmp, 'oci');
    log(
      `composefs (b): generating a ${(idOpts.totalBytes / 2 ** 20).toFixed(0)} MiB / ${idOpts.files}-file OCI image …`,
    );
    log('composefs (b): odh composefs id and the floor (gzip -dc | sha256sum), interleaved …');
    const ociId = await benchId(idDir, idOpts, 2);
    return { cs9, small, ociId };
  } finally {
    await cleanup();
  }
}

const s2 = (x: number) => x.toFixed(2);

function mkfsLine(name: string, m: MkfsBench): string {
  return (
    `composefs mkfs V1 of ${name} (${m.entries} entries), Node ${process.version}: odh ${s2(m.odh.wall)} s wall, ${s2(m.odh.cpu)} s CPU, ` +
    `${m.odh.rssMiB.toFixed(0)} MiB peak RSS; C mkcomposefs ${s2(m.c.wall)} s, ${s2(m.c.cpu)} s CPU, ` +
    `${m.c.rssMiB.toFixed(0)} MiB; CPU ${s2(m.odh.cpu / m.c.cpu)}× C, RSS ${s2(m.odh.rssMiB / m.c.rssMiB)}× C; ` +
    `bytes identical to C: ${m.identical ? 'yes' : 'NO'}` +
    (m.matchesPin === null ? '' : `, pinned sha256: ${m.matchesPin ? 'yes' : 'NO'}`) +
    `; node start-up alone (node -e '') ${s2(m.nodeStart.wall)} s wall, ${s2(m.nodeStart.cpu)} s CPU` +
    extraCaCertsPart(m)
  );
}

function extraCaCertsPart(m: MkfsBench): string {
  const w = m.withoutExtraCaCerts;
  if (w === null) return '';
  return (
    `; ${WITHOUT_EXTRA_CA_CERTS}: ` +
    `odh ${s2(w.odh.wall)} s wall, ${s2(w.odh.cpu)} s CPU (${s2(w.odh.cpu / m.c.cpu)}× C), ` +
    `node -e '' ${s2(w.nodeStart.wall)} s`
  );
}

export function formatComposefsBench(r: ComposefsBenchResult): string[] {
  const b = r.ociId;
  const mibs = b.bytes / 2 ** 20;
  return [
    mkfsLine('cs9-x86_64-developer', r.cs9) + ' (target CPU ≤ 1.5×, RSS ≤ 2×)',
    mkfsLine('config.dump', r.small) + ` (target ≤ 0.30 s wall with start-up: ${s2(r.small.odh.wall)} s)`,
    `composefs id (V1, sha512) of ${mibs.toFixed(0)} MiB / ${b.files} files: odh ${s2(b.odh.wall)} s wall ` +
      `(${(mibs / b.odh.wall).toFixed(0)} MiB/s), ${s2(b.odh.cpu)} s CPU, ${b.odh.rssMiB.toFixed(0)} MiB peak RSS; ` +
      `floor gzip -dc | sha256sum ${s2(b.floor.wall)} s (${(mibs / b.floor.wall).toFixed(0)} MiB/s); ` +
      `odh at ${(100 * b.ofFloor).toFixed(0)} % of the floor (target ≥ 100 %, RSS ≤ 200 MiB)`,
    `composefs id --jobs 1 (one thread) of the same image: ${s2(b.odh1.wall)} s wall, ${s2(b.odh1.cpu)} s CPU, ` +
      `${b.odh1.rssMiB.toFixed(0)} MiB peak RSS; ${(100 * (b.floor.wall / b.odh1.wall)).toFixed(0)} % of the floor`,
  ];
}

async function main(): Promise<void> {
  const quick = process.env.BENCH_QUICK === '1';
  const r = await benchComposefs(quick ? { totalBytes: 128 << 20, files: 5000 } : {});
  for (const line of formatComposefsBench(r)) process.stdout.write(`${line}\n`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === SELF) {
  main().catch((e: unknown) => {
    process.stderr.write(`bench-composefs: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  });
}
