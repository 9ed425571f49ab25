/**
 * Shared scenario for the apply/inspect CLI tests: a real old and new OCI image (test/helpers/images.ts)
 * with gzip and zstd layers, whiteouts, and bootc-style hardlinked `sysroot/ostree/repo/objects` files,
 * plus a delta assembled by hand (test/helpers/delta-builder.ts) whose tar-diffs use every op.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { execa } from 'execa';
import tarStream from 'tar-stream';
import { decompress as zstdDecompress } from 'zstd-napi';
import { REPO_ROOT } from '../helpers/shared.js';
import {
  bootcLayerEntries,
  buildOciImage,
  flip64,
  ostreeObjectPath,
  seededBytes,
  type BuiltImage,
  type LayerSpec,
} from '../helpers/images.js';
import {
  layerTars,
  makeLayerTarDiff,
  mergedFiles,
  writeSourceDir,
  type DeltaSpec,
  type FileRecipe,
  type LayerPlan,
} from '../helpers/delta-builder.js';

export const ODH = path.join(REPO_ROOT, 'dist', 'bin', 'odh.js');

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI with its own TMPDIR. */
export async function odh(
  args: string[],
  tmpdir: string,
  opts: { timeout?: number } = {},
): Promise<RunResult> {
  const r = await execa('node', [ODH, ...args], {
    reject: false,
    env: { TMPDIR: tmpdir, CI: process.env.CI ?? '' },
    timeout: opts.timeout ?? 60_000,
  });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

export function tempRoot(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function removeTree(p: string): void {
  rmSync(p, { recursive: true, force: true });
}

/** Entries named like our temp files (`odh-*`, `.odh-tmp-*`) directly inside `dir`. */
export function leftovers(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((n) => n.startsWith('odh-') || n.startsWith('.odh-tmp-'));
}

/** Deterministic incompressible bytes, fast at any size (AES-128-CTR keystream of a fixed key). */
function bigBytes(size: number): Buffer {
  const c = createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16, 0));
  return c.update(Buffer.alloc(size));
}

const lib = (name: string, size: number) => ({ path: `usr/lib64/${name}`, content: seededBytes(name, size) });

export interface Scenario {
  old: BuiltImage;
  new: BuiltImage;
  /** Merged old root filesystem, extracted (for --source-dir). */
  sourceDir: string;
  /** One plan per new layer: [reused, tar-diff v1, tar-diff v2, original]. */
  plans: LayerPlan[];
  spec: DeltaSpec;
}

/**
 * Old image: L0 gzip bootc libs, L1 zstd plain files, L2 gzip with a whiteout of an L1 file.
 * New image: N0 = L0 re-gzipped at level 9 (reused by diff_id), N1 gzip bootc libs changed
 * (AddData, Data+Seek, Copy), N2 zstd with files rebuilt by ZstdDict and whiteouts, N3 a tiny
 * zstd layer carried as the original blob.
 */
