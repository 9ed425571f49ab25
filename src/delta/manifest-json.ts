import type { Descriptor, ImageManifest, Platform } from '../oci/types.js';

/**
 * Re-serialization of the reconstructed image manifest the way upstream Go apply writes it (spec
 * oci-delta §4.1 step 6d, `json.Marshal`): compact, Go struct field order, unknown fields dropped,
 * map keys sorted bytewise, and `<`, `>`, `&`, U+2028, U+2029 escaped as `\u003c` etc.
 */
export function serializeManifest(m: ImageManifest): Buffer {
  const o: Obj = new Map<string, unknown>([['schemaVersion', m.schemaVersion]]);
  if (m.mediaType) o.set('mediaType', m.mediaType);
  if (m.artifactType) o.set('artifactType', m.artifactType);
  o.set('config', descriptor(m.config));
  o.set('layers', m.layers.map(descriptor));
  if (m.subject) o.set('subject', descriptor(m.subject));
  if (m.annotations && Object.keys(m.annotations).length) o.set('annotations', sortedMap(m.annotations));
  return Buffer.from(goEscape(toJson(o)));
}

/** Go `v1.Descriptor` field order; empty optional fields are omitted (`omitempty`). */
function descriptor(d: Descriptor): Obj {
  const o: Obj = new Map<string, unknown>([
    ['mediaType', d.mediaType],
    ['digest', d.digest],
    ['size', d.size],
  ]);
  if (d.urls?.length) o.set('urls', d.urls);
  if (d.annotations && Object.keys(d.annotations).length) o.set('annotations', sortedMap(d.annotations));
  if (d.data) o.set('data', d.data);
  if (d.platform) o.set('platform', platform(d.platform));
  if (d.artifactType) o.set('artifactType', d.artifactType);
  return o;
}

function platform(p: Platform): Obj {
  const o: Obj = new Map<string, unknown>([
    ['architecture', p.architecture],
    ['os', p.os],
  ]);
  if (p['os.version']) o.set('os.version', p['os.version']);
  if (p['os.features']?.length) o.set('os.features', p['os.features']);
  if (p.variant) o.set('variant', p.variant);
  if (p.features?.length) o.set('features', p.features);
  return o;
}

/** Go sorts map keys by their bytes. */
function sortedMap(m: Record<string, string>): Obj {
  const keys = Object.keys(m).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return new Map(keys.map((k) => [k, m[k]!]));
}

/** An object whose keys keep insertion order (plain objects would put integer-like keys first). */
type Obj = Map<string, unknown>;

function toJson(v: unknown): string {
  if (v instanceof Map) {
    return `{${[...v].map(([k, x]) => `${JSON.stringify(k)}:${toJson(x)}`).join(',')}}`;
  }
  if (Array.isArray(v)) return `[${v.map(toJson).join(',')}]`;
  return JSON.stringify(v);
}

function goEscape(json: string): string {
  return json.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
