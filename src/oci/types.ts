import { OdhError, type ErrorContext } from '../util/errors.js';
import { parseDiffId, parseDigest, typeName } from './digest.js';

// Media types (OCI image-spec v1.1; oci-delta spec §1.3, §1.4).
export const MEDIA_TYPE_IMAGE_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MEDIA_TYPE_IMAGE_INDEX = 'application/vnd.oci.image.index.v1+json';
export const MEDIA_TYPE_IMAGE_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const MEDIA_TYPE_LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar';
export const MEDIA_TYPE_LAYER_TAR_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const MEDIA_TYPE_LAYER_TAR_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';
export const MEDIA_TYPE_LAYER_ND_TAR = 'application/vnd.oci.image.layer.nondistributable.v1.tar';
export const MEDIA_TYPE_LAYER_ND_TAR_GZIP = 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip';
export const MEDIA_TYPE_LAYER_ND_TAR_ZSTD = 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd';
export const MEDIA_TYPE_EMPTY = 'application/vnd.oci.empty.v1+json';
/** A tar-diff blob inside a delta (spec oci-delta §1.4). */
export const MEDIA_TYPE_TAR_DIFF = 'application/vnd.tar-diff';
/** `artifactType` of a delta manifest (spec oci-delta §1.3). */
export const ARTIFACT_TYPE_DELTA = 'application/vnd.io.github.containers.oci-delta.v1';
/** Annotation naming an index entry (spec oci-delta §1.2). */
export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';
/** The 2-byte empty JSON `{}` and its digest (spec oci-delta §1.1). */
export const EMPTY_JSON = Buffer.from('{}');
export const EMPTY_JSON_DIGEST = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';
/** Bytes of the `oci-layout` file (spec oci-delta §1.1). */
export const OCI_LAYOUT_FILE = Buffer.from('{"imageLayoutVersion":"1.0.0"}');

/** Compression implied by a layer media type; undefined when not a known layer type. */
export function layerCompression(mediaType: string): 'none' | 'gzip' | 'zstd' | undefined {
  switch (mediaType) {
    case MEDIA_TYPE_LAYER_TAR:
    case MEDIA_TYPE_LAYER_ND_TAR:
      return 'none';
    case MEDIA_TYPE_LAYER_TAR_GZIP:
    case MEDIA_TYPE_LAYER_ND_TAR_GZIP:
      return 'gzip';
    case MEDIA_TYPE_LAYER_TAR_ZSTD:
    case MEDIA_TYPE_LAYER_ND_TAR_ZSTD:
      return 'zstd';
    default:
      return undefined;
  }
}

export interface Platform {
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
  features?: string[];
}

/** OCI content descriptor. Field order follows Go's image-spec struct (used when re-serializing). */
export interface Descriptor {
  mediaType: string;
  digest: string;
  /** Validated non-negative safe integer. */
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  /** Base64 embedded data, kept as given. */
  data?: string;
  platform?: Platform;
  artifactType?: string;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** Image config: only `rootfs` is validated; every other field is kept as parsed. */
export interface ImageConfig {
  architecture?: string;
  os?: string;
  rootfs: { type: string; diff_ids: string[] };
  [key: string]: unknown;
}

type Obj = Record<string, unknown>;

function fail(where: string, what: string, ctx: ErrorContext): never {
  throw new OdhError('FORMAT', `${where}: ${what}`, ctx);
}

function parseJson(bytes: Uint8Array, where: string, ctx: ErrorContext): Obj {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (e) {
    fail(where, `invalid JSON (${(e as Error).message})`, ctx);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    fail(where, `expected a JSON object, got ${typeName(v)}`, ctx);
  return v as Obj;
}

function str(o: Obj, key: string, where: string, ctx: ErrorContext): string {
  const v = o[key];
  if (v === undefined) fail(where, `missing field "${key}"`, ctx);
  if (typeof v !== 'string') fail(where, `field "${key}" must be a string, got ${typeName(v)}`, ctx);
  return v;
}

function optStr(o: Obj, key: string, where: string, ctx: ErrorContext): string | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') fail(where, `field "${key}" must be a string, got ${typeName(v)}`, ctx);
  return v;
}

function optStrArray(o: Obj, key: string, where: string, ctx: ErrorContext): string[] | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))
    fail(where, `field "${key}" must be an array of strings`, ctx);
  return v as string[];
}

