import { Deadline, retrying } from '../../net/retry.js';
import {
  discard,
  readBody,
  sendRequest,
  throwIfTransientStatus,
  type HttpRequest,
  type Response,
} from '../../net/request.js';
import { OdhError } from '../../util/errors.js';
import { runSignal } from '../../util/run.js';
import {
  basicAuthorization,
  findCredentials,
  parseChallenge,
  type Challenge,
  type Credentials,
} from './auth.js';

/**
 * The HTTP edge of the registry client (OCI distribution spec): one request with the auth dance
 * (anonymous → challenge → Basic or Bearer token), on the project's one HTTP layer (`src/net/`:
 * proxies from HTTPS_PROXY/HTTP_PROXY/NO_PROXY, bounded retries with backoff on 429/5xx and
 * connection errors, timeouts on headers and on every body read, one deadline per operation).
 */

export interface RegistryOptions {
  /** false: plain http:// (loopback test registries, `--tls-verify=false`). Default true (https). */
  tlsVerify?: boolean;
  /** Credentials; undefined → looked up in the auth files; null → anonymous only. */
  credentials?: Credentials | null;
  /** Attempts per operation, including the first (default 5). */
  tries?: number;
  /** First backoff delay in ms, doubled each retry, capped at 8 s (default 250). */
  backoffMs?: number;
  /** Longest wait for response headers and for each body read, ms (default 30 000, ≤ deadlineMs). */
  timeoutMs?: number;
  /**
   * Overall deadline of one operation (every try, backoff and resumption included), ms, plus the
   * time its known size takes at `minRate` (default 120 000; `--timeout`).
   */
  deadlineMs?: number;
  /** Slowest transfer rate the deadline allows for, bytes/s (default 64 KiB/s). */
  minRate?: number;
  /** Cancels every request (default: the run's SIGINT/SIGTERM/SIGHUP signal). */
  signal?: AbortSignal;
  /** Blobs larger than this are uploaded in PATCH chunks of this size (default 8 MiB). */
  chunkSize?: number;
  /** Called for each HTTP request sent (tests count them). */
  onRequest?: (method: string, url: string) => void;
}

/** What a client did, for `--json` reports and idempotence checks. */
export interface RegistryStats {
  requests: number;
  retries: number;
  blobsUploaded: number;
  blobsSkipped: number;
  blobsMounted: number;
  bytesUploaded: number;
  manifestsPushed: number;
}

/** The repository and access a request needs (the Bearer token scope). */
export interface RequestScope {
  repository: string;
  push: boolean;
  /** `repository:OTHER:pull` for cross-repository mounts. */
  alsoPull?: string;
}

export interface RegistryRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Path under the registry root (`/v2/…`) or an absolute URL (upload Location). */
  url: string;
  headers?: Record<string, string>;
  body?: Buffer;
  scope: RequestScope;
}

function isLoopback(host: string): boolean {
  const h = host.replace(/:[0-9]+$/, '');
  return h === 'localhost' || h === '[::1]' || /^127\./.test(h);
}

export class RegistryHttp {
  readonly base: string;
  readonly stats: RegistryStats = {
    requests: 0,
    retries: 0,
    blobsUploaded: 0,
    blobsSkipped: 0,
    blobsMounted: 0,
    bytesUploaded: 0,
    manifestsPushed: 0,
  };
  readonly tries: number;
  readonly timeoutMs: number;
  readonly deadlineMs: number;
  readonly minRate: number;
  readonly chunkSize: number;
  /** Every request of this client ends when this aborts. */
  readonly cancel: AbortSignal;
  private readonly backoffMs: number;
  private readonly credentials: Credentials | undefined;
  private readonly tokens = new Map<string, string>();
  private useBasic = false;

