/**
 * The old image as ONE tar, for the Go `tar-diff` 0.1.2 (which takes a single old tar and knows
 * neither whiteouts nor hardlink names nor ignore prefixes).
 *
 * Decision: upstream oci-delta runs tar-diff over ALL old layers in order with `-apply-whiteouts`
 * and `-ignore-source-prefix sysroot/ostree/` (spec oci-delta §5.1 step 3, §5.2), so the sources a
 * current tar-diff may name are exactly the Open names of the old image's merged root filesystem
 * (spec §3.1): surviving, qualifying regular files under their first allowed name. This tar holds
 * those files and nothing else — one regular entry per source, named by its Open name, mode 0644,
 * content taken from the old layer that owns it — so v0.1.2's sources are the same set under the
 * same names, and every applier resolves them against the old image (image or merged-rootfs
 * directory). Passing only "the matching old layer" instead would miss files from other layers
 * and name files that a later layer deletes. Entries are written in layer/tar order, streamed.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { openOldImage, streamOldLayer } from '../../src/image-source/old-layers.js';
import {
  BLOCK_SIZE,
  encodePaxRecords,
  encodeUstarHeader,
  paddingFor,
  MAX_OCTAL_SIZE,
} from '../../src/tar/header.js';
import { MergedRootfs, type SourceEntry } from '../../src/tardiff/merged-rootfs.js';

async function put(out: Writable, b: Buffer): Promise<void> {
  if (!out.write(b)) await once(out, 'drain');
}

/** A USTAR header, preceded by a PAX `path`/`size` record when the name or size does not fit. */
function headersFor(name: Buffer, size: bigint): Buffer {
  const plain = { name, mode: 0o644, size, typeflag: '0' };
  if (size <= MAX_OCTAL_SIZE) {
    try {
      return encodeUstarHeader(plain);
    } catch {
      // The name does not fit a USTAR header: PAX below.
    }
  }
  const records = [{ key: 'path', value: name }];
  if (size > MAX_OCTAL_SIZE) records.push({ key: 'size', value: Buffer.from(size.toString()) });
  const data = encodePaxRecords(records);
  const x = encodeUstarHeader({ name: 'PaxHeader', mode: 0o644, size: data.length, typeflag: 'x' });
  const main = encodeUstarHeader({
    ...plain,
    name: Buffer.from('pax-named-entry'),
    size: size > MAX_OCTAL_SIZE ? 0n : size,
  });
  return Buffer.concat([x, data, Buffer.alloc(Number(paddingFor(BigInt(data.length)))), main]);
}

/** Writes the merged-rootfs sources of `oldRef` (an image reference) as a plain tar to `file`. */
export async function writeMergedSourcesTar(oldRef: string, file: string): Promise<{ files: number }> {
  const old = await openOldImage(oldRef);
  try {
    // Pass 1: headers only, the same merge rules as our creator's source analysis.
    const rootfs = new MergedRootfs();
    for (let i = 0; i < old.manifest.layers.length; i++) {
      const scan = rootfs.beginLayer();
      await streamOldLayer(old, i, async (item) => {
        scan.add(item.entry);
      });
      scan.finish();
    }
    const wanted = new Map<string, Buffer>(); // "layer:ordinal" → Open name
    for (const [key, s] of rootfs.openNames()) wanted.set(where(s), Buffer.from(key, 'latin1'));
    // Pass 2: copy the wanted contents in layer/tar order.
    const out = createWriteStream(file, { flags: 'wx', mode: 0o600 });
    const closed = once(out, 'close');
    try {
      for (let i = 0; i < old.manifest.layers.length; i++) {
        let ordinal = 0;
        await streamOldLayer(old, i, async (item) => {
          const name = wanted.get(`${i}:${ordinal++}`);
          if (!name) return;
          await put(out, headersFor(name, item.entry.size));
          for await (const chunk of item.body) await put(out, chunk);
          await put(out, Buffer.alloc(Number(paddingFor(item.entry.size))));
        });
      }
      await put(out, Buffer.alloc(2 * BLOCK_SIZE));
    } finally {
      out.end();
      await closed;
    }
    return { files: wanted.size };
  } finally {
    await old.close();
  }
}

function where(s: SourceEntry): string {
  return `${s.layer}:${s.ordinal}`;
}
