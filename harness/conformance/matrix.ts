/**
 * The conformance matrix: for each fixture pair, every available creator makes a delta, every
 * available applier reconstructs the new image from it, and each result is proven equal to the new
 * image by diff_ids and composefs image IDs (verify.ts). Cells are run one at a time (timings are
 * comparable); all work happens in one private temp directory removed at the end.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { buildFixture, defaultCacheDir, type BuiltFixture } from '../../fixtures/build.js';
import { expectedPins } from '../../fixtures/expected.js';
import { composefsImage } from '../../src/composefs/oci/image-id.js';
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
import { runOrdered } from '../../src/util/pool.js';
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
  const creatorStatus = await availability('creator', opts.creators);
  const applierStatus = await availability('applier', opts.appliers);
  const cells: Cell[] = [];
  const problems: FixtureProblem[] = [];
  const { dir: work, cleanup } = await runTempDir('conformance', opts.tempParent);
  const m: MatrixRun = {
    opts,
    cacheDir: opts.cacheDir ?? defaultCacheDir(),
    creatorStatus,
    applierStatus,
    work,
  };
  try {
    // One fixture at a time, so the timings of the cells are comparable; the pool keeps the order
    // of the results and stops at the first harness failure.
    await runOrdered({
      items: opts.fixtures,
      concurrency: 1,
      work: (fixture) => runFixture(m, fixture),
      commit: (r) => {
        problems.push(...r.problems);
        cells.push(...r.cells);
      },
    });
  } finally {
    opts.progress?.done();
    await cleanup();
  }
  return {
    cells,
    implementations: [...creatorStatus, ...applierStatus],
    fixtureProblems: problems,
    summary: summarize(cells, opts.fixtures.length, problems, (Date.now() - t0) / 1000),
  };
}

/** One matrix run: its options, what is available, its private temp directory. */
interface MatrixRun {
  opts: MatrixOptions;
  cacheDir: string;
  creatorStatus: ImplementationStatus[];
  applierStatus: ImplementationStatus[];
  work: string;
}

/** One fixture's image pair, its ground truth and its working directory. */
interface FixtureRun {
  fixture: string;
  built: BuiltFixture;
  truth: GroundTruth;
  dir: string;
}

/** A cell's fields other than those a row (fixture × creator) and a flavour fix. */
type CellFields = Omit<Cell, 'fixture' | 'creator' | 'applier' | 'format' | 'hash' | 'fullBytes'>;

/** One creator's row of a fixture: the cells so far and the delta it made. */
interface CreatorRow {
  fx: FixtureRun;
  creator: DeltaCreator;
  cells: Cell[];
}

/** The delta a creator made, and what the cells record of it. */
interface MadeDelta {
  path: string;
  versions: Set<number>;
  made: Pick<Cell, 'deltaBytes' | 'createSeconds' | 'createPeakRssKiB'>;
}

async function runFixture(
  m: MatrixRun,
  fixture: string,
): Promise<{ cells: Cell[]; problems: FixtureProblem[] }> {
  const progress = m.opts.progress;
  progress?.step(`${fixture}: building the image pair`);
  let fx: FixtureRun;
  try {
    const built = await buildFixture(fixture, m.cacheDir);
    progress?.step(`${fixture}: ground truth (diff_ids, composefs IDs of the new image)`);
    const truth = await groundTruth(built.new.ref, m.opts.flavours, expectedPins(fixture));
    fx = { fixture, built, truth, dir: path.join(m.work, fixture) };
  } catch (e) {
    return {
      cells: [],
      problems: [{ fixture, reason: `cannot build or measure the fixture: ${message(e)}` }],
    };
  }
  const problems = fx.truth.problems.map((reason) => ({ fixture, reason }));
  const cells: Cell[] = [];
  await fs.mkdir(fx.dir);
  for (const [ci, creator] of m.opts.creators.entries()) {
    const row: CreatorRow = { fx, creator, cells };
    const cs = m.creatorStatus[ci]!;
    if (!cs.available) {
      for (const a of m.opts.appliers)
        fillRow(m, row, a, { status: 'skipped', reason: `creator ${creator.name}: ${cs.reason}` });
      continue;
    }
    const made = await createDelta(m, row);
    if (!made) continue;
    for (const ai of m.opts.appliers.keys()) await runCell(m, row, made, ai);
    await fs.rm(made.path, { force: true });
  }
  await fs.rm(fx.dir, { recursive: true, force: true });
  return { cells, problems };
}

function foreignPair(creator: DeltaCreator, applier: DeltaApplier): boolean {
  return creator.foreign === true || applier.foreign === true;
}

