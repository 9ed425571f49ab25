import type { UpstreamArch } from './types.js';

/**
 * Choosing the binary among a release's assets. spec oci-delta §7: upstream's asset names are not
 * known (static binaries were attached by hand to v0.1.0; Source0 is `oci-delta-{version}.tar.gz`),
 * so names are matched by rule: mentions oci-delta and one alias of the architecture, is not a
 * checksum, signature, package or archive, and is for Linux. `static` names win.
 */
export const ARCH_ALIASES: Record<UpstreamArch, readonly string[]> = {
  x86_64: ['x86_64', 'x86-64', 'amd64', 'x64'],
  aarch64: ['aarch64', 'arm64'],
};

/** Suffixes of files that are not the executable itself. */
const NOT_A_BINARY =
  /\.(sha256|sha256sum|sha512|sha512sum|sha1|md5|sum|asc|sig|pem|crt|cert|bundle|sbom|spdx|json|txt|md|intoto\.jsonl|rpm|deb|apk|tar|tgz|gz|xz|zst|bz2|zip|7z)$/;
const OTHER_OS = /(darwin|macos|windows|freebsd|\.exe$)/;

function mentionsArch(name: string, arch: UpstreamArch): boolean {
  // Whole-word match: `-x86_64-`, `_amd64`, `.arm64` count; `arm64e` or `xamd64` do not.
  return ARCH_ALIASES[arch].some((a) =>
    new RegExp(`(^|[^a-z0-9])${a.replace(/[-.]/g, '\\$&')}($|[^a-z0-9])`).test(name),
  );
}

/** Score of an asset name for `arch`, or null when it is not a candidate at all. */
export function scoreAssetName(name: string, arch: UpstreamArch): number | null {
  const n = name.toLowerCase();
  if (!/oci[-_]?delta/.test(n)) return null;
  if (NOT_A_BINARY.test(n) || OTHER_OS.test(n) || /checksum|sha256sums|signature/.test(n)) return null;
  if (!mentionsArch(n, arch)) return null;
  let score = 0;
  if (n.includes('static')) score += 4;
  if (n.includes('linux')) score += 1;
  // A bare `oci-delta-<arch>` (nothing else) is the plainest static-binary naming.
  if (ARCH_ALIASES[arch].some((a) => n === `oci-delta-${a}` || n === `oci-delta.${a}`)) score += 2;
  return score;
}

/** The best asset for `arch`: highest score, then shortest name, then bytewise smallest (deterministic). */
export function pickAsset<T extends { name: string }>(assets: readonly T[], arch: UpstreamArch): T | null {
  let best: { a: T; s: number } | null = null;
  for (const a of assets) {
    const s = scoreAssetName(a.name, arch);
    if (s === null) continue;
    if (
      !best ||
      s > best.s ||
      (s === best.s &&
        (a.name.length < best.a.name.length ||
          (a.name.length === best.a.name.length &&
            Buffer.compare(Buffer.from(a.name), Buffer.from(best.a.name)) < 0)))
    ) {
      best = { a, s };
    }
  }
  return best ? best.a : null;
}
