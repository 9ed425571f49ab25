/**
 * The ordered worker pool (src/util/pool.ts) shared by apply, create and the conformance matrix.
 * Tasks finish when the test says so (deferred promises), never after a delay: the order of events
 * is what is checked, not time.
 */
import { describe, expect, it } from 'vitest';
import { runOrdered } from '../../src/util/pool.js';

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets every pending promise callback run. */
const settle = () => new Promise<void>((r) => setImmediate(r));

/** A pool over `n` items whose work items finish only when released by the test. */
function controlled(n: number, concurrency: number, signal?: AbortSignal) {
  const gates = Array.from({ length: n }, () => deferred<string>());
  const log: string[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const signals: AbortSignal[] = [];
  const run = runOrdered({
    items: Array.from({ length: n }, (_, i) => `item${i}`),
    concurrency,
    ...(signal ? { signal } : {}),
    work: async (item, i, s) => {
      signals.push(s);
      log.push(`start ${i}`);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        return `${item}:${await gates[i]!.promise}`;
      } finally {
        log.push(`end ${i}`);
      }
    },
    commit: (r, i) => {
      log.push(`commit ${i}`);
      inFlight--;
      return r.toUpperCase();
    },
  });
  run.catch(() => {});
  return { run, gates, log, signals, maxInFlight: () => maxInFlight };
}

describe('runOrdered', () => {
  it('commits in input order and returns the results in input order, whatever order work ends in', async () => {
    const p = controlled(4, 4);
    await settle();
    for (const i of [3, 1, 2, 0]) {
      p.gates[i]!.resolve(`v${i}`);
      await settle();
    }
    expect(await p.run).toEqual(['ITEM0:V0', 'ITEM1:V1', 'ITEM2:V2', 'ITEM3:V3']);
    const commits = p.log.filter((l) => l.startsWith('commit'));
    expect(commits).toEqual(['commit 0', 'commit 1', 'commit 2', 'commit 3']);
    // item 3 finished first but was committed only after 0, 1 and 2
    expect(p.log.indexOf('end 3')).toBeLessThan(p.log.indexOf('commit 0'));
  });

  it('never has more than `concurrency` items between start and commit', async () => {
    const p = controlled(7, 2);
    await settle();
    expect(p.log).toEqual(['start 0', 'start 1']);
    // item 1 done but not committed (item 0 is not): its slot stays taken, nothing new starts
    p.gates[1]!.resolve('b');
    await settle();
    expect(p.log).toEqual(['start 0', 'start 1', 'end 1']);
    p.gates[0]!.resolve('a');
    await settle();
    expect([...p.log.slice(3)].sort()).toEqual(['commit 0', 'commit 1', 'end 0', 'start 2', 'start 3']);
    // each new item starts only once a slot's item is committed
    expect(p.log.indexOf('start 2')).toBeGreaterThan(p.log.indexOf('commit 0'));
    expect(p.log.indexOf('start 3')).toBeGreaterThan(p.log.indexOf('commit 1'));
    for (let i = 2; i < 7; i++) {
      p.gates[i]!.resolve(String(i));
      await settle();
    }
    expect(await p.run).toHaveLength(7);
    expect(p.maxInFlight()).toBe(2);
  });

  it('with concurrency 1 runs one item at a time, start to commit', async () => {
    const p = controlled(3, 1);
    for (let i = 0; i < 3; i++) {
      await settle();
      p.gates[i]!.resolve(String(i));
    }
    await p.run;
    expect(p.log).toEqual([
      'start 0',
      'end 0',
      'commit 0',
      'start 1',
      'end 1',
      'commit 1',
      'start 2',
      'end 2',
      'commit 2',
    ]);
  });

  it('throws the first error, after every started item settled; nothing new starts, later items are not committed', async () => {
    const p = controlled(6, 3);
    await settle();
    const boom = new Error('boom');
    p.gates[1]!.reject(boom);
    await settle();
    expect(p.signals.every((s) => s.aborted && s.reason === boom)).toBe(true);
    let done = false;
    void p.run.then(
      () => (done = true),
      () => (done = true),
    );
    // items 0 and 2 are still running: the pool waits for them
    await settle();
    expect(done).toBe(false);
    p.gates[2]!.reject(new Error('second'));
    p.gates[0]!.resolve('late');
    await expect(p.run).rejects.toBe(boom);
    expect(p.log.filter((l) => l.startsWith('start'))).toEqual(['start 0', 'start 1', 'start 2']);
    // item 0 finished after the failure: it was not committed
    expect(p.log).not.toContain('commit 0');
  });

  it('a failing commit stops the pool like a failing work', async () => {
    const err = new Error('commit failed');
    const started: number[] = [];
    const run = runOrdered({
      items: [0, 1, 2, 3, 4],
      concurrency: 1,
      work: async (x) => {
        started.push(x);
        return x;
      },
      commit: (x) => {
        if (x === 1) throw err;
        return x;
      },
    });
    await expect(run).rejects.toBe(err);
    expect(started).toEqual([0, 1]);
  });

  it("the caller's abort stops the pool and is what it throws", async () => {
    const caller = new AbortController();
    const p = controlled(5, 2, caller.signal);
    await settle();
    const reason = new Error('SIGINT');
    caller.abort(reason);
    await settle();
    expect(p.signals).toHaveLength(2);
    expect(p.signals.every((s) => s.aborted)).toBe(true);
    // the interrupted tasks fail with their own errors; the caller's reason wins
    p.gates[0]!.reject(new Error('interrupted 0'));
    p.gates[1]!.reject(new Error('interrupted 1'));
    await expect(p.run).rejects.toBe(reason);
    expect(p.log.filter((l) => l.startsWith('start'))).toEqual(['start 0', 'start 1']);
  });

  it('an already aborted signal starts nothing', async () => {
    const reason = new Error('already');
    let started = 0;
    const run = runOrdered({
      items: [1, 2],
      concurrency: 2,
      signal: AbortSignal.abort(reason),
      work: async () => ++started,
      commit: (x) => x,
    });
    await expect(run).rejects.toBe(reason);
    expect(started).toBe(0);
  });

  it('no items: an empty result; a bad concurrency is refused', async () => {
    expect(await runOrdered({ items: [], concurrency: 4, work: async () => 1, commit: (x) => x })).toEqual(
      [],
    );
    await expect(
      runOrdered({ items: [1], concurrency: 0, work: async () => 1, commit: (x) => x }),
    ).rejects.toThrow(/concurrency/);
  });
});