/** The same verdict for every flavour of one row × applier. */
function fillRow(m: MatrixRun, row: CreatorRow, applier: DeltaApplier, c: CellFields): void {
  // Skips here are unavailability or capability: never required; errors always are.
  const required = c.status !== 'skipped';
  for (const f of m.opts.flavours)
    row.cells.push({
      ...rowBase(row),
      applier: applier.name,
      ...f,
      ...c,
      foreign: foreignPair(row.creator, applier),
      required,
    });
}

function rowBase(row: CreatorRow): Pick<Cell, 'fixture' | 'creator' | 'fullBytes'> {
  return { fixture: row.fx.fixture, creator: row.creator.name, fullBytes: row.fx.truth.fullBytes };
}

/** Makes the row's delta; on failure fills the row with errors and returns undefined. */
async function createDelta(m: MatrixRun, row: CreatorRow): Promise<MadeDelta | undefined> {
  const { fx, creator } = row;
  const delta = path.join(fx.dir, `${creator.name}.delta.oci-archive`);
  m.opts.progress?.step(`${fx.fixture}: create with ${creator.name}`);
  try {
    const created = await creator.create(fx.built.old.path, fx.built.new.path, delta);
    const deltaBytes = (await fs.stat(delta)).size;
    const versions = new Set(
      (await inspectDelta(delta)).layers.flatMap((l) => (l.tarDiffVersion ? [l.tarDiffVersion] : [])),
    );
    const made = {
      deltaBytes,
      createSeconds: created.seconds,
      ...(created.peakRssKiB !== undefined ? { createPeakRssKiB: created.peakRssKiB } : {}),
    };
    return { path: delta, versions, made };
  } catch (e) {
    for (const a of m.opts.appliers)
      fillRow(m, row, a, { status: 'error', reason: `create failed: ${message(e)}` });
    return undefined;
  }
}

/** Why an applier cannot take this delta (unavailable, or a tar-diff version it cannot read). */
function skipReason(m: MatrixRun, made: MadeDelta, ai: number): string | undefined {
  const applier = m.opts.appliers[ai]!;
  const as = m.applierStatus[ai]!;
  if (!as.available) return `applier ${applier.name}: ${as.reason}`;
  const unreadable = [...made.versions].find((v) => !applier.readsTarDiff(v as 1 | 2));
  if (unreadable === undefined) return undefined;
  return (
    applier.unreadableReason ??
    `applier ${applier.name} cannot read tar-diff v${unreadable} (tardf${unreadable})`
  );
}

/** One applier on the row's delta: apply, then one verdict per flavour. */
async function runCell(m: MatrixRun, row: CreatorRow, made: MadeDelta, ai: number): Promise<void> {
  const applier = m.opts.appliers[ai]!;
  const skip = skipReason(m, made, ai);
  if (skip !== undefined) return fillRow(m, row, applier, { ...made.made, status: 'skipped', reason: skip });
  const { fx, creator } = row;
  const cellDir = path.join(fx.dir, `${creator.name}--${applier.name}`);
  const outDir = path.join(cellDir, 'out');
  const workDir = path.join(cellDir, 'work');
  await fs.mkdir(outDir, { recursive: true });
  await fs.mkdir(workDir);
  m.opts.progress?.step(`${fx.fixture}: apply ${creator.name} delta with ${applier.name}`);
  try {
    let run: ApplyRun;
    try {
      run = await applier.apply(made.path, fx.built.old.path, outDir, workDir);
    } catch (e) {
      // An applier refusing the delta's content (its diff_id check, a malformed tar-diff)
      // means the pair does not reconstruct the target: a mismatch, not a harness error.
      return fillRow(
        m,
        row,
        applier,
        isContentError(e)
          ? { ...made.made, status: 'mismatch', reason: `applier rejected the delta: ${message(e)}` }
          : { ...made.made, status: 'error', reason: `apply failed: ${message(e)}` },
      );
    }
    const applied = {
      ...made.made,
      applySeconds: run.seconds,
      ...(run.peakRssKiB !== undefined ? { applyPeakRssKiB: run.peakRssKiB } : {}),
    };
    m.opts.progress?.step(`${fx.fixture}: verify ${creator.name} → ${applier.name}`);
    const check = m.opts.mkcomposefs ? workDir : undefined;
    const foreign = foreignPair(creator, applier);
    for (const c of await verifyRun(run, fx.truth, m.opts.flavours, check)) {
      row.cells.push({ ...rowBase(row), applier: applier.name, ...applied, ...c, foreign });
    }
  } finally {
    await fs.rm(cellDir, { recursive: true, force: true });
  }
}

