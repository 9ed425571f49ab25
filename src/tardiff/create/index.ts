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
export { layerFile, type LayerStreamFactory } from './layer-stream.js';
export {
  indexOldImage,
  OldImageIndex,
  type OldImageIndexOptions,
  type OldImageIndexProgress,
  type OldFile,
} from './old-image-index.js';
export type { OpHistogram } from './op-writer.js';
