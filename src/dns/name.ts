// Domain names: presentation form <-> wire form, and the lookup keys the zone uses.
// fedns keeps names as absolute, lowercase presentation strings ("a.b.example.com.") and
// looks them up by the latin1 string of their lowercase wire bytes, which the query parser
// can produce without building label arrays.

export const MAX_NAME_LENGTH = 255;
export const MAX_LABEL_LENGTH = 63;

/** Normalises to absolute lowercase presentation form ("Example.COM" -> "example.com."). */
export function canonicalName(name: string): string {
  const lower = name.toLowerCase();
  if (lower === '' || lower === '.') return '.';
  return lower.endsWith('.') ? lower : `${lower}.`;
}


/** A DNS label as Kubernetes names and topology use them (RFC 1123): lowercase letters, digits, "-". */
export const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** `value` as a DNS label (case folded: DNS is case-insensitive), or undefined when it is none. */
export function asDnsLabel(value: string): string | undefined {
  const l = value.toLowerCase();
  return DNS_LABEL.test(l) ? l : undefined;
}

/** Wire length of an absolute presentation name without escapes ("a.b." is 5 bytes). */
export function wireLength(name: string): number {
  return name === '.' ? 1 : name.length + (name.endsWith('.') ? 1 : 2);
}

/** Why a name cannot be used as a DNS name, or undefined when it can. */
export function nameProblem(name: string): string | undefined {
  const n = canonicalName(name);
  if (n === '.') return undefined;
  const labels = n.slice(0, -1).split('.');
  let wireLen = 1;
  for (const l of labels) {
    if (l.length === 0) return `empty label in "${name}"`;
    if (l.length > MAX_LABEL_LENGTH) return `label "${l}" is longer than ${MAX_LABEL_LENGTH} characters`;
    if (!/^[a-z0-9_*]([a-z0-9_-]*[a-z0-9_])?$/.test(l)) return `label "${l}" has characters other than letters, digits, "-" and "_"`;
    wireLen += l.length + 1;
  }
  if (wireLen > MAX_NAME_LENGTH) return `"${name}" is longer than ${MAX_NAME_LENGTH} bytes in wire form`;
  return undefined;
}

/** Wire form of a presentation name (no compression). Throws on invalid names. */
export function nameToWire(name: string): Buffer {
  const n = canonicalName(name);
  if (n === '.') return Buffer.from([0]);
  const labels = n.slice(0, -1).split('.');
  let len = 1;
  for (const l of labels) {
    if (l.length === 0 || l.length > MAX_LABEL_LENGTH) throw new Error(`invalid label in name "${name}"`);
    len += l.length + 1;
  }
  if (len > MAX_NAME_LENGTH) throw new Error(`name "${name}" is too long`);
  const out = Buffer.allocUnsafe(len);
  let o = 0;
  for (const l of labels) {
    out[o++] = l.length;
    o += out.write(l, o, 'latin1');
  }
  out[o] = 0;
  return out;
}

/** Zone lookup key of a presentation name: its lowercase wire form as latin1, built without a buffer. */
export function nameKey(name: string): string {
  const n = canonicalName(name);
  let out = '';
  let start = 0;
  for (;;) {
    const dot = n.indexOf('.', start);
    if (dot < 0 || n === '.') break;
    out += String.fromCharCode(dot - start) + n.slice(start, dot);
    start = dot + 1;
  }
  return out + '\0';
}

/** Presentation form of a lookup key (lowercase wire bytes as latin1). */
export function keyToName(key: string): string {
  if (key.length <= 1) return '.';
  let out = '';
  let i = 0;
  while (i < key.length) {
    const len = key.charCodeAt(i);
    if (len === 0) break;
    out += key.slice(i + 1, i + 1 + len) + '.';
    i += len + 1;
  }
  return out;
}

/** Key of the parent name ("" for the root). */
export function parentKey(key: string): string {
  const len = key.charCodeAt(0);
  return len === 0 ? '' : key.slice(len + 1);
}


/** Same test on lookup keys: the key ends with the zone's key at a label boundary. */
export function keyIsInZone(key: string, zoneKey: string): boolean {
  if (key.length < zoneKey.length || !key.endsWith(zoneKey)) return false;
  // Walk labels from the start so a suffix match lands exactly on a label boundary.
  let i = 0;
  const target = key.length - zoneKey.length;
  while (i < target) i += key.charCodeAt(i) + 1;
  return i === target;
}