export async function buildScenario(root: string, bigFile = 0): Promise<Scenario> {
  const libc = lib('libc.so.6', 8192);
  const libm = lib('libm.so.6', 6144);
  const libz = lib('libz.so.1', 5120);
  const libssl = lib('libssl.so.1', 8192);
  const tool = seededBytes('tool', 20000);
  const doc = Buffer.from('The quick brown fox jumps over the lazy dog\n'.repeat(40));
  const L0: LayerSpec = {
    compression: 'gzip',
    entries: [
      { type: 'dir', path: 'usr' },
      { type: 'dir', path: 'usr/lib64' },
      ...bootcLayerEntries([libc, libm, libz, libssl]),
      { type: 'symlink', path: 'lib64', target: 'usr/lib64' },
    ],
  };
  const L1: LayerSpec = {
    compression: 'zstd',
    entries: [
      { type: 'dir', path: 'usr/bin' },
      { type: 'file', path: 'usr/bin/tool', content: tool, mode: 0o755 },
      { type: 'dir', path: 'usr/share/doc' },
      { type: 'file', path: 'usr/share/doc/fox.txt', content: doc },
      { type: 'file', path: 'etc/gone.conf', content: 'remove me\n' },
      ...(bigFile ? [{ type: 'file' as const, path: 'var/big.bin', content: bigBytes(bigFile) }] : []),
    ],
  };
  const L2: LayerSpec = { compression: 'gzip', entries: [{ type: 'whiteout', path: 'etc/gone.conf' }] };
  const old = await buildOciImage(path.join(root, 'old'), { layers: [L0, L1, L2], refName: 'old' });

  const libc2 = { ...libc, content: flip64(libc.content, 500) };
  const libm2 = { ...libm, content: flip64(libm.content, 300) };
  const tool2 = Buffer.concat([tool.subarray(0, 15000), Buffer.from('new tail'), tool.subarray(15000)]);
  const doc2 = Buffer.from(doc.toString().replace('brown', 'red').replace('lazy dog', 'lazy cat'));
  const N0: LayerSpec = { ...L0, gzipLevel: 9 };
  const N1: LayerSpec = { compression: 'gzip', entries: bootcLayerEntries([libc2, libm2, libz]) };
  const N2: LayerSpec = {
    compression: 'zstd',
    entries: [
      { type: 'opaque', path: 'usr/share/doc' },
      { type: 'file', path: 'usr/bin/tool', content: tool2, mode: 0o755 },
      { type: 'file', path: 'usr/share/doc/fox.txt', content: doc2 },
      { type: 'whiteout', path: 'usr/lib64/libssl.so.1' },
      ...(bigFile ? [{ type: 'file' as const, path: 'var/big2.bin', content: bigBytes(bigFile) }] : []),
    ],
  };
  const N3: LayerSpec = {
    compression: 'zstd',
    entries: [{ type: 'file', path: 'etc/motd', content: 'hi\n' }],
  };
  const nw = await buildOciImage(path.join(root, 'new'), { layers: [N0, N1, N2, N3], refName: 'new' });

  const merged = await mergedFiles(await layerTars(old));
  const sourceDir = path.join(root, 'rootfs');
  await mkdir(sourceDir, { recursive: true });
  await writeSourceDir(sourceDir, merged);
  const src = (name: string) => merged.get(name)!.content;

  // N1: object files rebuilt from the old files' in-image names (spec §3.1: `usr/lib64/…`, never the
  // ostree object path).
  const byObject = new Map<string, FileRecipe>([
    [ostreeObjectPath(libc2.content), { source: libc.path, sourceBytes: src(libc.path), how: 'add' }],
    [ostreeObjectPath(libm2.content), { source: libm.path, sourceBytes: src(libm.path), how: 'seek' }],
    [ostreeObjectPath(libz.content), { source: `/${libz.path}`, sourceBytes: src(libz.path), how: 'copy' }],
  ]);
  const n1 = makeLayerTarDiff(await readFile(nw.layers[1]!.tarPath), (name) => byObject.get(name), 1);
  const n2 = makeLayerTarDiff(
    await readFile(nw.layers[2]!.tarPath),
    (name) => {
      if (name === 'usr/bin/tool') return { source: name, sourceBytes: src(name), how: 'zstd' };
      if (name === 'usr/share/doc/fox.txt') return { source: name, sourceBytes: src(name), how: 'zstd' };
      if (name === 'var/big2.bin')
        return { source: 'var/big.bin', sourceBytes: src('var/big.bin'), how: 'copy' };
      return undefined;
    },
    2,
  );
  const plans: LayerPlan[] = [
    { kind: 'reused' },
    { kind: 'tar-diff', tarDiff: n1 },
    { kind: 'tar-diff', tarDiff: n2 },
    { kind: 'original' },
  ];
  return { old, new: nw, sourceDir, plans, spec: { old, new: nw, layers: plans } };
}

export interface ReadImage {
  index: Record<string, unknown>;
  manifestBytes: Buffer;
  manifest: {
    mediaType?: string;
    config: { digest: string };
    layers: Array<{ mediaType: string; digest: string; size: number }>;
  };
  configBytes: Buffer;
  blobs: Map<string, Buffer>;
  names: string[];
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Reads an oci-archive with tar-stream (independent of src/), checking every blob's digest. */
export async function readArchive(file: string): Promise<ReadImage> {
  const files = new Map<string, Buffer>();
  const names: string[] = [];
  const ex = tarStream.extract();
  const done = (async () => {
    for await (const e of ex) {
      const chunks: Buffer[] = [];
      for await (const c of e) chunks.push(c as Buffer);
      names.push(e.header.name);
      if (e.header.type === 'file') files.set(e.header.name, Buffer.concat(chunks));
    }
  })();
  ex.end(await readFile(file));
  await done;
  const blobs = new Map<string, Buffer>();
  for (const [n, b] of files) {
    if (!n.startsWith('blobs/sha256/')) continue;
    const d = `sha256:${n.slice(13)}`;
    if (sha256(b) !== d) throw new Error(`blob ${n} does not match its digest`);
    blobs.set(d, b);
  }
  const index = JSON.parse(files.get('index.json')!.toString()) as { manifests: Array<{ digest: string }> };
  const manifestBytes = blobs.get(index.manifests[0]!.digest)!;
  const manifest = JSON.parse(manifestBytes.toString()) as ReadImage['manifest'];
  return { index, manifestBytes, manifest, configBytes: blobs.get(manifest.config.digest)!, blobs, names };
}

/** sha256 of a layer blob's uncompressed content, by its magic. */
export function diffIdOf(blob: Buffer): string {
  if (blob[0] === 0x1f && blob[1] === 0x8b) return sha256(gunzipSync(blob));
  if (blob.readUInt32LE(0) === 0xfd2fb528) return sha256(zstdDecompress(blob));
  return sha256(blob);
}
