/**
 * Delta creation statistics and the text upstream prints for them (spec oci-delta §5.1 step 7, §6).
 */

export interface CreateStats {
  oldLayers: number;
  newLayers: number;
  /** New-only layers (a tar-diff was attempted). */
  processedLayers: number;
  /** Reused layers (diff_id present in the old image). */
  skippedLayers: number;
  /** Σ original compressed sizes of the new-only layers. */
  processedLayerBytes: number;
  /** Σ sizes of the tar-diffs stored. */
  tarDiffLayerBytes: number;
  /** Σ sizes of the original blobs stored (tar-diff not smaller, or failed). */
  originalLayerBytes: number;
  /** processed − tar-diff − original (may be negative only if nothing was processed). */
  bytesSaved: number;
}

/**
 * Go `%.Nf`: the exact binary value rounded to N decimals, ties to even (JS toFixed breaks exact
 * ties upward, e.g. 12.25 → "12.3" where Go prints "12.2").
 */
export function goFixed(x: number, digits: number): string {
  if (!Number.isFinite(x) || Math.abs(x) >= 1e21) return x.toFixed(digits);
  const neg = x < 0;
  // toFixed(100) is the exact decimal expansion of any double of this magnitude with few fraction bits.
  const exact = Math.abs(x).toFixed(100);
  const [int, frac] = exact.split('.') as [string, string];
  const kept = frac.slice(0, digits);
  const rest = frac.slice(digits);
  let digitsStr = int + kept;
  const half = rest[0]! > '5' || (rest[0] === '5' && /[1-9]/.test(rest.slice(1)));
  const tie = rest[0] === '5' && !/[1-9]/.test(rest.slice(1));
  const last = Number(digitsStr[digitsStr.length - 1]);
  if (half || (tie && last % 2 === 1)) {
    digitsStr = (BigInt(digitsStr) + 1n).toString().padStart(digitsStr.length, '0');
  }
  const i = digitsStr.length - digits;
  const out = digits > 0 ? `${digitsStr.slice(0, i)}.${digitsStr.slice(i)}` : digitsStr;
  return neg ? `-${out}` : out; // Go keeps the sign, e.g. -0.01 → "-0.0"
}

function percentSaved(s: CreateStats): number {
  return s.processedLayerBytes > 0 ? (s.bytesSaved / s.processedLayerBytes) * 100 : 0;
}

/** The `-s/--statistics` block on stdout, line for line as upstream (spec §6). */
export function formatStatistics(s: CreateStats): string {
  const lines = [
    '',
    'Delta creation statistics:',
    `  Old image layers: ${s.oldLayers}`,
    `  New image layers: ${s.newLayers}`,
    `  Processed layers: ${s.processedLayers}`,
    `  Skipped layers:   ${s.skippedLayers}`,
    `  Processed layer bytes:  ${s.processedLayerBytes}`,
    `  Tar-diff layer bytes:   ${s.tarDiffLayerBytes}`,
    `  Original layer bytes:   ${s.originalLayerBytes}`,
  ];
  // spec §6: the saved line and the final empty line only when something was processed.
  if (s.processedLayerBytes > 0) {
    lines.push(`  Bytes saved:            ${s.bytesSaved} (${goFixed(percentSaved(s), 1)}%)`, '');
  }
  return `${lines.join('\n')}\n`;
}

/** Go `%.2f MB` with MB = 10^6 (spec §6). */
function mb(bytes: number): string {
  return `${goFixed(bytes / 1e6, 2)} MB`;
}

/** The info line upstream logs without `-s` (spec §6 "Delta complete: …"). */
export function formatCompleteLine(s: CreateStats): string {
  // upstream leaves the byte figures out when no layer bytes were processed
  if (s.processedLayerBytes === 0) {
    return `Delta complete: ${s.processedLayers} layer(s) diffed, ${s.skippedLayers} reused`;
  }
  const stored = s.tarDiffLayerBytes + s.originalLayerBytes;
  return (
    `Delta complete: ${s.processedLayers} layer(s) diffed, ${s.skippedLayers} reused, ` +
    `bytes saved ${goFixed(percentSaved(s), 2)}% (${mb(s.processedLayerBytes)} → ${mb(stored)})`
  );
}
