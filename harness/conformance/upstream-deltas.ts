/**
 * Upstream-made deltas committed under fixtures/upstream/ (written by scripts/fixtures-upstream.ts
 * where the upstream binary runs), so every test run applies real upstream output with our applier
 * even without the binary. The manifest names the upstream version and, per delta, the fixture
 * pair, the creator mode and the file's digest.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { repoRoot } from '../../fixtures/expected.js';
import { OdhError } from '../../src/util/errors.js';

export interface UpstreamDelta {
  fixture: string;
  /** The creator as the matrix names it: `upstream` (default mode) or `upstream-bsdiff|zstd|auto`. */
  creator: string;
  /** File name inside fixtures/upstream/ (an oci-archive). */
  file: string;
  /** `sha256:<hex>` of the file. */
  digest: string;
}

export interface UpstreamDeltaManifest {
  /** `oci-delta --version` of the binary that made the deltas; null while none are committed. */
  upstreamVersion: string | null;
  note?: string;
  deltas: UpstreamDelta[];
}

export function upstreamDeltaDir(): string {
  return path.join(repoRoot(), 'fixtures', 'upstream');
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;
const FILE = /^[\w.-]+\.oci-archive$/;

/** Reads and validates fixtures/upstream/manifest.json (people may edit it: every field is checked). */
export async function readUpstreamDeltas(dir = upstreamDeltaDir()): Promise<UpstreamDeltaManifest> {
  const file = path.join(dir, 'manifest.json');
  let raw: unknown;
  try {
    raw = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (e) {
    throw new OdhError('FORMAT', `upstream deltas manifest unreadable: ${(e as Error).message}`, { file });
  }
  const m = raw as Partial<UpstreamDeltaManifest>;
  if (typeof m !== 'object' || m === null || !Array.isArray(m.deltas)) {
    throw new OdhError('FORMAT', 'upstream deltas manifest: deltas is not an array', { file });
  }
  if (m.upstreamVersion !== null && typeof m.upstreamVersion !== 'string') {
    throw new OdhError('FORMAT', 'upstream deltas manifest: upstreamVersion is neither null nor a string', {
      file,
    });
  }
  for (const [i, d] of m.deltas.entries()) {
    const ok =
      typeof d === 'object' &&
      d !== null &&
      typeof d.fixture === 'string' &&
      typeof d.creator === 'string' &&
      /^upstream(-(bsdiff|zstd|auto))?$/.test(d.creator) &&
      typeof d.file === 'string' &&
      FILE.test(d.file) &&
      typeof d.digest === 'string' &&
      DIGEST.test(d.digest);
    if (!ok) {
      throw new OdhError(
        'FORMAT',
        `upstream deltas manifest: deltas[${i}] needs fixture, creator, file, digest`,
        {
          file,
        },
      );
    }
  }
  return m as UpstreamDeltaManifest;
}

export function renderUpstreamDeltas(m: UpstreamDeltaManifest): string {
  return `${JSON.stringify(m, null, 2)}\n`;
}

/** `sha256:<hex>` of a file, streamed. */
export async function fileDigest(file: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(file), h);
  return `sha256:${h.digest('hex')}`;
}