  constructor(
    readonly host: string,
    private readonly opts: RegistryOptions = {},
  ) {
    const tls = opts.tlsVerify ?? true;
    // Without TLS verification we speak plain HTTP; insecure HTTPS is not offered (fetch cannot
    // turn verification off per request), so it is meant for loopback registries.
    this.base = `${tls ? 'https' : 'http'}://${host}`;
    if (!tls && !isLoopback(host)) {
      process.emitWarning(`odh: using plain HTTP for non-loopback registry ${host} (--tls-verify=false)`);
    }
    this.credentials = opts.credentials === null ? undefined : (opts.credentials ?? findCredentials(host));
    this.tries = Math.max(1, opts.tries ?? 5);
    this.backoffMs = opts.backoffMs ?? 250;
    this.deadlineMs = opts.deadlineMs ?? 120_000;
    this.timeoutMs = Math.min(opts.timeoutMs ?? 30_000, this.deadlineMs);
    this.minRate = opts.minRate ?? 64 << 10;
    this.cancel = opts.signal ?? runSignal();
    this.chunkSize = opts.chunkSize ?? 8 << 20;
  }

  /** Resolves `url` (a `/v2/…` path or a Location header value) against the registry. */
  resolve(url: string): string {
    return new URL(url, `${this.base}/`).toString();
  }

  /** A deadline for an operation moving `size` bytes (unknown: the base deadline only). */
  deadline(what: string, size?: number): Deadline {
    const extra = size !== undefined && size > 0 ? Math.ceil((size * 1000) / this.minRate) : 0;
    return new Deadline(what, this.deadlineMs + extra, this.cancel);
  }

  /**
   * Runs `fn` up to `tries` times while it fails with a TransientError, waiting with exponential
   * backoff (or Retry-After), all within one deadline (`opts.deadline`, else one for `opts.size`):
   * when it passes or the run is cancelled, the request in flight is aborted and that is the error.
   * The last failure becomes UNAVAILABLE naming `what` and the count.
   */
  async retrying<T>(
    what: string,
    fn: (signal: AbortSignal) => Promise<T>,
    opts: { size?: number; deadline?: Deadline } = {},
  ): Promise<T> {
    const deadline = opts.deadline ?? this.deadline(what, opts.size);
    try {
      return await retrying(what, fn, {
        tries: this.tries,
        backoffMs: this.backoffMs,
        deadline,
        onRetry: () => this.stats.retries++,
      });
    } finally {
      if (!opts.deadline) deadline.dispose();
    }
  }

  /**
   * One request with authentication; the response headers have arrived. The caller must consume or
   * cancel the body (see `readBody`, `bodyChunks`, `discard`). 429/5xx and network failures throw
   * TransientError; a rejected login throws "authentication failed for HOST".
   */
  async send(req: RegistryRequest, signal: AbortSignal = this.cancel): Promise<Response> {
    const scopeKey = `repository:${req.scope.repository}:${req.scope.push ? 'pull,push' : 'pull'}`;
    let authorization = this.authorizationFor(scopeKey);
    let res = await this.fetchOnce(req, authorization, signal);
    if (res.status === 401) {
      const challenge = parseChallenge(res.headers.get('www-authenticate') ?? '');
      await discard(res);
      const next = await this.answer(challenge, scopeKey, req.scope.alsoPull, signal);
      if (next === undefined || next === authorization) throw this.authFailed();
      authorization = next;
      res = await this.fetchOnce(req, authorization, signal);
      if (res.status === 401) {
        await discard(res);
        throw this.authFailed();
      }
    }
    await throwIfTransientStatus(
      res,
      `registry ${this.host}: ${req.method} ${new URL(this.resolve(req.url)).pathname}`,
    );
    return res;
  }

  /** `registry HOST repo REPO[ what]`: how messages name where a fact was found. */
  where(repo: string, what?: string): string {
    return `registry ${this.host} repo ${repo}${what ? ` ${what}` : ''}`;
  }

  /** Throws the error for an unexpected status: NOT_FOUND (404), USAGE (403), else IO. */
  async fail(res: Response, repo: string, what: string): Promise<never> {
    const text = await errorText(res, this.timeoutMs);
    if (res.status === 404) throw new OdhError('NOT_FOUND', `${this.where(repo, what)}: not found (${text})`);
    if (res.status === 403) throw new OdhError('USAGE', `${this.where(repo, what)}: access denied (${text})`);
    throw new OdhError('IO', `${this.where(repo, what)}: ${text}`);
  }

  private authFailed(): OdhError {
    return new OdhError('USAGE', `authentication failed for ${this.host} (check credentials)`);
  }

  private authorizationFor(scopeKey: string): string | undefined {
    const token = this.tokens.get(scopeKey);
    if (token !== undefined) return `Bearer ${token}`;
    if (this.useBasic && this.credentials) return basicAuthorization(this.credentials);
    return undefined;
  }

