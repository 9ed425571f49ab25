import type { Dispatcher } from 'undici';
import { OdhError } from '../util/errors.js';

/**
 * Which proxy a request goes through, from HTTPS_PROXY / HTTP_PROXY / NO_PROXY (either case), and
 * the undici dispatcher that sends it there.
 *
 * Why not undici's EnvHttpProxyAgent itself: in undici 6 it prints an ExperimentalWarning on
 * stderr the first time it is built (our commands keep stderr to progress and one error line), and
 * its NO_PROXY entry `example.com` matches that host only, while curl and Go (skopeo, upstream
 * oci-delta) also match its subdomains. So the choice is made here and the request is handed to
 * undici's own Agent (direct) or ProxyAgent (through the proxy), which is all EnvHttpProxyAgent does.
 *
 * Loopback is not special: like curl and undici (unlike Go's net/http), a request to 127.0.0.1 goes
 * through a configured proxy unless NO_PROXY names it.
 */

function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name.toLowerCase()] ?? env[name.toUpperCase()];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

function defaultPort(u: URL): number {
  return u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
}

/**
 * NO_PROXY (curl/Go convention): comma- or space-separated hosts; `*` matches all; an entry matches
 * the host itself and its subdomains (a leading `.` is optional); `host:port` also requires the port.
 */
export function bypassesProxy(target: URL, noProxy: string | undefined): boolean {
  if (!noProxy) return false;
  const host = target.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = defaultPort(target);
  for (let entry of noProxy.split(/[\s,]+/)) {
    entry = entry.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') return true;
    let entryPort: number | undefined;
    const m = /^(.*):(\d+)$/.exec(entry);
    if (m?.[1] !== undefined && !m[1].includes(':')) {
      entry = m[1];
      entryPort = Number(m[2]);
    }
    entry = entry.replace(/^\[|\]$/g, '').replace(/^\*?\./, '');
    if (entryPort !== undefined && entryPort !== port) continue;
    if (host === entry || host.endsWith(`.${entry}`)) return true;
  }
  return false;
}

/** The proxy to use for `target` from HTTPS_PROXY/HTTP_PROXY/NO_PROXY (either case); null: direct. */
export function proxyFor(target: URL, env: NodeJS.ProcessEnv = process.env): URL | null {
  if (bypassesProxy(target, envValue(env, 'no_proxy'))) return null;
  const raw = target.protocol === 'https:' ? envValue(env, 'https_proxy') : envValue(env, 'http_proxy');
  if (!raw) return null;
  try {
    const u = new URL(raw.includes('://') ? raw : `http://${raw}`);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`scheme ${u.protocol}`);
    return u;
  } catch (e) {
    throw new OdhError('USAGE', `invalid proxy setting ${JSON.stringify(raw)}: ${(e as Error).message}`);
  }
}

export interface ConnectionOptions {
  /** Proxy environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Extra trusted CA certificates (PEM) for https origins, added to Node's bundled roots. */
  ca?: string | Buffer;
}

const importUndici = () => import('undici');
let undiciModule: ReturnType<typeof importUndici> | undefined;

/**
 * undici, loaded on the first request: loading it costs about as much as starting node itself, and
 * most commands never touch the network (docs/reliability.md, "One HTTP layer").
 */
export function loadUndici(): ReturnType<typeof importUndici> {
  undiciModule ??= importUndici();
  return undiciModule;
}

/** Basic credentials from the proxy URL; undici itself sends them only when a password is given too. */
function proxyToken(proxy: URL): { token?: string } {
  if (!proxy.username) return {};
  const cred = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
  return { token: `Basic ${Buffer.from(cred).toString('base64')}` };
}

/** One pool per proxy (or none) and CA, shared by every request of the process. */
const pools = new Map<string, Dispatcher>();

/**
 * The dispatcher for a request to `target`: direct, or through the proxy the environment names
 * (returned too, for messages). Plain http:// targets behind an http:// proxy are sent in absolute
 * form (RFC 9112 §3.2.2), https:// targets through a CONNECT tunnel with TLS to the origin.
 */
export async function dispatcherFor(
  target: URL,
  opts: ConnectionOptions = {},
): Promise<{ dispatcher: Dispatcher; proxy: URL | null }> {
  const proxy = proxyFor(target, opts.env ?? process.env);
  // Loaded only here: node:tls costs start-up time and only a private CA needs it.
  const ca =
    opts.ca === undefined ? undefined : [...(await import('node:tls')).rootCertificates, opts.ca.toString()];
  const key = `${proxy?.href ?? 'direct'}\n${opts.ca?.toString() ?? ''}`;
  let dispatcher = pools.get(key);
  if (dispatcher === undefined) {
    const { Agent, ProxyAgent } = await loadUndici();
    dispatcher = proxy
      ? new ProxyAgent({
          uri: proxy.href,
          proxyTunnel: false,
          ...proxyToken(proxy),
          ...(ca ? { requestTls: { ca } } : {}),
        })
      : new Agent(ca ? { connect: { ca } } : {});
    pools.set(key, dispatcher);
  }
  return { dispatcher, proxy };
}
