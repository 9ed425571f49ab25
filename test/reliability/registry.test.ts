/**
 * Never hang, fetch each blob once (issue 13), against loopback servers:
 * - stand-ins for hostile registries (small node servers written here): a slow-loris one that
 *   answers at 1 byte/s and a silent one that accepts connections and never answers. `odh apply`
 *   ends within its `--timeout` deadline with one line; SIGINT ends it within 2 s, leaving nothing.
 * - a real Debian `docker-registry` behind a counting front: every blob is fetched once per apply.
 */
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFixture, type BuiltFixture } from '../../fixtures/build.js';
import { createDelta } from '../../src/delta/create.js';
import { hasTool } from '../helpers/tools.js';
import { startFront, type Front } from '../registry/front.js';
import { fastClient, pushRef } from '../registry/helpers.js';
import { startRegistry, type TestRegistry } from '../registry/registry-process.js';
import { debris, errorLines, removeTree, runOdh, startOdh, tempRoot } from './run.js';

let root: string;
let pair: BuiltFixture;
let delta: string;
let srcDir: string;

beforeAll(async () => {
  root = tempRoot('odh-test-regrel-');
  pair = await buildFixture('package-update', path.join(root, 'cache'));
  delta = path.join(root, 'delta.tar');
  await createDelta({ old: pair.old.ref, new: pair.new.ref, output: delta, jobs: 1 });
  srcDir = path.join(root, 'src');
  execFileSync('mkdir', ['-p', srcDir]);
}, 300_000);
afterAll(() => removeTree(root));

interface StandIn {
  host: string;
  requests: number;
  stop(): Promise<void>;
}

/** Stand-in: answers every request with headers at once, then a body at 1 byte/s. */
async function slowLoris(): Promise<StandIn> {
  const s: StandIn = { host: '', requests: 0, stop: async () => {} };
  const timers = new Set<NodeJS.Timeout>();
  const server = http.createServer((req, res) => {
    s.requests++;
    res.writeHead(200, {
      'content-type': 'application/vnd.oci.image.manifest.v1+json',
      'content-length': '4096',
    });
    const t = setInterval(() => res.write('{'), 1000);
    timers.add(t);
    res.on('close', () => {
      clearInterval(t);
      timers.delete(t);
    });
  });
  return listen(server, s, () => timers.forEach(clearInterval));
}

/** Stand-in: accepts TCP connections and never says a word. */
async function silent(): Promise<StandIn> {
  const s: StandIn = { host: '', requests: 0, stop: async () => {} };
  const server = net.createServer(() => s.requests++);
  return listen(server, s, () => {});
}

