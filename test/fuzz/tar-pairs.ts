/**
 * Seeded random (old, new) tar pairs for differential fuzzing of tar-diff implementations: the new
 * tar is the old one with edits, inserts and deletes inside binaries, renames, deletions and new
 * files, hardlinks, symlinks, long and non-UTF-8 names, PAX records, xattrs, empty and zero-filled
 * files. Tars are written here with raw headers (not by the code under test's writer).
 */
import { encodePaxRecords, encodeUstarHeader, paddingFor, type PaxRecord } from '../../src/tar/header.js';

/** Small fast PRNG (mulberry32): the same seed gives the same pair everywhere. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i += 4) {
      const v = (this.next() * 4294967296) >>> 0;
      for (let j = 0; j < 4 && i + j < n; j++) b[i + j] = (v >>> (8 * j)) & 0xff;
    }
    return b;
  }
}

export type Entry =
  | { kind: 'dir'; name: Buffer; mode: number }
  | { kind: 'file'; name: Buffer; mode: number; data: Buffer; pax?: PaxRecord[] }
  | { kind: 'symlink'; name: Buffer; target: Buffer }
  | { kind: 'hardlink'; name: Buffer; target: Buffer };

const TEXT = Buffer.from('the quick brown fox jumps over the lazy dog\n');

/** A file body: random binary, text-like, empty or zero-filled, sometimes big enough for rollsums. */
function content(r: Rng): Buffer {
  const k = r.int(0, 9);
  if (k === 0) return Buffer.alloc(0);
  if (k === 1) return Buffer.alloc(r.int(1, 70_000));
  if (k <= 3) {
    const n = r.int(1, 40);
    return Buffer.concat(Array.from({ length: n }, () => TEXT));
  }
  return r.bytes(r.chance(0.15) ? r.int(64_000, 300_000) : r.int(1, 20_000));
}

/** Edits inside a binary: replace, insert and delete runs at random places. */
function edit(r: Rng, data: Buffer): Buffer {
  let d = Buffer.from(data);
  for (let i = r.int(1, 4); i > 0; i--) {
    const at = r.int(0, d.length);
    const op = r.int(0, 2);
    const run = r.bytes(r.int(1, 600));
    if (op === 0) d = Buffer.concat([d.subarray(0, at), run, d.subarray(at)]);
    else if (op === 1)
      d = Buffer.concat([d.subarray(0, at), d.subarray(Math.min(d.length, at + run.length))]);
    else {
      d = Buffer.concat([d.subarray(0, at), run, d.subarray(Math.min(d.length, at + run.length))]);
    }
  }
  return d;
}

const SEGMENTS = ['usr', 'lib', 'bin', 'etc', 'share', 'doc', 'a', 'b'];

function baseName(r: Rng, i: number): Buffer {
  const k = r.int(0, 9);
  if (k === 0) return Buffer.concat([Buffer.from(`n${i}-`), Buffer.from([0xff, 0xfe, 0xc3, 0x28])]); // not UTF-8
  if (k === 1) return Buffer.from(`long-${i}-${'x'.repeat(r.int(90, 220))}`);
  if (k === 2) return Buffer.from(`ünïcode-${i}.so`);
  return Buffer.from(
    `${r.pick(['libfoo', 'data', 'conf', 'prog'])}-${i}${r.pick(['.so', '.bin', '.txt', ''])}`,
  );
}

function pax(r: Rng): PaxRecord[] | undefined {
  const recs: PaxRecord[] = [];
  if (r.chance(0.2))
    recs.push({ key: 'mtime', value: Buffer.from(`${r.int(1e9, 2e9)}.${r.int(1, 999999)}`) });
  if (r.chance(0.2)) recs.push({ key: 'SCHILY.xattr.user.fuzz', value: r.bytes(r.int(1, 40)) });
  if (r.chance(0.1)) {
    recs.push({ key: 'SCHILY.xattr.security.capability', value: Buffer.from('0100000200200000', 'hex') });
  }
  if (r.chance(0.1)) recs.push({ key: 'comment', value: Buffer.from(`seeded ${r.int(0, 1e6)}`) });
  return recs.length ? recs : undefined;
}

