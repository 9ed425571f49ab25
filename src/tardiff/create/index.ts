/** The tar-diff creator (spec oci-delta §5): public entry points. */
export {
  bsdiffFits,
  createTarDiff,
  DEFAULT_MAX_BSDIFF,
  DEFAULT_MAX_ZSTD_DICT,
  TAR_DIFF_MODES,
  zstdFits,
  type CreateProgress,
  type CreateTarDiffOptions,
  type CreateTarDiffResult,
  type TarDiffMode,
} from './create.js';
export { layerFile, type LayerStreamFactory } from './layers.js';
export {
  analyzeSources,
  SourceSet,
  type AnalyzeOptions,
  type AnalyzeProgress,
  type OldFile,
} from './sources.js';
export type { OpHistogram } from './op-writer.js';
