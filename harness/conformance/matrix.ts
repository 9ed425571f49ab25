/**
 * The conformance matrix: for each fixture pair, every available creator makes a delta, every
 * available applier reconstructs the new image from it, and each result is proven equal to the new
 * image by diff_ids and composefs image IDs (verify.ts). Cells are run one at a time (timings are
 * comparable); all work happens in one private temp directory removed at the end.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { buildFixture, defaultCacheDir } from '../../fixtures/build.js';
import { expectedPins } from '../../fixtures/expected.js';
import { composefsImage } from '../../src/composefs/image-id.js';
import { inspectDelta } from '../../src/delta/inspect.js';
import { isOdhError } from '../../src/util/errors.js';
import type { Progress } from '../../src/util/progress.js';
import type { ApplyRun, DeltaApplier, DeltaCreator } from '../implementations/types.js';
import {
  flavourKey,
  type Cell,
  type ConformanceResult,
  type Flavour,
  type FixtureProblem,
  type ImplementationStatus,
} from './types.js';
import { CHECKED_FLAVOUR, CHECKER_NAME, checkWithMkcomposefs } from './mkcomposefs.js';
import { diffIdMismatch, groundTruth, imageDiffIds, type GroundTruth } from './verify.js';
import { summarize } from './summary.js';
import { runTempDir } from '../../src/util/run.js';

export interface MatrixOptions {
  fixtures: string[];
  creators: DeltaCreator[];
  appliers: DeltaApplier[];
  flavours: readonly Flavour[];
  /** Fixture build cache (default: the user cache, see fixtures/build.ts). */
  cacheDir?: string;
  /** Parent of the private temp directory (default: the run's `$TMPDIR/odh-<pid>-*` directory). */
  tempParent?: string;
  /** Also build every V1-sha256 image with C mkcomposefs (checker `mkcomposefs`); needs the oracle. */
  mkcomposefs?: boolean;
  progress?: Progress;
}

function message(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]!;
}

/** Errors met while reading an applier's output mean its bytes are not the target's. */
function isContentError(e: unknown): boolean {
  return isOdhError(e) && ['DIGEST_MISMATCH', 'DIFF_ID_MISMATCH', 'FORMAT', 'TRUNCATED'].includes(e.code);
}

async function availability(
  role: ImplementationStatus['role'],
  impls: Array<DeltaCreator | DeltaApplier>,
): Promise<ImplementationStatus[]> {
  const out: ImplementationStatus[] = [];
  for (const i of impls) {
    const a = await i.available().catch((e: unknown) => ({ ok: false as const, reason: message(e) }));
    const foreign = i.foreign === true;
    out.push(
      a.ok
        ? {
            role,
            name: i.name,
            available: true,
            foreign,
            ...(a.version ? { version: a.version } : {}),
            ...(a.path ? { path: a.path } : {}),
          }
        : { role, name: i.name, available: false, foreign, reason: a.reason },
    );
  }
  return out;
}

