import { createHash } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openManifest } from '../../src/oci/image.js';
import { pushRef } from '../../src/oci/registry/mirror.js';
import { buildOciImage, seededBytes, type BuiltImage } from '../helpers/images.js';
import { REPO_ROOT } from '../helpers/shared.js';
import { hasTool } from '../helpers/tools.js';
import { fastClient } from '../registry/helpers.js';
import { startRegistry, type TestRegistry } from '../registry/registry-process.js';

// Embedded cosign signatures (spec oci-delta §1.6): keys and signatures are made with the openssl CLI,
// the signature artifacts written by hand, so nothing here trusts the code under test.

const ODH = path.join(REPO_ROOT, 'dist', 'bin', 'odh.js');
const haveOpenssl = hasTool('openssl', 'openssl');

let work: string;
let oldImg: BuiltImage;
let newImg: BuiltImage;

const odh = (args: string[]) =>
  execa('node', [ODH, ...args], { reject: false, env: { TMPDIR: work }, timeout: 120_000 });
const openssl = (args: string[]) => execa('openssl', args, { cwd: work });
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** cosign's simple-signing payload for `digest`. */
function payloadFor(digest: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': 'example.com/test:latest' },
        image: { 'docker-manifest-digest': digest },
        type: 'cosign container image signature',
      },
      optional: {},
    }),
  );
}

/** Signs `payload` with an openssl key; the base64 DER ECDSA signature cosign stores. */
async function sign(key: string, payload: Buffer): Promise<string> {
  const p = path.join(work, `payload-${sha256(payload).slice(7, 19)}.json`);
  await fs.writeFile(p, payload);
  const sig = `${p}.sig`;
  await openssl(['dgst', '-sha256', '-sign', key, '-out', sig, p]);
  return (await fs.readFile(sig)).toString('base64');
}

/** Blobs of a cosign signature manifest whose one layer is `stored` with signature `b64`. */
function signatureBlobs(stored: Buffer, b64: string): { manifest: Buffer; blobs: Buffer[] } {
  const config = Buffer.from('{}');
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: 2 },
      layers: [
        {
          mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
          digest: sha256(stored),
          size: stored.length,
          annotations: { 'dev.cosignproject.cosign/signature': b64 },
        },
      ],
    }),
  );
  return { manifest, blobs: [config, stored] };
}

