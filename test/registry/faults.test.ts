import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseManifest } from '../../src/oci/types.js';
import { hasTool } from '../helpers/tools.js';
import { startFront, type Intercept } from './front.js';
import { built, fastClient, localBytes, pushRef } from './helpers.js';
import { startRegistry, type TestRegistry } from './registry-process.js';

const haveRegistry = hasTool('docker-registry', 'docker-registry');

/** The largest layer of the small pair's new image (bytes and descriptor). */
async function biggestLayer() {
  const f = await built();
  const m = parseManifest(await localBytes(f.new.ref, f.new.manifestDigest));
  const layer = m.layers.reduce((a, b) => (b.size > a.size ? b : a));
  return { f, layer, bytes: await localBytes(f.new.ref, layer.digest) };
}

describe.skipIf(!haveRegistry)('registry transfers under faults (loopback front → docker-registry)', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry();
  });
  afterAll(async () => {
    await reg?.stop();
  });

  /** Runs `body` with a front whose `intercept` sees every request. */
  async function withFront<T>(intercept: Intercept, body: (host: string) => Promise<T>): Promise<T> {
    const front = await startFront(reg.host, intercept);
    try {
      return await body(front.host);
    } finally {
      await front.stop();
    }
  }

  it('a 503/429 burst on upload start and a reset mid-PATCH are retried; the push completes', async () => {
    const { f, layer } = await biggestLayer();
    expect(layer.size).toBeGreaterThan(2048);
    let bursts = 0;
    let resets = 0;
    const patches: string[] = [];
    await withFront(
      (req, res, forward) => {
        if (req.method === 'POST' && req.url!.includes('/blobs/uploads/') && bursts < 3) {
          bursts++;
          res.writeHead(bursts === 2 ? 429 : 503, bursts === 2 ? { 'retry-after': '0' } : {});
          res.end();
          return;
        }
        if (req.method === 'PATCH') {
          patches.push(req.url!);
          if (resets === 0) {
            resets++;
            req.socket.resetAndDestroy();
            return;
          }
        }
        forward();
      },
      async (host) => {
        const client = fastClient(host, { chunkSize: 1024 });
        const pushed = await pushRef(client, 'faults/upload', f.new.ref, 'new');
        expect(pushed.digest).toBe(f.new.manifestDigest);
        expect(client.stats.retries).toBeGreaterThanOrEqual(4);
      },
    );
    expect(bursts).toBe(3);
    expect(resets).toBe(1);
    // Large blobs went up in chunks (the reset one restarted its upload session).
    expect(patches.length).toBeGreaterThan(2);
    const direct = fastClient(reg.host);
    expect((await direct.getManifest('faults/upload', 'new')).digest).toBe(f.new.manifestDigest);
    expect(
      (await direct.readBlob('faults/upload', layer, 64 << 20)).equals(
        await localBytes(f.new.ref, layer.digest),
      ),
    ).toBe(true);
  });

  it('a connection reset mid-blob resumes with a Range request and the bytes verify', async () => {
    const { f, layer, bytes } = await biggestLayer();
    await pushRef(fastClient(reg.host), 'faults/pull', f.new.ref, 'new');
    const ranges: Array<string | undefined> = [];
    let cut = false;
    const got = await withFront(
      (req, _res, forward) => {
        if (req.method === 'GET' && req.url!.endsWith(`/blobs/${layer.digest}`)) {
          ranges.push(req.headers.range);
          if (!cut) {
            cut = true;
            forward({ abortAfterBodyBytes: Math.floor(layer.size / 2) });
            return;
          }
        }
        forward();
      },
      (host) => fastClient(host).readBlob('faults/pull', layer, 64 << 20),
    );
    expect(got.equals(bytes)).toBe(true);
    expect(ranges).toEqual([undefined, `bytes=${Math.floor(layer.size / 2)}-`]);
  });

  it('a stalled response times out and is retried; a registry that always stalls fails after the bound', async () => {
    const f = await built();
    await pushRef(fastClient(reg.host), 'faults/stall', f.new.ref, 'new');
    let stalls = 0;
    const stall: (always: boolean) => Intercept = (always) => (req, res, forward) => {
      if (req.method === 'GET' && req.url!.includes('/manifests/') && (always || stalls === 0)) {
        stalls++;
        // Headers, then silence.
        res.writeHead(200, {
          'content-type': 'application/vnd.oci.image.manifest.v1+json',
          'content-length': '9999',
        });
        res.write('{');
        return;
      }
      forward();
    };
    const ok = await withFront(stall(false), (host) =>
      fastClient(host, { timeoutMs: 300 }).getManifest('faults/stall', 'new'),
    );
    expect(ok.digest).toBe(f.new.manifestDigest);
    expect(stalls).toBe(1);

    stalls = 0;
    const t0 = Date.now();
    await withFront(stall(true), async (host) => {
      await expect(
        fastClient(host, { timeoutMs: 200, tries: 3 }).getManifest('faults/stall', 'new'),
      ).rejects.toThrow(
        /registry 127\.0\.0\.1:[0-9]+ repo faults\/stall manifest new GET failed after 3 tries: .*stalled for 200 ms/,
      );
    });
    expect(stalls).toBe(3);
    expect(Date.now() - t0).toBeLessThan(5000);

    // No response at all (not even headers).
    await withFront(
      () => {},
      async (host) => {
        await expect(
          fastClient(host, { timeoutMs: 200, tries: 2 }).blobSize('faults/stall', f.new.configDigest),
        ).rejects.toThrow(/failed after 2 tries: .*no response within 200 ms/);
      },
    );
  });

  it('never leaves a manifest whose blobs are missing: a failing blob upload stops before the manifest', async () => {
    const f = await built();
    const manifestPuts: string[] = [];
    await withFront(
      (req, res, forward) => {
        if (req.url!.includes('/manifests/') && req.method === 'PUT') manifestPuts.push(req.url!);
        if (req.url!.includes('/blobs/uploads/') && req.method === 'PUT') {
          res.writeHead(503);
          res.end();
          return;
        }
        forward();
      },
      async (host) => {
        await expect(
          pushRef(fastClient(host, { tries: 3 }), 'faults/missing', f.new.ref, 'new'),
        ).rejects.toThrow(
          /registry 127\.0\.0\.1:[0-9]+ repo faults\/missing blob sha256:[0-9a-f]{64} upload failed after 3 tries: .*HTTP 503/,
        );
      },
    );
    expect(manifestPuts).toEqual([]);
    await expect(fastClient(reg.host).getManifest('faults/missing', 'new')).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });

    // A manifest PUT that keeps failing leaves nothing served either.
    await withFront(
      (req, res, forward) => {
        if (req.url!.includes('/manifests/') && req.method === 'PUT') {
          res.writeHead(500);
          res.end();
          return;
        }
        forward();
      },
      async (host) => {
        await expect(
          pushRef(fastClient(host, { tries: 2 }), 'faults/missing', f.new.ref, 'new'),
        ).rejects.toThrow(/manifest new PUT failed after 2 tries: .*HTTP 500/);
      },
    );
    await expect(fastClient(reg.host).getManifest('faults/missing', 'new')).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });

  it('a corrupted blob body fails with a digest mismatch naming registry, repo and digest', async () => {
    const { f, layer } = await biggestLayer();
    await pushRef(fastClient(reg.host), 'faults/corrupt', f.new.ref, 'new');
    await withFront(
      (req, res, forward) => {
        if (req.method === 'GET' && req.url!.endsWith(`/blobs/${layer.digest}`)) {
          res.writeHead(200, { 'content-length': String(layer.size) });
          res.end(Buffer.alloc(layer.size, 7));
          return;
        }
        forward();
      },
      async (host) => {
        await expect(fastClient(host).readBlob('faults/corrupt', layer, 64 << 20)).rejects.toThrow(
          /blob digest mismatch: expected sha256:[0-9a-f]{64}/,
        );
      },
    );
  });
});
