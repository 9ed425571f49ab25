import { OdhError } from '../util/errors.js';

/**
 * Retries for every HTTP transfer of the project (registry client, upstream downloads): one idea of
 * what is worth another try, one backoff, one deadline that retries never extend.
 */

/** A failure worth retrying: 429, 5xx, a connection refused or reset, a timeout, a broken body. */
export class TransientError extends OdhError {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super('UNAVAILABLE', message);
  }
}

const MAX_BACKOFF_MS = 8000;

/**
 * The deadline of one operation: a signal that aborts when the time is up or `cancel` aborts (the
 * run's SIGINT/SIGTERM/SIGHUP). Every try of the operation shares it. No budget: `cancel` only.
 */
export class Deadline {
  readonly signal: AbortSignal;
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly ends: number;

  constructor(what: string, budgetMs: number | undefined, cancel: AbortSignal) {
    if (budgetMs === undefined) {
      this.ends = Infinity;
      this.signal = cancel;
      return;
    }
    const ac = new AbortController();
    this.ends = Date.now() + budgetMs;
    this.timer = setTimeout(() => {
      const secs = Math.round(budgetMs / 100) / 10;
      ac.abort(new OdhError('UNAVAILABLE', `${what}: not done within ${secs} s (deadline; see --timeout)`));
    }, budgetMs);
    this.timer.unref();
    this.signal = AbortSignal.any([ac.signal, cancel]);
  }

  remainingMs(): number {
    return this.ends - Date.now();
  }

  dispose(): void {
    clearTimeout(this.timer);
  }
}

export interface RetryPolicy {
  /** Attempts, the first one included (at least 1). */
  tries: number;
  /** First backoff delay in ms, doubled each retry, capped at 8 s; Retry-After wins when sent. */
  backoffMs: number;
  /** Shared by every try; when it aborts, the try in flight is aborted and that is the error. */
  deadline: Deadline;
  /** Called before each retry (progress lines, statistics). */
  onRetry?: (attempt: number, reason: string) => void;
}

/**
 * Runs `fn` until it returns, fails with anything but a TransientError, or has failed `tries` times
 * or the next wait would pass the deadline; that last failure becomes UNAVAILABLE naming `what` and
 * the count of tries.
 */
export async function retrying<T>(
  what: string,
  fn: (signal: AbortSignal) => Promise<T>,
  policy: RetryPolicy,
): Promise<T> {
  const { deadline } = policy;
  const tries = Math.max(1, policy.tries);
  for (let attempt = 1; ; attempt++) {
    deadline.signal.throwIfAborted();
    try {
      return await fn(deadline.signal);
    } catch (e) {
      if (deadline.signal.aborted) throw deadline.signal.reason;
      if (!(e instanceof TransientError)) throw e;
      const wait = Math.min(e.retryAfterMs ?? policy.backoffMs * 2 ** (attempt - 1), MAX_BACKOFF_MS);
      if (attempt >= tries || wait >= deadline.remainingMs()) {
        const why = attempt >= tries ? `after ${attempt} tries` : `after ${attempt} tries (deadline)`;
        throw new OdhError('UNAVAILABLE', `${what} failed ${why}: ${e.message}`, {}, { cause: e });
      }
      policy.onRetry?.(attempt, e.message);
      await sleep(wait, deadline.signal);
    }
  }
}

/** Waits `ms`, or rejects with the signal's reason. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
