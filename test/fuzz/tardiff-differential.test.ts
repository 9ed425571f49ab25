/**
 * Differential fuzzing of tar-diff against the Go reference (containers/tar-diff 0.1.2), on seeded
 * random tar pairs (test/fuzz/tar-pairs.ts):
 *   1. Go `tar-diff old new` → our applier over the extracted old tree must give the new tar, byte
 *      for byte;
 *   2. our tar-diff in every mode that writes tardf1 → Go `tar-patch` must give the new tar.
 * The expected bytes are the new tar itself; the foreign tool is on one side of every check.
 *
 * Default: as many seeds as fit about 45 s (at most DEFAULT_SEEDS). `ODH_FUZZ_SEEDS=N` runs N seeds
 * from `ODH_FUZZ_FIRST` (default 1); `ODH_FUZZ_SEED=S` runs one. A failure names the seed and a
 * one-line reproduction. The summary prints the delta sizes of Go bsdiff vs each of our modes.
 */
import { spawnSync } from 'node:child_process';
import { createReadStream, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { DirectorySource } from '../../src/image-source/directory.js';
import { applyTarDiff } from '../../src/tardiff/apply.js';
import { createTarDiff, layerFile, type TarDiffMode } from '../../src/tardiff/create/index.js';
import { hasOracle, oraclePath } from '../helpers/oracles.js';
import { REPO_ROOT } from '../helpers/shared.js';
import { tarPair, type Entry } from './tar-pairs.js';

const ODH = path.join(REPO_ROOT, 'dist', 'bin', 'odh.js');
const DEFAULT_SEEDS = 400;
const DEFAULT_BUDGET_MS = 45_000;
const env = process.env;
const one = env.ODH_FUZZ_SEED ? Number(env.ODH_FUZZ_SEED) : undefined;
const first = one ?? Number(env.ODH_FUZZ_FIRST ?? 1);
const count = one !== undefined ? 1 : Number(env.ODH_FUZZ_SEEDS ?? DEFAULT_SEEDS);
const budgetMs = env.ODH_FUZZ_SEEDS || one !== undefined ? Infinity : DEFAULT_BUDGET_MS;

/** Our creator's modes, as `odh tar-diff --help` lists them (new modes join without edits here). */
function creatorModes(): string[] {
  const r = spawnSync('node', [ODH, 'tar-diff', '--help'], { encoding: 'utf8' });
  const m = /--binary-diff[\s\S]*?\(choices:([^)]*)\)/.exec(r.stdout);
  if (!m) throw new Error(`cannot read the --binary-diff choices from odh tar-diff --help:\n${r.stdout}`);
  // commander wraps the line anywhere and appends `default: "…"`: keep only the choices themselves
  const choices = m[1]!.split('default:')[0]!;
  return [...choices.matchAll(/"([^"]+)"/g)].map((x) => x[1]!);
}

/** Writes the old tree as tar-patch expects it extracted (hardlinks as copies, symlinks as links). */
async function extract(entries: Entry[], dir: string): Promise<void> {
  const files = new Map<string, Buffer>();
  for (const e of entries) {
    const p = Buffer.concat([Buffer.from(`${dir}/`), e.name]);
    if (e.kind === 'dir') await fs.mkdir(p, { recursive: true });
    else if (e.kind === 'file') {
      await fs.writeFile(p, e.data);
      files.set(e.name.toString('latin1'), e.data);
    } else if (e.kind === 'hardlink') {
      const data = files.get(e.target.toString('latin1'));
      if (data) await fs.writeFile(p, data);
    } else await fs.symlink(e.target, p);
  }
}

async function ourPatch(delta: string, dir: string): Promise<Buffer & { ops: Record<string, number> }> {
  const parts: Buffer[] = [];
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      parts.push(c);
      cb();
    },
  });
  const src = await DirectorySource.create(dir);
  const r = await applyTarDiff(createReadStream(delta), src, sink);
  return Object.assign(Buffer.concat(parts), { ops: r.ops });
}

