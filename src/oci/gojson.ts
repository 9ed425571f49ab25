import type { Descriptor, ImageManifest, Platform } from './types.js';

/**
 * Go `encoding/json` string encoding (Go ≥ 1.22): JSON escapes as JSON.stringify writes them, plus
 * `<`, `>`, `&`, U+2028 and U+2029 as \u escapes; lone surrogates become U+FFFD (Go's decoder
 * replaces them before re-encoding).
 */
export function goJsonString(s: string): string {
  const wellFormed = s.replace(
    /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g,
    '\ufffd',
  );
  return JSON.stringify(wellFormed).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** A Go `map[string]string`: keys sorted bytewise (UTF-8), compact. */
function goStringMap(m: Record<string, string>): string {
  const entries = Object.entries(m).sort(([a], [b]) =>
    Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')),
  );
  return `{${entries.map(([k, v]) => `${goJsonString(k)}:${goJsonString(v)}`).join(',')}}`;
}

function goStringList(l: string[]): string {
  return `[${l.map(goJsonString).join(',')}]`;
}

/** image-spec v1.1 Platform; `features` is not a field of the Go struct and is dropped. [inferred] */
function goPlatform(p: Platform): string {
  let s = `{"architecture":${goJsonString(p.architecture)},"os":${goJsonString(p.os)}`;
  if (p['os.version']) s += `,"os.version":${goJsonString(p['os.version'])}`;
  if (p['os.features']?.length) s += `,"os.features":${goStringList(p['os.features'])}`;
  if (p.variant) s += `,"variant":${goJsonString(p.variant)}`;
  return s + '}';
}

/** A descriptor as Go's image-spec struct marshals it (field order and omitempty rules). */
export function goDescriptor(d: Descriptor): string {
  let s = `{"mediaType":${goJsonString(d.mediaType)},"digest":${goJsonString(d.digest)},"size":${d.size}`;
  if (d.urls?.length) s += `,"urls":${goStringList(d.urls)}`;
  if (d.annotations && Object.keys(d.annotations).length) s += `,"annotations":${goStringMap(d.annotations)}`;
  if (d.data) s += `,"data":${goJsonString(d.data)}`;
  if (d.platform) s += `,"platform":${goPlatform(d.platform)}`;
  if (d.artifactType) s += `,"artifactType":${goJsonString(d.artifactType)}`;
  return s + '}';
}

/**
 * A manifest re-serialized the way upstream's Go apply writes it (spec oci-delta §4.1 step 6d):
 * compact; schemaVersion, mediaType, artifactType, config, layers, subject, annotations; unknown
 * fields dropped; empty optional fields omitted; map keys sorted; `<`, `>`, `&` escaped.
 */
export function encodeManifestGo(m: ImageManifest): Buffer {
  let s = `{"schemaVersion":${m.schemaVersion}`;
  if (m.mediaType) s += `,"mediaType":${goJsonString(m.mediaType)}`;
  if (m.artifactType) s += `,"artifactType":${goJsonString(m.artifactType)}`;
  s += `,"config":${goDescriptor(m.config)}`;
  s += `,"layers":[${m.layers.map(goDescriptor).join(',')}]`;
  if (m.subject) s += `,"subject":${goDescriptor(m.subject)}`;
  if (m.annotations && Object.keys(m.annotations).length) s += `,"annotations":${goStringMap(m.annotations)}`;
  return Buffer.from(s + '}', 'utf8');
}
