/**
 * Sharding the conformance matrix over CI jobs (`odh conformance --shard I/N`) and merging the shard
 * results back (`odh conformance merge`).
 *
 * The unit of a shard is the fixture: every cell of a fixture shares its image build, ground truth
 * and one delta per creator, so splitting a fixture would repeat that work on several runners. The
 * assignment is deterministic (the same selection always gives the same slices) and balanced by a
 * cost estimate: longest-first onto the least loaded shard, ties broken by shard number.
 */
import { getFixture, selectFixtures } from '../../fixtures/catalog.js';
import { OdhError } from '../../src/util/errors.js';
import { exitCodeOf, summarize } from './summary.js';
import type { Cell, ConformanceResult, FixtureProblem, ImplementationStatus } from './types.js';

export interface Shard {
  /** 1-based. */
  index: number;
  count: number;
}

/** What a sharded run records next to its result so that `merge` can check and order the shards. */
export interface ShardInfo extends Shard {
  /** Every fixture of the whole selection, in run order (not only this shard's). */
  fixtures: string[];
  /** This shard's fixtures, in run order. */
  mine: string[];
}

export type ShardedResult = ConformanceResult & { shard?: ShardInfo };

/** Parses `I/N` (1 ≤ I ≤ N ≤ 1000). */
export function parseShard(text: string): Shard {
  const m = /^([1-9][0-9]{0,3})\/([1-9][0-9]{0,3})$/.exec(text);
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || index > count || count > 1000) {
    throw new OdhError('USAGE', `invalid --shard ${JSON.stringify(text)} (want I/N with 1 ≤ I ≤ N ≤ 1000)`);
  }
  return { index, count };
}

/** Relative cost of a fixture: big pairs (≥ 160 MiB) take far longer than the rest. */
function cost(name: string): number {
  try {
    return getFixture(name).big ? 8 : 1;
  } catch {
    return 1;
  }
}

/** The fixtures of shard `s` out of `all` (kept in `all`'s order). */
export function shardFixtures(all: readonly string[], s: Shard): string[] {
  const load = new Array<number>(s.count).fill(0);
  const owner = new Map<string, number>();
  const order = all.map((name, pos) => ({ name, pos, cost: cost(name) }));
  order.sort((a, b) => b.cost - a.cost || a.pos - b.pos);
  for (const f of order) {
    let best = 0;
    for (let i = 1; i < s.count; i++) if (load[i]! < load[best]!) best = i;
    load[best]! += f.cost;
    owner.set(f.name, best + 1);
  }
  return all.filter((name) => owner.get(name) === s.index);
}

const sameList = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && a.every((x, i) => x === b[i]);

/** Checks that `parts` are exactly the shards 1..N of one selection; returns them by shard index. */
function checkShards(parts: ShardedResult[], files: string[]): ShardedResult[] {
  const first = parts[0]!.shard!;
  const byIndex = new Map<number, ShardedResult>();
  parts.forEach((p, i) => {
    const s = p.shard;
    if (!s)
      throw new OdhError('FORMAT', 'not a sharded result (no "shard" field) next to sharded ones', {
        file: files[i],
      });
    if (s.count !== first.count || !sameList(s.fixtures, first.fixtures)) {
      throw new OdhError(
        'FORMAT',
        `shard ${s.index}/${s.count} belongs to a different run than shard ${first.index}/${first.count}`,
        { file: files[i] },
      );
    }
    if (byIndex.has(s.index))
      throw new OdhError('FORMAT', `shard ${s.index}/${s.count} given twice`, { file: files[i] });
    const expected = shardFixtures(s.fixtures, s);
    if (!sameList(s.mine, expected)) {
      throw new OdhError(
        'FORMAT',
        `shard ${s.index}/${s.count} ran fixtures ${s.mine.join(',') || '(none)'}, expected ${expected.join(',') || '(none)'}`,
        { file: files[i] },
      );
    }
    const stray = p.cells.find((c) => !s.mine.includes(c.fixture));
    if (stray)
      throw new OdhError(
        'FORMAT',
        `shard ${s.index}/${s.count} has a cell of fixture ${stray.fixture}, not one of its own`,
        { file: files[i] },
      );
    byIndex.set(s.index, p);
  });
  const missing = [...Array(first.count).keys()].map((i) => i + 1).filter((i) => !byIndex.has(i));
  if (missing.length) {
    throw new OdhError(
      'NOT_FOUND',
      `missing shard(s) ${missing.map((i) => `${i}/${first.count}`).join(', ')}: every shard's result is needed for one verdict`,
    );
  }
  return [...byIndex.keys()].sort((a, b) => a - b).map((i) => byIndex.get(i)!);
}