type Verdict = Pick<
  Cell,
  'format' | 'hash' | 'status' | 'reason' | 'diffIds' | 'expectedId' | 'actualId' | 'checkedBy' | 'required'
>;

/** The output's layers against the target's diff_ids, the same for every flavour. */
interface LayerCheck {
  diffIds: Verdict['diffIds'];
  /** Why the layers are not the target's. */
  mismatch?: string;
  /** The output could not be read for a reason other than its content. */
  error?: string;
}

/** What computing one flavour's composefs ID of the output gave. */
interface IdCheck {
  actualId?: string;
  /** The output's content stopped the ID (a content error of the tree builder). */
  content?: string;
  error?: string;
  cCheck?: Awaited<ReturnType<typeof checkWithMkcomposefs>>;
}

/** One verdict per flavour for one applier output. */
async function verifyRun(
  run: ApplyRun,
  truth: GroundTruth,
  flavours: readonly Flavour[],
  /** Set: check the V1-sha256 image with C mkcomposefs, working in this directory. */
  mkcomposefsDir?: string,
): Promise<Verdict[]> {
  const layers = await checkLayers(run, truth);
  const out: Verdict[] = [];
  for (const f of flavours) {
    const id = await checkId(run, f, mkcomposefsDir);
    out.push(verdict(f, truth.ids.get(flavourKey(f))!, layers, id));
  }
  return out;
}

async function checkLayers(run: ApplyRun, truth: GroundTruth): Promise<LayerCheck> {
  if (!run.outputImage) return { diffIds: 'not checked' };
  try {
    const mismatch = diffIdMismatch(truth.diffIds, await imageDiffIds(run.outputImage));
    return mismatch ? { diffIds: 'mismatch', mismatch } : { diffIds: 'ok' };
  } catch (e) {
    if (isContentError(e)) {
      return { diffIds: 'mismatch', mismatch: `output layers unreadable as the target: ${message(e)}` };
    }
    return { diffIds: 'not checked', error: `cannot read the output: ${message(e)}` };
  }
}

async function checkId(run: ApplyRun, f: Flavour, mkcomposefsDir: string | undefined): Promise<IdCheck> {
  const key = flavourKey(f);
  const given = run.composefsIds?.[key];
  if (given !== undefined) return { actualId: given };
  if (!run.outputImage) return {};
  let actualId: string | undefined;
  try {
    const built = await composefsImage(run.outputImage, f);
    actualId = built.id;
    if (!mkcomposefsDir || key !== CHECKED_FLAVOUR) return { actualId };
    return {
      actualId,
      cCheck: await checkWithMkcomposefs(built.tree, built.image, built.id, mkcomposefsDir),
    };
  } catch (e) {
    const failed = isContentError(e) ? { content: message(e) } : { error: message(e) };
    return { ...(actualId !== undefined ? { actualId } : {}), ...failed };
  }
}

/** Mismatch over error over skipped: any wrong content makes the cell a mismatch. */
function verdict(f: Flavour, expectedId: string, layers: LayerCheck, id: IdCheck): Verdict {
  const key = flavourKey(f);
  const { actualId } = id;
  const v: Verdict = {
    ...f,
    status: 'ok',
    reason: '',
    diffIds: layers.diffIds,
    expectedId,
    ...(actualId ? { actualId } : {}),
  };
  const reasons: string[] = [];
  if (layers.mismatch) reasons.push(layers.mismatch);
  if (id.cCheck?.ok) v.checkedBy = [CHECKER_NAME];
  else if (id.cCheck) reasons.push(id.cCheck.reason);
  if (actualId !== undefined && actualId !== expectedId) {
    reasons.push(`composefs ${key} ID ${actualId.slice(0, 16)}…, want ${expectedId.slice(0, 16)}…`);
  }
  // Over a layer already reported as wrong, the tree builder's own diff_id refusal adds nothing.
  if (id.content)
    reasons.push(
      layers.mismatch
        ? `no composefs ${key} ID (wrong layer content)`
        : `composefs ${key} ID not computable: ${id.content}`,
    );
  if (reasons.length) {
    v.status = 'mismatch';
    v.reason = reasons.join('; ');
  } else if (layers.error || id.error) {
    v.status = 'error';
    v.reason = (layers.error ?? id.error)!;
  } else if (actualId === undefined) {
    v.status = 'skipped';
    v.reason = `the applier yields no image and no ${key} ID`;
  }
  v.required = v.status !== 'skipped';
  return v;
}