/** The old tree: directories first, then files, symlinks and hardlinks (to earlier files). */
function oldTree(r: Rng): Entry[] {
  const dirs = [...new Set(Array.from({ length: r.int(1, 4) }, () => r.pick(SEGMENTS)))].map((d) =>
    Buffer.from(`${d}/${r.pick(SEGMENTS)}`),
  );
  const out: Entry[] = [];
  const seenDirs = new Set<string>();
  for (const d of dirs) {
    const parent = d.subarray(0, d.indexOf(0x2f)).toString('latin1');
    for (const p of [parent, d.toString('latin1')]) {
      if (seenDirs.has(p)) continue;
      seenDirs.add(p);
      out.push({ kind: 'dir', name: Buffer.from(`${p}/`, 'latin1'), mode: 0o755 });
    }
  }
  const files: Buffer[] = [];
  const n = r.int(3, 25);
  for (let i = 0; i < n; i++) {
    const name = Buffer.concat([r.pick(dirs), Buffer.from('/'), baseName(r, i)]);
    const k = r.int(0, 11);
    if (k === 0 && files.length) {
      out.push({ kind: 'hardlink', name, target: r.pick(files) });
    } else if (k === 1) {
      out.push({
        kind: 'symlink',
        name,
        target: Buffer.from(r.chance(0.5) ? '../x' : `/usr/${'t'.repeat(r.int(1, 150))}`),
      });
    } else {
      const mode = r.chance(0.1) ? 0o600 : r.pick([0o644, 0o755]);
      const p = pax(r);
      out.push({ kind: 'file', name, mode, data: content(r), ...(p ? { pax: p } : {}) });
      files.push(name);
    }
  }
  return out;
}

/** The new tree: per old entry keep / edit / rename / delete, plus new entries; a little reordering. */
function newTree(r: Rng, old: Entry[]): Entry[] {
  const out: Entry[] = [];
  const dirs = old.filter((e) => e.kind === 'dir').map((e) => e.name.subarray(0, -1));
  let i = 1000;
  for (const e of old) {
    if (e.kind === 'dir') {
      out.push(e);
      continue;
    }
    const k = r.int(0, 9);
    if (k === 0) continue; // deleted
    if (e.kind !== 'file') {
      out.push(e);
      continue;
    }
    if (k <= 3) out.push(e);
    else if (k <= 6) out.push({ ...e, data: edit(r, e.data) });
    else if (k <= 8) {
      const name = Buffer.concat([r.pick(dirs), Buffer.from('/'), baseName(r, i++)]);
      out.push({ ...e, name, data: r.chance(0.5) ? e.data : edit(r, e.data) });
    } else out.push({ ...e, mode: e.mode ^ 0o011 });
  }
  const files = out.filter((e) => e.kind === 'file');
  for (let n = r.int(0, 5); n > 0; n--) {
    const name = Buffer.concat([r.pick(dirs), Buffer.from('/'), baseName(r, i++)]);
    if (files.length && r.chance(0.3)) out.push({ kind: 'hardlink', name, target: r.pick(files).name });
    else out.push({ kind: 'file', name, mode: 0o644, data: content(r) });
  }
  // Keep directories first and hardlinks after their targets; swap some neighbouring files.
  for (let k = dirs.length; k < out.length - 1; k++) {
    const a = out[k]!;
    const b = out[k + 1]!;
    if (a.kind === 'file' && b.kind === 'file' && r.chance(0.2)) [out[k], out[k + 1]] = [b, a];
  }
  return dedupe(out);
}

/** One entry per name (a later duplicate name would make the fuzzing about overwrite rules). */
function dedupe(es: Entry[]): Entry[] {
  const seen = new Set<string>();
  return es.filter((e) => {
    const k = e.name.toString('latin1').replace(/\/$/, '');
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function header(e: Entry, size: number): Buffer {
  const typeflag = { dir: '5', file: '0', symlink: '2', hardlink: '1' }[e.kind];
  const link = e.kind === 'symlink' || e.kind === 'hardlink' ? e.target : undefined;
  const recs: PaxRecord[] = [...(e.kind === 'file' && e.pax ? e.pax : [])];
  const longName = e.name.length > 100;
  if (longName) recs.unshift({ key: 'path', value: e.name });
  if (link && link.length > 100) recs.push({ key: 'linkpath', value: link });
  const main = encodeUstarHeader({
    name: longName ? e.name.subarray(0, 99) : e.name,
    mode: e.kind === 'dir' ? e.mode : e.kind === 'file' ? e.mode : 0o777,
    size,
    mtime: 1_700_000_000,
    typeflag,
    uid: 0,
    gid: 0,
    uname: 'root',
    gname: 'root',
    ...(link ? { linkname: link.length > 100 ? link.subarray(0, 99) : link } : {}),
  });
  if (!recs.length) return main;
  const data = encodePaxRecords(recs);
  const x = encodeUstarHeader({ name: 'PaxHeaders.0/entry', mode: 0o644, size: data.length, typeflag: 'x' });
  return Buffer.concat([x, data, Buffer.alloc(Number(paddingFor(BigInt(data.length)))), main]);
}

export function writeTar(es: Entry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of es) {
    const data = e.kind === 'file' ? e.data : Buffer.alloc(0);
    parts.push(header(e, data.length), data, Buffer.alloc(Number(paddingFor(BigInt(data.length)))));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export interface TarPair {
  old: Entry[];
  new: Entry[];
  oldTar: Buffer;
  newTar: Buffer;
}

export function tarPair(seed: number): TarPair {
  const r = new Rng(seed);
  const old = dedupe(oldTree(r));
  const nu = newTree(r, old);
  return { old, new: nu, oldTar: writeTar(old), newTar: writeTar(nu) };
}
