import binding from 'zstd-napi/binding.js';
import { DICT_WINDOW_LOG_MAX } from '../zstd.js';

/**
 * ZstdDict payloads (spec oci-delta §2.2 op 5, TS notes): one zstd frame of the new content compressed
 * with the whole old content as raw dictionary (`zstd --patch-from` semantics, dictionary ID 0).
 */

/** `ZSTD_c_forceAttachDict`, experimental: without `ZSTD_dictForceLoad` (3) patches are ~1000× larger. */
const C_FORCE_ATTACH_DICT = 1001;
const DICT_FORCE_LOAD = 3;
const WINDOW_LOG_MIN = 10;
/** spec oci-delta §2.2: a dictionary starting with these bytes is parsed as a formatted dictionary. */
const ZSTD_DICT_MAGIC = Buffer.from([0x37, 0xa4, 0x30, 0xec]);

/**
 * True when `head` (the source's first bytes) makes `loadDictionary` treat the source as a formatted
 * dictionary; such a source must not be used for ZstdDict (spec oci-delta §2.2 TS notes).
 */
export function hasDictMagic(head: Uint8Array): boolean {
  return head.length >= 4 && ZSTD_DICT_MAGIC.equals(head.subarray(0, 4));
}

/** ceil(log2(n)) clamped to the window logs a ZstdDict frame may declare, [10, 29]. */
export function patchWindowLog(size: number): number {
  let log = WINDOW_LOG_MIN;
  while (log < DICT_WINDOW_LOG_MAX && 2 ** log < size) log++;
  return log;
}

/** Patches for targets up to this size use `SMALL_PATCH_LEVEL`. */
const SMALL_PATCH_MAX = 16 * 1024 * 1024;
/**
 * Measured on the package-update fixture (3 MiB binary, few edits): level 6 (lazy matching) gives
 * 3,652-byte patches where levels 3–4 give 4,522, at about 5× the time (175 ms); level 19 saves only
 * 2% more for 40× the time, and the spec (§2.2 TS notes) saw it blow up on a 40 MiB file. On a real
 * relinked binary (Debian libc.so.6 2.36-9+deb12u7 → u14, 1.9 MB, zstd 1.5.4 CLI --patch-from) level
 * 9 gives 136,952 B where 6 gives 159,022 B, for 0.31 s instead of 0.23 s: level 9.
 */
const SMALL_PATCH_LEVEL = 9;

/** The patch level used when none is configured: higher for targets small enough to afford it. */
export function defaultPatchLevel(targetSize: number): number {
  return targetSize <= SMALL_PATCH_MAX ? SMALL_PATCH_LEVEL : 3;
}

/**
 * Encodes ZstdDict patches: level by target size unless configured, long-distance matching, the
 * source force-loaded as raw dictionary, no checksum (optional, spec oci-delta §2.2: 4 bytes per
 * patch saved; the layer digest already covers the output). One instance per diff reuses its native
 * context, so thousands of patches do not pile up native dictionaries waiting for the garbage collector.
 */
export class ZstdDictEncoder {
  private cctx: binding.CCtx | null = null;

  /**
   * `level`: zstd level (default by target size); `window`: window in bytes, a power of two (default:
   * from the larger of the two sizes).
   */
  constructor(
    private readonly level?: number,
    private readonly window?: number,
  ) {}

  /** One zstd frame reproducing `target` from the whole of `source`. */
  encode(source: Buffer, target: Buffer): Buffer {
    if (hasDictMagic(source)) throw new Error('ZstdDict source starts with the zstd dictionary magic');
    const cctx = (this.cctx ??= new binding.CCtx());
    try {
      cctx.setParameter(binding.CParameter.compressionLevel, this.level ?? defaultPatchLevel(target.length));
      const windowLog = this.window
        ? patchWindowLog(this.window)
        : patchWindowLog(Math.max(source.length, target.length));
      cctx.setParameter(binding.CParameter.windowLog, windowLog);
      cctx.setParameter(binding.CParameter.enableLongDistanceMatching, 1);
      cctx.setParameter(binding.CParameter.checksumFlag, 0);
      cctx.setParameter(C_FORCE_ATTACH_DICT as binding.CParameter, DICT_FORCE_LOAD);
      cctx.loadDictionary(source);
      const dst = Buffer.allocUnsafe(binding.compressBound(target.length));
      const n = cctx.compress2(dst, target);
      return Buffer.from(dst.subarray(0, n));
    } finally {
      // drop the dictionary copy (up to 512 MiB) now, not when the context is collected
      cctx.reset(binding.ResetDirective.sessionAndParameters);
    }
  }
}

/** Encodes `target` against `source` with a one-off encoder. */
export function encodeZstdDictPatch(source: Buffer, target: Buffer, level?: number): Buffer {
  return new ZstdDictEncoder(level).encode(source, target);
}
