/**
 * The composefs checker `mkcomposefs`: the V1-sha256 image of an applier's output is also built by C
 * `mkcomposefs` 1.0.8 from our dumpfile of the same tree, and both fs-verity digests must agree.
 * composefs-rs V1 is C `--min-version=1` (spec composefs-v1 §14.4 item 2; §3.1: min 1 pins
 * cfs-version 1 whatever the input); only SHA-256 object digests give C-identical images (§14.4
 * item 1), hence the V1-sha256 flavour only. On disagreement both images are dumped by C
 * `composefs-info dump` and the first differing line is named.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { printDumpfile } from '../../src/composefs/dumpfile/print.js';
import type { Inode } from '../../src/composefs/format/tree.js';
import { findOracle } from '../oracles.js';
import { lastLine } from '../upstream/child.js';

export const CHECKER_NAME = 'mkcomposefs';
/** The flavour C can reproduce (spec composefs-v1 §14.4 item 1). */
export const CHECKED_FLAVOUR = 'v1-sha256';
export const MKCOMPOSEFS_FLAGS = ['--min-version=1', '--max-version=1'] as const;

interface Ran {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

async function run(bin: string, args: string[], input?: Buffer): Promise<Ran> {
  const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr = (stderr + s).slice(-8192)));
  child.stdin.on('error', () => {}); // a tool that exits early: its exit code says why
  child.stdin.end(input ?? Buffer.alloc(0));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout: Buffer.concat(out), stderr };
}

export type CheckResult = { ok: true; id: string } | { ok: false; reason: string; id?: string };

/** First differing line of two texts (1-based), or undefined when equal. */
export function firstDifferingLine(a: string, b: string): { line: number; a: string; b: string } | undefined {
  const x = a.split('\n');
  const y = b.split('\n');
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if (x[i] !== y[i]) return { line: i + 1, a: x[i] ?? '<end>', b: y[i] ?? '<end>' };
  }
  return undefined;
}

const clip = (s: string) => (s.length > 160 ? `${s.slice(0, 160)}…` : s);

/**
 * Builds the image with C mkcomposefs from `tree`'s dumpfile (in `workDir`) and compares its
 * SHA-256 fs-verity digest with `ourId`, the ID our writer gave the same tree. `ourImage` is only
 * read to explain a disagreement.
 */
export async function checkWithMkcomposefs(
  tree: Inode,
  ourImage: Buffer,
  ourId: string,
  workDir: string,
): Promise<CheckResult> {
  const mk = findOracle('mkcomposefs');
  if (!mk.available) return { ok: false, reason: mk.reason };
  const dump = printDumpfile(tree, { format: 'composefs-info' });
  const cImage = path.join(workDir, 'c-mkcomposefs.img');
  const r = await run(mk.path, [...MKCOMPOSEFS_FLAGS, '--print-digest', '--from-file', '-', cImage], dump);
  if (r.code !== 0) {
    return { ok: false, reason: `C mkcomposefs refused our dumpfile: exit ${r.code}: ${lastLine(r.stderr)}` };
  }
  const id = r.stdout.toString('utf8').trim();
  if (id === ourId) return { ok: true, id };
  return { ok: false, id, reason: await explain({ ourImage, ourId, cImage, cId: id }, workDir) };
}

/** The two images and IDs that disagree: ours (bytes) and C mkcomposefs's (a file). */
interface Disagreement {
  ourImage: Buffer;
  ourId: string;
  cImage: string;
  cId: string;
}

/** One line saying where the two images differ: the first differing dumpfile line, else byte. */
async function explain(d: Disagreement, workDir: string): Promise<string> {
  const { ourImage, ourId, cImage, cId } = d;
  const head = `C mkcomposefs ${CHECKED_FLAVOUR} ID ${cId.slice(0, 16)}… differs from ours (odh) ${ourId.slice(0, 16)}…`;
  const info = findOracle('composefs-info');
  if (!info.available) return `${head}; no composefs-info to compare dumps`;
  const ours = path.join(workDir, 'odh.img');
  await fs.writeFile(ours, ourImage);
  const [a, b] = await Promise.all([run(info.path, ['dump', ours]), run(info.path, ['dump', cImage])]);
  const line = firstDifferingLine(a.stdout.toString('latin1'), b.stdout.toString('latin1'));
  if (line)
    return `${head}; first differing dumpfile line ${line.line}: odh ${clip(line.a)} | C ${clip(line.b)}`;
  const c = await fs.readFile(cImage);
  let i = 0;
  while (i < Math.min(c.length, ourImage.length) && c[i] === ourImage[i]) i++;
  return `${head}; equal dumps, images first differ at byte ${i}`;
}