function goRun(tool: 'tar-diff' | 'tar-patch', args: string[]): Buffer {
  const r = spawnSync(oraclePath(tool), args, { maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`Go ${tool} ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return r.stdout;
}

interface Sizes {
  go: number;
  ours: Record<string, number>;
  /** Open and Copy ops the Go deltas used (the fuzzing must exercise old-file reuse, not only Data). */
  goOpens: number;
  goCopies: number;
}

/**
 * One pair through both directions; throws on any difference. `corrupt` (the check that the check
 * can fail) flips the first byte of every old file after the deltas' sources were read.
 */
async function oneSeed(
  seed: number,
  modes: string[],
  work: string,
  sizes: Sizes,
  corrupt = false,
): Promise<void> {
  const dir = path.join(work, String(seed));
  await fs.mkdir(dir);
  try {
    const pair = tarPair(seed);
    const oldTar = path.join(dir, 'old.tar');
    const newTar = path.join(dir, 'new.tar');
    const tree = path.join(dir, 'old');
    await fs.writeFile(oldTar, pair.oldTar);
    await fs.writeFile(newTar, pair.newTar);
    await fs.mkdir(tree);
    await extract(pair.old, tree);
    if (corrupt) {
      for (const e of pair.old) {
        if (e.kind !== 'file' || e.data.length === 0) continue;
        const data = Buffer.from(e.data);
        data[0]! ^= 0xff;
        await fs.writeFile(Buffer.concat([Buffer.from(`${tree}/`), e.name]), data);
      }
    }
    // 1. Go tar-diff → our tar-patch.
    const goDelta = path.join(dir, 'go.tardiff');
    goRun('tar-diff', [oldTar, newTar, goDelta]);
    sizes.go += (await fs.stat(goDelta)).size;
    const rebuilt = await ourPatch(goDelta, tree);
    sizes.goOpens += rebuilt.ops.Open ?? 0;
    sizes.goCopies += rebuilt.ops.Copy ?? 0;
    if (!rebuilt.equals(pair.newTar)) {
      throw new Error(`Go tar-diff → odh tar-patch: ${firstDiff(rebuilt, pair.newTar)}`);
    }
    // 2. our tar-diff (each tardf1 mode) → Go tar-patch.
    for (const mode of modes) {
      const ours = path.join(dir, `${mode}.tardiff`);
      const made = await createTarDiff({
        oldLayers: [layerFile(oldTar)],
        newLayer: newTar,
        mode: mode as TarDiffMode,
        tempDir: dir,
        out: ours,
      });
      sizes.ours[mode] = (sizes.ours[mode] ?? 0) + made.bytes;
      const out = path.join(dir, `${mode}.out.tar`);
      goRun('tar-patch', [ours, tree, out]);
      const got = await fs.readFile(out);
      if (!got.equals(pair.newTar))
        throw new Error(`odh tar-diff --binary-diff ${mode} → Go tar-patch: ${firstDiff(got, pair.newTar)}`);
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

function firstDiff(a: Buffer, b: Buffer): string {
  let i = 0;
  while (i < Math.min(a.length, b.length) && a[i] === b[i]) i++;
  return `output differs from the new tar at byte ${i} (${a.length} vs ${b.length} bytes)`;
}

describe.skipIf(!(hasOracle('tar-diff') && hasOracle('tar-patch')))(
  'differential fuzzing vs Go tar-diff 0.1.2',
  () => {
    it('Go tar-diff → odh tar-patch, and odh tar-diff (every tardf1 mode) → Go tar-patch, rebuild the new tar', async () => {
      // Only modes that write tardf1 can go to tar-patch 0.1.2; decided by what each mode writes.
      const modes: string[] = [];
      const work = await fs.mkdtemp(path.join(os.tmpdir(), 'odh-fuzz-'));
      try {
        const probe = tarPair(0);
        await fs.writeFile(path.join(work, 'o.tar'), probe.oldTar);
        await fs.writeFile(path.join(work, 'n.tar'), probe.newTar);
        for (const mode of creatorModes()) {
          const r = await createTarDiff({
            oldLayers: [layerFile(path.join(work, 'o.tar'))],
            newLayer: path.join(work, 'n.tar'),
            mode: mode as TarDiffMode,
            tempDir: work,
            out: path.join(work, `probe-${mode}`),
          });
          if (r.version === 1) modes.push(mode);
        }
        expect(modes).toContain('copy');
        const sizes: Sizes = { go: 0, ours: {}, goOpens: 0, goCopies: 0 };
        const t0 = Date.now();
        let ran = 0;
        for (let seed = first; seed < first + count && Date.now() - t0 < budgetMs; seed++) {
          try {
            await oneSeed(seed, modes, work, sizes);
          } catch (e) {
            const repro = `ODH_FUZZ_SEED=${seed} npx vitest run test/fuzz/tardiff-differential.test.ts`;
            throw new Error(`seed ${seed}: ${(e as Error).message}\n  reproduce: ${repro}`, { cause: e });
          }
          ran++;
        }
        const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
        process.stderr.write(
          `\ndifferential fuzz: ${ran} seeds (${first}..${first + ran - 1}) all equal in ${((Date.now() - t0) / 1000).toFixed(1)} s; ` +
            `tardf1 modes: ${modes.join(', ')}\n  delta bytes: Go bsdiff ${kib(sizes.go)}` +
            Object.entries(sizes.ours)
              .map(
                ([m, n]) => `, odh ${m} ${kib(n)} (${((100 * n) / Math.max(1, sizes.go)).toFixed(0)}% of Go)`,
              )
              .join('') +
            `\n  the Go deltas used ${sizes.goOpens} Open and ${sizes.goCopies} Copy ops\n`,
        );
        expect(ran).toBeGreaterThanOrEqual(Math.min(count, 20));
        // The pairs must make the Go creator reuse old files, not only emit literal data.
        expect(sizes.goOpens).toBeGreaterThan(0);
        expect(sizes.goCopies).toBeGreaterThan(0);
      } finally {
        await fs.rm(work, { recursive: true, force: true });
      }
    }, 3_600_000);

    it('the check can fail: old files changed under the deltas give a difference in both directions', async () => {
      const work = await fs.mkdtemp(path.join(os.tmpdir(), 'odh-fuzz-neg-'));
      try {
        const sizes: Sizes = { go: 0, ours: {}, goOpens: 0, goCopies: 0 };
        // The first seed whose Go delta copies from old files: corrupting those must show.
        let seed = 1;
        for (; seed < 50; seed++) {
          const before = sizes.goCopies;
          await oneSeed(seed, ['copy'], work, sizes);
          if (sizes.goCopies > before) break;
        }
        await expect(oneSeed(seed, [], work, sizes, true)).rejects.toThrow(/Go tar-diff → odh tar-patch/);
        // Direction 2 on its own (direction 1 fails first in oneSeed).
        await expect(oneSeedOursOnly(seed, work)).rejects.toThrow(/→ Go tar-patch/);
      } finally {
        await fs.rm(work, { recursive: true, force: true });
      }
    }, 120_000);
  },
);

/** Direction 2 alone over a corrupted old tree (our copy-mode delta → Go tar-patch). */
async function oneSeedOursOnly(seed: number, work: string): Promise<void> {
  const dir = path.join(work, `ours-${seed}`);
  await fs.mkdir(dir);
  try {
    const pair = tarPair(seed);
    await fs.writeFile(path.join(dir, 'old.tar'), pair.oldTar);
    await fs.writeFile(path.join(dir, 'new.tar'), pair.newTar);
    const tree = path.join(dir, 'old');
    await fs.mkdir(tree);
    await extract(pair.old, tree);
    const delta = path.join(dir, 'd');
    await createTarDiff({
      oldLayers: [layerFile(path.join(dir, 'old.tar'))],
      newLayer: path.join(dir, 'new.tar'),
      mode: 'copy',
      tempDir: dir,
      out: delta,
    });
    for (const e of pair.old) {
      if (e.kind !== 'file' || e.data.length === 0) continue;
      const data = Buffer.from(e.data);
      data[0]! ^= 0xff;
      await fs.writeFile(Buffer.concat([Buffer.from(`${tree}/`), e.name]), data);
    }
    goRun('tar-patch', [delta, tree, path.join(dir, 'out.tar')]);
    const got = await fs.readFile(path.join(dir, 'out.tar'));
    if (!got.equals(pair.newTar)) throw new Error(`odh copy → Go tar-patch: ${firstDiff(got, pair.newTar)}`);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