export async function runMatrix(opts: MatrixOptions): Promise<ConformanceResult> {
  const t0 = Date.now();
  const progress = opts.progress;
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  const creatorStatus = await availability('creator', opts.creators);
  const applierStatus = await availability('applier', opts.appliers);
  const cells: Cell[] = [];
  const problems: FixtureProblem[] = [];
  const { dir: work, cleanup } = await runTempDir('conformance', opts.tempParent);
  try {
    for (const fixture of opts.fixtures) {
      progress?.step(`${fixture}: building the image pair`);
      let truth: GroundTruth;
      let built: Awaited<ReturnType<typeof buildFixture>>;
      try {
        built = await buildFixture(fixture, cacheDir);
        progress?.step(`${fixture}: ground truth (diff_ids, composefs IDs of the new image)`);
        truth = await groundTruth(built.new.ref, opts.flavours, expectedPins(fixture));
      } catch (e) {
        problems.push({ fixture, reason: `cannot build or measure the fixture: ${message(e)}` });
        continue;
      }
      for (const p of truth.problems) problems.push({ fixture, reason: p });
      const fixDir = path.join(work, fixture);
      await fs.mkdir(fixDir);
      for (const [ci, creator] of opts.creators.entries()) {
        const base = { fixture, creator: creator.name, fullBytes: truth.fullBytes };
        const foreignWith = (a: DeltaApplier) => creator.foreign === true || a.foreign === true;
        const cs = creatorStatus[ci]!;
        const fill = (
          applier: string,
          c: Omit<Cell, 'fixture' | 'creator' | 'applier' | 'format' | 'hash' | 'fullBytes'>,
        ) => {
          const a = opts.appliers.find((x) => x.name === applier)!;
          // Skips here are unavailability or capability: never required; errors always are.
          const required = c.status !== 'skipped';
          for (const f of opts.flavours)
            cells.push({ ...base, applier, ...f, ...c, foreign: foreignWith(a), required });
        };
        if (!cs.available) {
          for (const a of opts.appliers)
            fill(a.name, { status: 'skipped', reason: `creator ${creator.name}: ${cs.reason}` });
          continue;
        }
        const delta = path.join(fixDir, `${creator.name}.delta.oci-archive`);
        progress?.step(`${fixture}: create with ${creator.name}`);
        let created: { seconds: number; peakRssKiB?: number };
        let versions: Set<number>;
        let deltaBytes: number;
        try {
          created = await creator.create(built.old.path, built.new.path, delta);
          deltaBytes = (await fs.stat(delta)).size;
          versions = new Set(
            (await inspectDelta(delta)).layers.flatMap((l) => (l.tarDiffVersion ? [l.tarDiffVersion] : [])),
          );
        } catch (e) {
          for (const a of opts.appliers)
            fill(a.name, { status: 'error', reason: `create failed: ${message(e)}` });
          continue;
        }
        const made = {
          deltaBytes,
          createSeconds: created.seconds,
          ...(created.peakRssKiB !== undefined ? { createPeakRssKiB: created.peakRssKiB } : {}),
        };
        for (const [ai, applier] of opts.appliers.entries()) {
          const as = applierStatus[ai]!;
          if (!as.available) {
            fill(applier.name, {
              ...made,
              status: 'skipped',
              reason: `applier ${applier.name}: ${as.reason}`,
            });
            continue;
          }
          const unreadable = [...versions].find((v) => !applier.readsTarDiff(v as 1 | 2));
          if (unreadable !== undefined) {
            fill(applier.name, {
              ...made,
              status: 'skipped',
              reason:
                applier.unreadableReason ??
                `applier ${applier.name} cannot read tar-diff v${unreadable} (tardf${unreadable})`,
            });
            continue;
          }
          const cellDir = path.join(fixDir, `${creator.name}--${applier.name}`);
          const outDir = path.join(cellDir, 'out');
          const workDir = path.join(cellDir, 'work');
          await fs.mkdir(outDir, { recursive: true });
          await fs.mkdir(workDir);
          progress?.step(`${fixture}: apply ${creator.name} delta with ${applier.name}`);
          try {
            let run: ApplyRun;
            try {
              run = await applier.apply(delta, built.old.path, outDir, workDir);
            } catch (e) {
              // An applier refusing the delta's content (its diff_id check, a malformed tar-diff)
              // means the pair does not reconstruct the target: a mismatch, not a harness error.
              fill(
                applier.name,
                isContentError(e)
                  ? { ...made, status: 'mismatch', reason: `applier rejected the delta: ${message(e)}` }
                  : { ...made, status: 'error', reason: `apply failed: ${message(e)}` },
              );
              continue;
            }
            const applied = {
              ...made,
              applySeconds: run.seconds,
              ...(run.peakRssKiB !== undefined ? { applyPeakRssKiB: run.peakRssKiB } : {}),
            };
            progress?.step(`${fixture}: verify ${creator.name} → ${applier.name}`);
            const check = opts.mkcomposefs ? workDir : undefined;
            for (const c of await verifyRun(run, truth, opts.flavours, check)) {
              const foreign = foreignWith(applier);
              cells.push({ ...base, applier: applier.name, ...applied, ...c, foreign });
            }
          } finally {
            await fs.rm(cellDir, { recursive: true, force: true });
          }
        }
        await fs.rm(delta, { force: true });
      }
      await fs.rm(fixDir, { recursive: true, force: true });
    }
  } finally {
    progress?.done();
    await cleanup();
  }
  return {
    cells,
    implementations: [...creatorStatus, ...applierStatus],
    fixtureProblems: problems,
    summary: summarize(cells, opts.fixtures.length, problems, (Date.now() - t0) / 1000),
  };
}

