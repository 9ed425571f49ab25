import type { Command } from 'commander';
import { inspectDelta, type DeltaInspection } from '../delta/inspect.js';

/** Registers `odh inspect`: what a delta carries, layer by layer (spec oci-delta §1). */
export function register(program: Command): void {
  program
    .command('inspect')
    .description(
      'describe an oci-delta artifact: digests, per-layer kind, sizes, tar-diff ops and source files',
    )
    .argument(
      '<DELTA>',
      'delta artifact: oci-archive:PATH[:NAME|:@N], oci:DIR[:NAME|:@N] or a bare archive path',
    )
    .option('--json', 'print the result as one JSON object')
    .action(async (delta: string, flags: { json?: boolean }) => {
      const r = await inspectDelta(delta);
      process.stdout.write(flags.json ? `${JSON.stringify(r)}\n` : human(r));
    });
}

function human(r: DeltaInspection): string {
  const out = [
    `delta manifest ${r.deltaManifestDigest}`,
    `source config  ${r.sourceConfig}`,
    ...(r.sourceManifest ? [`source image   ${r.sourceManifest}`] : []),
    `target image   ${r.targetManifest}`,
    `target config  ${r.targetConfig}`,
    `layers (${r.layers.length}):`,
  ];
  for (const l of r.layers) {
    let line = `  ${l.index}: ${l.target.digest} ${l.target.size} B`;
    if (l.kind === 'reused') line += ' reused';
    else if (l.kind === 'original') line += ` original (${l.compression}) ${l.blob!.size} B`;
    else {
      const ops = Object.entries(l.ops!)
        .filter(([, n]) => n > 0)
        .map(([k, n]) => `${k}=${n}`)
        .join(' ');
      line += ` tar-diff v${l.tarDiffVersion} ${l.blob!.size} B → ${l.outputSize}${l.outputSizeExact ? '' : '+'} B tar; ops ${ops || 'none'}; ${l.sources!.length} source file(s)`;
    }
    out.push(line);
  }
  out.push(`delta layer bytes ${r.deltaLayerBytes} for ${r.targetLayerBytes} target layer bytes`);
  out.push(`source files (${r.sources.length}):`, ...r.sources.map((s) => `  ${s}`));
  out.push(`signatures (${r.signatures.length}):`);
  for (const sig of r.signatures) {
    out.push(`  ${sig.digest} ${sig.size} B, ${sig.payloads.length} payload(s)`);
    for (const p of sig.payloads) {
      const what = p.signedManifest
        ? `signs ${p.signedManifest}${p.matchesTarget ? ' (the target)' : ' (NOT the target)'}`
        : 'not a cosign simple-signing payload';
      const ref = p.dockerReference ? ` as ${p.dockerReference}` : '';
      out.push(`    ${p.digest} ${what}${ref}${p.hasSignature ? '' : ', no signature annotation'}`);
    }
  }
  return `${out.join('\n')}\n`;
}