/** Adds blobs and an index entry (named `name` if given) to an OCI layout directory, by hand. */
async function addToLayout(dir: string, sig: { manifest: Buffer; blobs: Buffer[] }, name?: string) {
  await fs.mkdir(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  for (const b of [sig.manifest, ...sig.blobs]) {
    await fs.writeFile(path.join(dir, 'blobs', 'sha256', sha256(b).slice(7)), b);
  }
  await fs.writeFile(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const indexPath = path.join(dir, 'index.json');
  const index = existsSync(indexPath)
    ? (JSON.parse(await fs.readFile(indexPath, 'utf8')) as { manifests: unknown[] })
    : { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] as unknown[] };
  index.manifests.push({
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: sha256(sig.manifest),
    size: sig.manifest.length,
    ...(name ? { annotations: { 'org.opencontainers.image.ref.name': name } } : {}),
  });
  await fs.writeFile(indexPath, JSON.stringify(index));
}

async function signatureLayout(name: string, stored: Buffer, b64: string): Promise<string> {
  const dir = path.join(work, name);
  await addToLayout(dir, signatureBlobs(stored, b64));
  return `oci:${dir}`;
}

async function create(out: string, extra: string[]): Promise<void> {
  const r = await odh(['create', '-q', '--no-image-signature', ...extra, oldImg.ociRef, newImg.ociRef, out]);
  expect(r.exitCode, r.stderr).toBe(0);
}

let good: string; // a delta with a valid signature
let key: string;
let pub: string;
let otherPub: string;

beforeAll(async () => {
  if (!existsSync(ODH)) throw new Error(`${ODH} missing: build first with npx tsc -p .`);
  work = await fs.mkdtemp(path.join(tmpdir(), 'odh-sig-'));
  const base = seededBytes('sig-base', 60_000);
  const changed = Buffer.from(base);
  changed.fill(9, 1000, 1100);
  oldImg = await buildOciImage(path.join(work, 'old'), {
    layers: [{ entries: [{ type: 'file', path: 'usr/lib/data.bin', content: base }] }],
  });
  newImg = await buildOciImage(path.join(work, 'new'), {
    layers: [{ entries: [{ type: 'file', path: 'usr/lib/data.bin', content: changed }] }],
  });
  if (!haveOpenssl) return;
  key = path.join(work, 'cosign.key');
  pub = path.join(work, 'cosign.pub');
  await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
  await openssl(['ec', '-in', key, '-pubout', '-out', pub]);
  const otherKey = path.join(work, 'other.key');
  otherPub = path.join(work, 'other.pub');
  await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', otherKey]);
  await openssl(['ec', '-in', otherKey, '-pubout', '-out', otherPub]);
  const payload = payloadFor(newImg.manifestDigest);
  good = path.join(work, 'good.delta');
  await create(good, ['--signature', await signatureLayout('sig-good', payload, await sign(key, payload))]);
});
afterAll(async () => {
  if (work) await fs.rm(work, { recursive: true, force: true });
});

/** Applies `delta` with --verify-key `k`; checks the one-line failure and that nothing was written. */
async function applyRefused(delta: string, k: string, message: string | RegExp): Promise<void> {
  const out = path.join(work, `refused-${path.basename(delta)}.tar`);
  const r = await odh(['apply', '--source-image', oldImg.ociRef, '--verify-key', k, delta, out]);
  expect(r.exitCode).toBe(1);
  // progress lines may precede it; the error itself is one line, the last
  const lines = r.stderr.trim().split('\n');
  expect(lines.filter((l) => l.startsWith('odh: error:'))).toEqual([lines[lines.length - 1]]);
  expect(lines[lines.length - 1]).toMatch(message);
  expect(r.stdout).toBe('');
  expect(existsSync(out)).toBe(false);
  expect((await fs.readdir(work)).filter((f) => f.startsWith('refused-'))).toEqual([]);
}

describe.skipIf(!haveOpenssl)('embedded cosign signatures', () => {
  it('create --signature embeds the manifest, its config and payload like upstream', async () => {
    const m = await openManifest(`oci-archive:${good}`);
    await m.reader.close();
    const sigEntries = m.manifest.layers.filter((l) =>
      l.annotations?.['io.github.containers.delta.content']?.startsWith('cosign-signature'),
    );
    expect(
      sigEntries.map((l) => [l.annotations!['io.github.containers.delta.content'], l.mediaType]),
    ).toEqual([
      ['cosign-signature', 'application/vnd.oci.image.manifest.v1+json'],
      ['cosign-signature-content', 'application/vnd.oci.image.config.v1+json'],
      ['cosign-signature-content', 'application/vnd.dev.cosign.simplesigning.v1+json'],
    ]);
  });

  it('inspect lists the signature and what it signs', async () => {
    const r = await odh(['inspect', '--json', good]);
    expect(r.exitCode, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { signatures: Array<{ payloads: Array<Record<string, unknown>> }> };
    expect(j.signatures).toHaveLength(1);
    expect(j.signatures[0]!.payloads[0]).toMatchObject({
      signedManifest: newImg.manifestDigest,
      dockerReference: 'example.com/test:latest',
      matchesTarget: true,
      hasSignature: true,
    });
    const human = await odh(['inspect', good]);
    expect(human.stdout).toContain(`signs ${newImg.manifestDigest} (the target) as example.com/test:latest`);
  });

  it('apply --verify-key with the right key writes the output (also with --complete)', async () => {
    for (const extra of [[], ['--complete']]) {
      const out = path.join(work, `ok${extra.length}.tar`);
      const r = await odh([
        'apply',
        '--source-image',
        oldImg.ociRef,
        '--verify-key',
        pub,
        ...extra,
        good,
        out,
      ]);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout).toContain('signature sha256:');
      expect(existsSync(out)).toBe(true);
    }
  });

  it('a wrong key: one line, exit 1, no output', async () => {
    await applyRefused(
      good,
      otherPub,
      /no embedded signature could be verified: .*cryptographic signature verification failed/,
    );
  });

  it('a tampered payload (stored bytes differ from the signed ones): refused', async () => {
    const signed = payloadFor(newImg.manifestDigest);
    const tampered = Buffer.from(signed.toString().replace('example.com/test', 'evil.example/test'));
    const delta = path.join(work, 'tampered.delta');
    await create(delta, [
      '--signature',
      await signatureLayout('sig-tampered', tampered, await sign(key, signed)),
    ]);
    await applyRefused(delta, pub, /cryptographic signature verification failed/);
  });

  it('a valid signature of another manifest: refused', async () => {
    const other = payloadFor(oldImg.manifestDigest);
    const delta = path.join(work, 'other-target.delta');
    await create(delta, ['--signature', await signatureLayout('sig-other', other, await sign(key, other))]);
    await applyRefused(delta, pub, /signature is for manifest sha256:[0-9a-f]{64}, but the delta targets/);
  });

  it('a delta without signatures: refused', async () => {
    const delta = path.join(work, 'unsigned.delta');
    await create(delta, []);
    await applyRefused(delta, pub, /delta contains no embedded signatures/);
  });

  it("embeds the new image's own signature found under the cosign tag sha256-<hex>.sig", async () => {
    const payload = payloadFor(newImg.manifestDigest);
    const tag = `${newImg.manifestDigest.replace(':', '-')}.sig`;
    await addToLayout(newImg.layoutDir, signatureBlobs(payload, await sign(key, payload)), tag);
    const delta = path.join(work, 'own.delta');
    const r = await odh(['create', '-q', oldImg.ociRef, newImg.ociRef, delta]);
    expect(r.exitCode, r.stderr).toBe(0);
    const out = path.join(work, 'own-out.tar');
    const a = await odh(['apply', '--source-image', oldImg.ociRef, '--verify-key', pub, delta, out]);
    expect(a.exitCode, a.stderr).toBe(0);
  });

  describe.skipIf(!hasTool('docker-registry', 'docker-registry'))('through a registry', () => {
    let reg: TestRegistry;
    beforeAll(async () => {
      reg = await startRegistry();
    });
    afterAll(async () => {
      await reg?.stop();
    });

    it('a delta pushed to a registry keeps its signature blobs and still verifies', async () => {
      const client = fastClient(reg.host);
      await pushRef(client, 'sig/delta', `oci-archive:${good}`, 'delta');
      const out = path.join(work, 'from-registry.tar');
      const r = await odh([
        'apply',
        '--source-image',
        oldImg.ociRef,
        '--verify-key',
        pub,
        `docker://${reg.host}/sig/delta:delta`,
        out,
      ]);
      expect(r.exitCode, r.stderr).toBe(0);
      const bad = path.join(work, 'refused-registry.tar');
      const w = await odh([
        'apply',
        '--source-image',
        oldImg.ociRef,
        '--verify-key',
        otherPub,
        `docker://${reg.host}/sig/delta:delta`,
        bad,
      ]);
      expect(w.exitCode).toBe(1);
      expect(existsSync(bad)).toBe(false);
    });
  });
});