async function listen(server: net.Server, s: StandIn, onStop: () => void): Promise<StandIn> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (c: net.Socket) => {
    sockets.add(c);
    c.on('close', () => sockets.delete(c));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  s.host = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  s.stop = async () => {
    onStop();
    for (const c of sockets) c.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return s;
}

let n = 0;
function caseDir() {
  const dir = path.join(root, `case-${n++}`);
  const tmp = path.join(dir, 'tmp');
  execFileSync('mkdir', ['-p', tmp]);
  return { dir, tmp, out: path.join(dir, 'out.tar') };
}

const applyArgs = (host: string, out: string, extra: string[] = []) => [
  'apply',
  ...extra,
  '--source-dir',
  srcDir,
  `docker://${host}/stand/in:latest`,
  out,
];

describe('hostile registries on loopback (stand-ins): bounded by the deadline, ended by SIGINT', () => {
  for (const [name, start] of [
    ['slow-loris (1 byte/s)', slowLoris],
    ['silent', silent],
  ] as const) {
    it(`${name}: --timeout 2 ends the run within its deadline with one line`, async () => {
      const server = await start();
      try {
        const c = caseDir();
        const r = await runOdh(applyArgs(server.host, c.out, ['--timeout', '2']), { TMPDIR: c.tmp });
        expect(r.code, r.stderr).toBe(1);
        const lines = errorLines(r.stderr);
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(/within 2 s|within 2000 ms/);
        // 2 s of deadline plus start-up (a shared machine: generous, yet far below 5 tries × 60 s).
        expect(r.ms).toBeLessThan(12_000);
        expect(debris(c.dir, c.tmp)).toEqual([]);
      } finally {
        await server.stop();
      }
    });

    it(`${name}: SIGINT ends the run within 2 s, leaving nothing`, async () => {
      const server = await start();
      try {
        const c = caseDir();
        const r = startOdh(applyArgs(server.host, c.out), { TMPDIR: c.tmp });
        for (let i = 0; i < 3000 && server.requests === 0; i++)
          await new Promise((res) => setTimeout(res, 5));
        expect(server.requests, r.stderr()).toBeGreaterThan(0);
        await new Promise((res) => setTimeout(res, 300));
        const t0 = Date.now();
        r.child.kill('SIGINT');
        const e = await r.exited;
        expect(Date.now() - t0).toBeLessThan(2000);
        expect(e.code).toBe(1);
        expect(errorLines(r.stderr())).toEqual(['odh: error: interrupted by SIGINT; nothing was written']);
        expect(debris(c.dir, c.tmp)).toEqual([]);
      } finally {
        await server.stop();
      }
    });
  }
});

const haveRegistry = hasTool('docker-registry', 'docker-registry');

describe.skipIf(!haveRegistry)('a counting front before docker-registry: each blob fetched once', () => {
  let reg: TestRegistry;
  let front: Front;
  beforeAll(async () => {
    reg = await startRegistry();
    front = await startFront(reg.host);
    await pushRef(fastClient(reg.host), 'rel/delta', delta, 'd');
    await pushRef(fastClient(reg.host), 'rel/source', pair.old.ref, 's');
  });
  afterAll(async () => {
    await front?.stop();
    await reg?.stop();
  });

  it('odh apply docker://… GETs every blob exactly once', async () => {
    const c = caseDir();
    front.seen.length = 0;
    const r = await runOdh(
      ['apply', '--source-image', pair.old.ref, `docker://${front.host}/rel/delta:d`, c.out],
      { TMPDIR: c.tmp },
    );
    expect(r.code, r.stderr).toBe(0);
    const blobGets = front.seen.filter((s) => /^GET \/v2\/rel\/delta\/blobs\//.test(s));
    const counts = new Map<string, number>();
    for (const g of blobGets) counts.set(g, (counts.get(g) ?? 0) + 1);
    // The delta has a tar-diff, the target manifest and config as blobs (spec oci-delta §1.1).
    expect(counts.size).toBeGreaterThanOrEqual(3);
    expect([...counts].filter(([, k]) => k !== 1)).toEqual([]);
    expect(debris(c.dir, c.tmp)).toEqual([]);
  });

  it('odh apply --complete with a docker:// source image and a docker:// delta GETs every blob exactly once', async () => {
    const c = caseDir();
    front.seen.length = 0;
    const r = await runOdh(
      [
        'apply',
        '--complete',
        '--json',
        '--source-image',
        `docker://${front.host}/rel/source:s`,
        `docker://${front.host}/rel/delta:d`,
        c.out,
      ],
      { TMPDIR: c.tmp },
    );
    expect(r.code, r.stderr).toBe(0);
    // The case must exercise both second reads: a reused layer copied from the source image (filled)
    // and a tar-diff whose source files come from that image's layers.
    const kinds = (JSON.parse(r.stdout) as { layers: { kind: string }[] }).layers.map((l) => l.kind);
    expect(kinds).toContain('filled');
    expect(kinds).toContain('tar-diff');
    const blobGets = front.seen.filter((s) => /^GET \/v2\/rel\/(delta|source)\/blobs\//.test(s));
    const counts = new Map<string, number>();
    for (const g of blobGets) counts.set(g, (counts.get(g) ?? 0) + 1);
    expect(blobGets.some((g) => g.includes('/rel/source/'))).toBe(true);
    expect([...counts].filter(([, k]) => k !== 1)).toEqual([]);
    expect(debris(c.dir, c.tmp)).toEqual([]);
  });
});