type Verdict = Pick<
  Cell,
  'format' | 'hash' | 'status' | 'reason' | 'diffIds' | 'expectedId' | 'actualId' | 'checkedBy' | 'required'
>;

/** One verdict per flavour for one applier output. */
async function verifyRun(
  run: ApplyRun,
  truth: GroundTruth,
  flavours: readonly Flavour[],
  /** Set: check the V1-sha256 image with C mkcomposefs, working in this directory. */
  mkcomposefsDir?: string,
): Promise<Verdict[]> {
  let diffIds: Verdict['diffIds'] = 'not checked';
  let layerReason: string | undefined;
  let layerError: string | undefined;
  if (run.outputImage) {
    try {
      layerReason = diffIdMismatch(truth.diffIds, await imageDiffIds(run.outputImage));
      diffIds = layerReason ? 'mismatch' : 'ok';
    } catch (e) {
      if (isContentError(e)) {
        diffIds = 'mismatch';
        layerReason = `output layers unreadable as the target: ${message(e)}`;
      } else layerError = `cannot read the output: ${message(e)}`;
    }
  }
  const out: Verdict[] = [];
  for (const f of flavours) {
    const key = flavourKey(f);
    const expectedId = truth.ids.get(key)!;
    let actualId: string | undefined = run.composefsIds?.[key];
    let idError: string | undefined;
    let idContent: string | undefined;
    let cCheck: Awaited<ReturnType<typeof checkWithMkcomposefs>> | undefined;
    if (actualId === undefined && run.outputImage) {
      try {
        const built = await composefsImage(run.outputImage, f);
        actualId = built.id;
        if (mkcomposefsDir && key === CHECKED_FLAVOUR) {
          cCheck = await checkWithMkcomposefs(built.tree, built.image, built.id, mkcomposefsDir);
        }
      } catch (e) {
        if (isContentError(e)) idContent = message(e);
        else idError = message(e);
      }
    }
    const v: Verdict = {
      ...f,
      status: 'ok',
      reason: '',
      diffIds,
      expectedId,
      ...(actualId ? { actualId } : {}),
    };
    const reasons: string[] = [];
    if (layerReason) reasons.push(layerReason);
    if (cCheck?.ok) v.checkedBy = [CHECKER_NAME];
    else if (cCheck) reasons.push(cCheck.reason);
    if (actualId !== undefined && actualId !== expectedId) {
      reasons.push(`composefs ${key} ID ${actualId.slice(0, 16)}…, want ${expectedId.slice(0, 16)}…`);
    }
    // Over a layer already reported as wrong, the tree builder's own diff_id refusal adds nothing.
    if (idContent)
      reasons.push(
        layerReason
          ? `no composefs ${key} ID (wrong layer content)`
          : `composefs ${key} ID not computable: ${idContent}`,
      );
    if (reasons.length) {
      v.status = 'mismatch';
      v.reason = reasons.join('; ');
    } else if (layerError || idError) {
      v.status = 'error';
      v.reason = (layerError ?? idError)!;
    } else if (actualId === undefined) {
      v.status = 'skipped';
      v.reason = `the applier yields no image and no ${key} ID`;
    }
    v.required = v.status !== 'skipped';
    out.push(v);
  }
  return out;
}
