/**
 * Stand-ins for the unreachable internet: a local HTTP server on 127.0.0.1 (random port) that
 * imitates the GitHub releases API and release-asset downloads, and stand-in `oci-delta`
 * executables (shell scripts) that record their argv and exit with a chosen code.
 */
import { createHash } from 'node:crypto';
import { chmodSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

export interface StandinAsset {
  name: string;
  body: Buffer;
}

/** Per-path misbehaviour: the first `times` requests to `path` get it, later ones are served normally. */
export type Fault =
  | { kind: 'truncate'; path: string; times: number }
  | { kind: 'status'; path: string; status: number; times: number };

export interface StandinServer {
  /** http://127.0.0.1:PORT — the API base URL. */
  url: string;
  port: number;
  /** Every request seen: path and the Authorization header it carried. */
  requests: { host: string; path: string; authorization?: string }[];
  faults: Fault[];
  close(): Promise<void>;
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/**
 * Routes (as GitHub): `/repos/containers/oci-delta/releases/latest` and `/releases/tags/v{version}`
 * answer a release object whose assets' `browser_download_url` is `/download/v{version}/{name}`;
 * that path answers 302 to `http://localhost:PORT/storage/{name}` (another host, like GitHub's
 * object storage), which serves the bytes. Unknown paths: 404.
 */
export async function startStandinServer(release: {
  version: string;
  assets: StandinAsset[];
}): Promise<StandinServer> {
  const requests: StandinServer['requests'] = [];
  const faults: Fault[] = [];
  const served = new Map<string, number>();
  let port = 0;
  const releaseJson = () => ({
    tag_name: `v${release.version}`,
    name: `oci-delta ${release.version}`,
    assets: release.assets.map((a) => ({
      name: a.name,
      size: a.body.length,
      browser_download_url: `http://127.0.0.1:${port}/download/v${release.version}/${a.name}`,
    })),
  });
  const server = http.createServer((req, res) => {
    const p = new URL(req.url ?? '/', 'http://x').pathname;
    requests.push({ host: req.headers.host ?? '', path: p, authorization: req.headers.authorization });
    const n = (served.get(p) ?? 0) + 1;
    served.set(p, n);
    const fault = faults.find((f) => f.path === p && n <= f.times);
    if (fault?.kind === 'status') {
      res.writeHead(fault.status).end();
      return;
    }
    const json = (v: unknown) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(v));
    };
    if (p === '/repos/containers/oci-delta/releases/latest') return json(releaseJson());
    if (p === `/repos/containers/oci-delta/releases/tags/v${release.version}`) return json(releaseJson());
    const dl = /^\/download\/v[^/]+\/(.+)$/.exec(p);
    if (dl) {
      res.writeHead(302, { location: `http://localhost:${port}/storage/${dl[1]}` }).end();
      return;
    }
    const st = /^\/storage\/(.+)$/.exec(p);
    const asset = st ? release.assets.find((a) => a.name === st[1]) : undefined;
    if (asset) {
      if (fault?.kind === 'truncate') {
        // Content-Length is the full size, the body stops half-way and the connection drops.
        res.writeHead(200, { 'content-length': String(asset.body.length) });
        res.write(asset.body.subarray(0, Math.floor(asset.body.length / 2)), () => res.destroy());
        return;
      }
      res.writeHead(200, { 'content-length': String(asset.body.length) }).end(asset.body);
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"Not Found"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    faults,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface StandinBinaryOptions {
  /** `--version` output line. */
  version?: string;
  /** Whether `create --help` mentions `--binary-diff`. */
  binaryDiff?: boolean;
  /** Exit code of create/apply. */
  exitCode?: number;
  /** Printed on stderr by create/apply before exiting. */
  stderr?: string;
  /** Extra shell run by create/apply (e.g. `sleep 30`). */
  extra?: string;
  /** Where create/apply write their NUL-separated argv. */
  argvFile?: string;
}

/** A stand-in `oci-delta`: a POSIX shell script. */
export function standinBinaryScript(o: StandinBinaryOptions = {}): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return [
    '#!/bin/sh',
    '# stand-in for oci-delta (tests only)',
    'if [ "$1" = "--version" ]; then',
    `  echo ${q(o.version ?? 'oci-delta version 0.6.0')}`,
    '  exit 0',
    'fi',
    'if [ "$1" = "create" ] && [ "$2" = "--help" ]; then',
    '  echo "Usage: oci-delta create [flags] <old> <new> <output>"',
    '  echo "  -j, --jobs int          parallel jobs"',
    o.binaryDiff === false
      ? ''
      : '  echo "      --binary-diff string   bsdiff, zstd or auto (default \\"bsdiff\\")"',
    '  exit 0',
    'fi',
    o.argvFile ? `printf '%s\\0' "$@" > ${q(o.argvFile)}` : '',
    o.extra ?? '',
    o.stderr ? `printf '%s\\n' ${q(o.stderr)} >&2` : '',
    `exit ${o.exitCode ?? 0}`,
    '',
  ].join('\n');
}

export function writeStandinBinary(dir: string, name: string, o: StandinBinaryOptions = {}): string {
  const file = path.join(dir, name);
  writeFileSync(file, standinBinaryScript(o));
  chmodSync(file, 0o755);
  return file;
}
