import { setMaxListeners } from 'node:events';

/**
 * The one worker pool of the project (apply's layers, create's new layers, the conformance
 * matrix's fixtures): `work` runs on up to `concurrency` items at once, `commit` runs strictly in
 * input order, one at a time. A worker keeps its slot until its item is committed, so at most
 * `concurrency` finished-but-uncommitted results (staged layer files) exist at once.
 *
 * The first failure (of `work` or `commit`) aborts the task signal, so no new item starts and
 * running ones can stop early; it is thrown once every started item has settled, so no task
 * outlives the call. An aborted caller `signal` does the same and throws its reason.
 */
export interface OrderedPoolOptions<T, R, C> {
  items: readonly T[];
  /** Items worked on at once (≥ 1; more than the item count is fine). */
  concurrency: number;
  signal?: AbortSignal;
  /** Runs concurrently; `signal` aborts on the first failure anywhere in the pool or the caller's abort. */
  work: (item: T, index: number, signal: AbortSignal) => Promise<R>;
  /** Runs in input order once `work(item)` and every earlier commit are done; its value is the result. */
  commit: (result: R, index: number, signal: AbortSignal) => Promise<C> | C;
}

/** Results of `commit`, in input order. */
export async function runOrdered<T, R, C>(opts: OrderedPoolOptions<T, R, C>): Promise<C[]> {
  const { items, concurrency } = opts;
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`pool concurrency must be a positive integer, got ${concurrency}`);
  }
  const stop = new AbortController();
  const signal = stop.signal;
  // Every item in flight may listen to the signal several times (stream pipelines): with a wide
  // pool that is many listeners by design, not a leak, so no MaxListenersExceededWarning.
  setMaxListeners(0, signal);
  const onCallerAbort = () => stop.abort(opts.signal!.reason);
  if (opts.signal?.aborted) onCallerAbort();
  else opts.signal?.addEventListener('abort', onCallerAbort, { once: true });

  const turns = new Turns(items.length, signal);
  const results: C[] = new Array<C>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (next < items.length && !signal.aborted) {
      const i = next++;
      try {
        const r = await opts.work(items[i]!, i, signal);
        await turns.wait(i);
        results[i] = await opts.commit(r, i, signal);
        turns.done(i);
      } catch (e) {
        failure ??= { error: e };
        stop.abort(e);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  } finally {
    opts.signal?.removeEventListener('abort', onCallerAbort);
  }
  // The caller's abort wins over the errors it caused in the tasks it interrupted.
  opts.signal?.throwIfAborted();
  if (failure) throw failure.error;
  return results;
}

/** Each item's "committed" event; an abort releases every waiter with the abort reason. */
class Turns {
  private readonly committed: Array<{ promise: Promise<void>; resolve: () => void }>;
  private readonly aborted: Promise<never>;

  constructor(
    count: number,
    private readonly signal: AbortSignal,
  ) {
    this.committed = Array.from({ length: count }, () => {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      return { promise, resolve };
    });
    this.aborted = new Promise<never>((_resolve, reject) => {
      if (signal.aborted) reject(signal.reason);
      signal.addEventListener('abort', () => reject(signal.reason), { once: true });
    });
    this.aborted.catch(() => {});
  }

  /** Resolves when every item before `index` is committed; rejects once the pool is stopped. */
  async wait(index: number): Promise<void> {
    this.signal.throwIfAborted();
    if (index > 0) await Promise.race([this.committed[index - 1]!.promise, this.aborted]);
  }

  done(index: number): void {
    this.committed[index]!.resolve();
  }
}