  /** The Authorization value answering a challenge, or undefined when we have nothing to offer. */
  private async answer(
    ch: Challenge | undefined,
    scopeKey: string,
    alsoPull: string | undefined,
    signal: AbortSignal,
  ): Promise<string | undefined> {
    if (ch?.scheme === 'basic') {
      if (!this.credentials) return undefined;
      this.useBasic = true;
      return basicAuthorization(this.credentials);
    }
    if (ch?.scheme !== 'bearer' || !ch.params.realm) return undefined;
    const scopes = new Set<string>([scopeKey]);
    if (ch.params.scope) ch.params.scope.split(' ').forEach((s) => scopes.add(s));
    if (alsoPull) scopes.add(`repository:${alsoPull}:pull`);
    const token = await this.fetchToken(ch.params.realm, ch.params.service, [...scopes], signal);
    this.tokens.set(scopeKey, token);
    return `Bearer ${token}`;
  }

  /** Docker token protocol: GET realm?service=…&scope=… (Basic credentials when known). */
  private async fetchToken(
    realm: string,
    service: string | undefined,
    scopes: string[],
    signal: AbortSignal,
  ): Promise<string> {
    const url = new URL(realm);
    if (service) url.searchParams.set('service', service);
    for (const s of scopes) url.searchParams.append('scope', s);
    const headers: Record<string, string> = {};
    if (this.credentials) headers.authorization = basicAuthorization(this.credentials);
    const res = await this.fetchRaw({ method: 'GET', url: url.toString(), headers }, signal);
    if (res.status === 401 || res.status === 403) {
      await discard(res);
      throw this.authFailed();
    }
    await throwIfTransientStatus(res, `token endpoint ${url.host}`);
    if (res.status !== 200) {
      await discard(res);
      throw new OdhError('IO', `token endpoint ${url.host} answered HTTP ${res.status} for ${this.host}`);
    }
    const body = await readBody(res, 1 << 20, this.timeoutMs, `token from ${url.host}`);
    let o: { token?: unknown; access_token?: unknown };
    try {
      o = JSON.parse(body.toString('utf8')) as typeof o;
    } catch {
      throw new OdhError('FORMAT', `token endpoint ${url.host} sent no JSON for ${this.host}`);
    }
    const t = typeof o.token === 'string' ? o.token : o.access_token;
    if (typeof t !== 'string' || t === '') {
      throw new OdhError('FORMAT', `token endpoint ${url.host} sent no token for ${this.host}`);
    }
    return t;
  }

  private fetchOnce(
    req: RegistryRequest,
    authorization: string | undefined,
    signal: AbortSignal,
  ): Promise<Response> {
    const headers: Record<string, string> = { ...req.headers };
    if (authorization) headers.authorization = authorization;
    return this.fetchRaw({ method: req.method, url: this.resolve(req.url), headers, body: req.body }, signal);
  }

  /** One request with the client's timeout and signal; network failures become TransientError. */
  private fetchRaw(req: Omit<HttpRequest, 'what'>, signal: AbortSignal): Promise<Response> {
    signal.throwIfAborted();
    this.stats.requests++;
    this.opts.onRequest?.(req.method, req.url);
    const what = `registry ${this.host}: ${req.method} ${new URL(req.url).pathname}`;
    return sendRequest({ ...req, what }, { timeoutMs: this.timeoutMs, signal });
  }
}

/** One-line text of a registry error body (`{"errors":[{"code","message"}]}`), for messages. */
export async function errorText(res: Response, timeoutMs: number): Promise<string> {
  let body: Buffer;
  try {
    body = await readBody(res, 64 << 10, timeoutMs, 'error body');
  } catch {
    return `HTTP ${res.status}`;
  }
  try {
    const o = JSON.parse(body.toString('utf8')) as { errors?: Array<{ code?: string; message?: string }> };
    const e = o.errors?.[0];
    if (e)
      return `HTTP ${res.status} ${e.code ?? ''}${e.message ? `: ${e.message}` : ''}`.replace(/\s+/g, ' ');
  } catch {
    /* not JSON */
  }
  return `HTTP ${res.status}`;
}