function optAnnotations(o: Obj, where: string, ctx: ErrorContext): Record<string, string> | undefined {
  const v = o.annotations;
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    fail(where, `"annotations" must be an object, got ${typeName(v)}`, ctx);
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string')
      fail(where, `annotation ${JSON.stringify(k)} must be a string, got ${typeName(val)}`, ctx);
  }
  return { ...(v as Record<string, string>) };
}

function obj(v: unknown, where: string, ctx: ErrorContext): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    fail(where, `expected an object, got ${typeName(v)}`, ctx);
  return v as Obj;
}

function schemaVersion2(o: Obj, where: string, ctx: ErrorContext): 2 {
  if (o.schemaVersion !== 2)
    fail(where, `schemaVersion must be 2, got ${JSON.stringify(o.schemaVersion)}`, ctx);
  return 2;
}

/** Validates one descriptor object (already JSON-parsed). `where` names it, e.g. "manifest layers[3]". */
export function parseDescriptor(value: unknown, where: string, ctx: ErrorContext = {}): Descriptor {
  const o = obj(value, where, ctx);
  const mediaType = str(o, 'mediaType', where, ctx);
  const digest = parseDigest(o.digest, `${where}.digest`, ctx).digest;
  const size = o.size;
  if (size === undefined) fail(where, 'missing field "size"', ctx);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    fail(where, `"size" must be a non-negative safe integer, got ${JSON.stringify(size)}`, ctx);
  }
  const d: Descriptor = { mediaType, digest, size };
  const urls = optStrArray(o, 'urls', where, ctx);
  if (urls) d.urls = urls;
  const annotations = optAnnotations(o, where, ctx);
  if (annotations) d.annotations = annotations;
  const data = optStr(o, 'data', where, ctx);
  if (data !== undefined) d.data = data;
  if (o.platform !== undefined) d.platform = parsePlatform(o.platform, `${where}.platform`, ctx);
  const artifactType = optStr(o, 'artifactType', where, ctx);
  if (artifactType !== undefined) d.artifactType = artifactType;
  return d;
}

function parsePlatform(value: unknown, where: string, ctx: ErrorContext): Platform {
  const o = obj(value, where, ctx);
  const p: Platform = { architecture: str(o, 'architecture', where, ctx), os: str(o, 'os', where, ctx) };
  const osv = optStr(o, 'os.version', where, ctx);
  if (osv !== undefined) p['os.version'] = osv;
  const osf = optStrArray(o, 'os.features', where, ctx);
  if (osf) p['os.features'] = osf;
  const variant = optStr(o, 'variant', where, ctx);
  if (variant !== undefined) p.variant = variant;
  const features = optStrArray(o, 'features', where, ctx);
  if (features) p.features = features;
  return p;
}

function descriptorList(o: Obj, key: string, where: string, ctx: ErrorContext): Descriptor[] {
  const v = o[key];
  if (v === undefined) fail(where, `missing field "${key}"`, ctx);
  if (!Array.isArray(v)) fail(where, `field "${key}" must be an array, got ${typeName(v)}`, ctx);
  return v.map((d, i) => parseDescriptor(d, `${where} ${key}[${i}]`, ctx));
}

/**
 * Parses an image (or artifact) manifest. Unknown fields are dropped from the returned value
 * (callers needing exact bytes keep `bytes`). A present `mediaType` must be the image manifest type.
 */