/**
 * Implementation availability across shards: one entry per role and name in first-seen order; if
 * shards disagree (different runners), the entry says unavailable with every shard's reason.
 */
function mergeImplementations(parts: ShardedResult[]): ImplementationStatus[] {
  const out = new Map<string, ImplementationStatus>();
  for (const p of parts) {
    for (const i of p.implementations) {
      const key = `${i.role}\u0000${i.name}`;
      const seen = out.get(key);
      if (!seen) out.set(key, i);
      else if (seen.available !== i.available) {
        const where = p.shard ? ` in shard ${p.shard.index}/${p.shard.count}` : '';
        const reason = [seen.reason, i.reason].filter(Boolean).join('; ');
        out.set(key, {
          role: i.role,
          name: i.name,
          available: false,
          reason: `available in some shards only${where}${reason ? `: ${reason}` : ''}`,
        });
      }
    }
  }
  return [...out.values()];
}

/**
 * One result from shard results: cells and fixture problems in the order one unsharded run gives
 * (fixtures in selection order; within a fixture the shard's own order, which is the matrix's),
 * and a summary recomputed from them. Seconds add up (total machine time).
 */
export function mergeResults(
  parts: ShardedResult[],
  files: string[] = parts.map((_, i) => `#${i + 1}`),
): ConformanceResult {
  if (parts.length === 0) throw new OdhError('USAGE', 'give at least one results file');
  const sharded = parts.some((p) => p.shard !== undefined);
  const ordered = sharded ? checkShards(parts, files) : parts;
  const fixtures = sharded
    ? ordered[0]!.shard!.fixtures
    : [...new Set(parts.flatMap((p) => p.cells.map((c) => c.fixture)))];
  const position = new Map(fixtures.map((f, i) => [f, i]));
  const byFixture = <T extends { fixture: string }>(xs: T[]) =>
    xs
      .map((x, i) => ({ x, i }))
      .sort((a, b) => (position.get(a.x.fixture) ?? 0) - (position.get(b.x.fixture) ?? 0) || a.i - b.i)
      .map((e) => e.x);
  const cells: Cell[] = byFixture(ordered.flatMap((p) => p.cells));
  const problems: FixtureProblem[] = byFixture(ordered.flatMap((p) => p.fixtureProblems));
  const seconds = ordered.reduce((s, p) => s + p.summary.seconds, 0);
  return {
    cells,
    implementations: mergeImplementations(ordered),
    fixtureProblems: problems,
    summary: summarize(cells, fixtures.length, problems, seconds),
  };
}

/** Reads a results file written by `odh conformance --json` (a shard's or a whole run's). */
export function parseResults(text: string, file: string): ShardedResult {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new OdhError('FORMAT', `not JSON: ${(e as Error).message}`, { file });
  }
  const r = v as Partial<ShardedResult> | null;
  if (
    !r ||
    !Array.isArray(r.cells) ||
    !Array.isArray(r.implementations) ||
    !Array.isArray(r.fixtureProblems) ||
    typeof r.summary !== 'object'
  ) {
    throw new OdhError('FORMAT', 'not a conformance result (want the JSON of odh conformance --json)', {
      file,
    });
  }
  return r as ShardedResult;
}

/** The shard's fixtures out of the selection (`--fixtures`, `--quick` or the defaults); undefined unsharded. */
export function shardSelection(
  shardText: string | undefined,
  names: string[] | undefined,
  quick: boolean | undefined,
): ShardInfo | undefined {
  if (shardText === undefined) return undefined;
  const s = parseShard(shardText);
  const fixtures = selectFixtures({ names, quick }).map((f) => f.name);
  return { ...s, fixtures, mine: shardFixtures(fixtures, s) };
}

/**
 * A shard's result carries its ShardInfo (merge checks and orders by it). A shard that got no
 * fixture (more shards than fixtures) has nothing to fail: exit 0; the merged verdict judges.
 */
export function withShard(
  r: ConformanceResult,
  sel: ShardInfo | undefined,
): { result: ShardedResult; exitCode: number } {
  if (!sel) return { result: r, exitCode: exitCodeOf(r.summary) };
  const empty = sel.mine.length === 0 && r.fixtureProblems.length === 0;
  return { result: { ...r, shard: sel }, exitCode: empty ? 0 : exitCodeOf(r.summary) };
}
