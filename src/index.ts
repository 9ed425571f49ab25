/**
 * The library entry point (`import { applyDelta } from 'oci-delta-harness'`): the oci-delta applier,
 * creator and inspector, composefs image IDs and EROFS images, image references, delta discovery in
 * registries, and the one error type. Everything else under src/ is internal and may change.
 */
export {
  applyDelta,
  type ApplyOptions,
  type ApplyResult,
  type ApplySource,
  type AppliedKind,
  type AppliedLayer,
  type OutputCompression,
} from './delta/apply.js';
export {
  createDelta,
  type BinaryDiff,
  type CreateDeltaOptions,
  type CreateDeltaResult,
  type CreateEvent,
  type CreateStats,
  type CreatedLayer,
  type CreatedLayerKind,
} from './delta/create.js';
export {
  inspectDelta,
  type DeltaInspection,
  type InspectedKind,
  type InspectedLayer,
} from './delta/inspect.js';
export {
  composefsImage,
  composefsImageId,
  type ComposefsFormat,
  type ComposefsImage,
  type ComposefsImageOptions,
} from './composefs/oci/image-id.js';
export { imageId, writeErofs, type WriteErofsOptions } from './composefs/format/erofs/write.js';
export { parseDumpfile, parseDumpfileSync, type ParseDumpfileOptions } from './composefs/dumpfile/parse.js';
export { formatRef, parseRef, type OciLayoutRef, type ParseRefOptions } from './oci/ref.js';
export { discoverDelta, discoverDeltaForSource, type DiscoveredDelta } from './oci/registry/discover.js';
export { OdhError, isOdhError, type ErrorCode, type ErrorContext } from './util/errors.js';