export function parseManifest(bytes: Uint8Array, where = 'manifest', ctx: ErrorContext = {}): ImageManifest {
  const o = parseJson(bytes, where, ctx);
  const schemaVersion = schemaVersion2(o, where, ctx);
  const mediaType = optStr(o, 'mediaType', where, ctx);
  if (mediaType !== undefined && mediaType !== MEDIA_TYPE_IMAGE_MANIFEST) {
    fail(where, `mediaType ${JSON.stringify(mediaType)} is not an image manifest`, ctx);
  }
  const artifactType = optStr(o, 'artifactType', where, ctx);
  // Upstream's message for a nested index used as an image (spec oci-delta §1.2).
  if (o.config === undefined) fail(where, 'manifest has no config digest', ctx);
  const config = parseDescriptor(o.config, `${where} config`, ctx);
  const layers = descriptorList(o, 'layers', where, ctx);
  const subject = o.subject === undefined ? undefined : parseDescriptor(o.subject, `${where} subject`, ctx);
  const annotations = optAnnotations(o, where, ctx);
  // Built in Go's field order: schemaVersion, mediaType, artifactType, config, layers, subject, annotations.
  const m = { schemaVersion } as ImageManifest;
  if (mediaType !== undefined) m.mediaType = mediaType;
  if (artifactType !== undefined) m.artifactType = artifactType;
  m.config = config;
  m.layers = layers;
  if (subject) m.subject = subject;
  if (annotations) m.annotations = annotations;
  return m;
}

/** Parses an image index (index.json or a nested index blob). */
export function parseIndex(bytes: Uint8Array, where = 'index.json', ctx: ErrorContext = {}): ImageIndex {
  const o = parseJson(bytes, where, ctx);
  const idx: ImageIndex = { schemaVersion: schemaVersion2(o, where, ctx), manifests: [] };
  const mediaType = optStr(o, 'mediaType', where, ctx);
  if (mediaType !== undefined) {
    if (mediaType !== MEDIA_TYPE_IMAGE_INDEX)
      fail(where, `mediaType ${JSON.stringify(mediaType)} is not an image index`, ctx);
    idx.mediaType = mediaType;
  }
  const artifactType = optStr(o, 'artifactType', where, ctx);
  if (artifactType !== undefined) idx.artifactType = artifactType;
  idx.manifests = descriptorList(o, 'manifests', where, ctx);
  if (o.subject !== undefined) idx.subject = parseDescriptor(o.subject, `${where} subject`, ctx);
  const annotations = optAnnotations(o, where, ctx);
  if (annotations) idx.annotations = annotations;
  return idx;
}

/** Parses an image config; validates `rootfs.type` and each `rootfs.diff_ids[i]` digest. */
export function parseImageConfig(bytes: Uint8Array, where = 'config', ctx: ErrorContext = {}): ImageConfig {
  const o = parseJson(bytes, where, ctx);
  if (o.rootfs === undefined) fail(where, 'missing field "rootfs"', ctx);
  const rootfs = obj(o.rootfs, `${where} rootfs`, ctx);
  const type = str(rootfs, 'type', `${where} rootfs`, ctx);
  const ids = rootfs.diff_ids;
  if (ids === undefined) fail(`${where} rootfs`, 'missing field "diff_ids"', ctx);
  if (!Array.isArray(ids)) fail(`${where} rootfs`, `"diff_ids" must be an array, got ${typeName(ids)}`, ctx);
  // diff_ids may be sha256/sha384/sha512 (spec oci-delta §4.3), blob digests only sha256/sha512.
  const diffIds = ids.map((d, i) => parseDiffId(d, `${where} rootfs.diff_ids[${i}]`, ctx).digest);
  for (const k of ['architecture', 'os'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'string')
      fail(where, `field "${k}" must be a string, got ${typeName(o[k])}`, ctx);
  }
  return { ...o, rootfs: { ...rootfs, type, diff_ids: diffIds } } as ImageConfig;
}
