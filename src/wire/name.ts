// Domain names: presentation form <-> wire form, and the lookup keys the zone uses.
// fedns keeps names as absolute, lowercase presentation strings ("a.b.example.com.", with
// RFC 1035 5.1 escapes for a label holding "." or "\" or other bytes: "a\.b.") and
// looks them up by the latin1 string of their lowercase wire bytes, which the query parser
// can produce without building label arrays.

export const MAX_NAME_LENGTH = 255;
export const MAX_LABEL_LENGTH = 63;

/** Normalises to absolute lowercase presentation form ("Example.COM" -> "example.com."). */
export function canonicalName(name: string): string {
  const lower = name.toLowerCase();
  if (lower === '' || lower === '.') return '.';
  return endsWithRoot(lower) ? lower : `${lower}.`;
}

/** The name ends with an unescaped dot ("a\\." does, "a\." does not). */
function endsWithRoot(name: string): boolean {
  if (!name.endsWith('.')) return false;
  let slashes = 0;
  for (let i = name.length - 2; i >= 0 && name.charCodeAt(i) === 0x5c; i--) slashes++;
  return slashes % 2 === 0;
}

/**
 * RFC 1035 5.1 presentation of one label's bytes (a latin1 string): "." and "\" escaped with a
 * backslash, bytes outside printable ASCII as \DDD, so that the text reads back as the same labels.
 */
export function escapeLabel(label: string): string {
  let plain = true;
  for (let i = 0; i < label.length && plain; i++) {
    const c = label.charCodeAt(i);
    plain = c > 0x20 && c < 0x7f && c !== 0x2e && c !== 0x5c;
  }
  if (plain) return label;
  let out = '';
  for (let i = 0; i < label.length; i++) {
    const c = label.charCodeAt(i);
    if (c === 0x2e || c === 0x5c) out += '\\' + label[i];
    else if (c <= 0x20 || c >= 0x7f) out += '\\' + String(c).padStart(3, '0');
    else out += label[i];
  }
  return out;
}

/** Lowercases ASCII letters only (DNS case-insensitivity, RFC 4343), in a latin1 string. */
export function asciiLower(s: string): string {
  return /[\u0080-\u00ff]/.test(s) ? s.replace(/[A-Z]/g, (c) => c.toLowerCase()) : s.toLowerCase();
}

/**
 * The labels of a presentation name as latin1 byte strings, escapes undone (RFC 1035 5.1), the
 * root left out. Throws on an empty label, a dangling backslash or a \DDD above 255.
 */
export function labelsOf(name: string): string[] {
  if (name === '' || name === '.') return [];
  const labels: string[] = [];
  let label = '';
  let i = 0;
  const n = name.length;
  while (i < n) {
    const c = name.charCodeAt(i);
    if (c === 0x2e) {
      if (label === '') throw new Error(`empty label in name "${name}"`);
      labels.push(label);
      label = '';
      i++;
      continue;
    }
    if (c !== 0x5c) {
      label += name[i++];
      continue;
    }
    if (i + 1 >= n) throw new Error(`name "${name}" ends with a lone backslash`);
    if (/^[0-9]{3}$/.test(name.slice(i + 1, i + 4))) {
      const v = Number(name.slice(i + 1, i + 4));
      if (v > 255) throw new Error(`escape \\${name.slice(i + 1, i + 4)} in name "${name}" is not a byte`);
      label += String.fromCharCode(v);
      i += 4;
    } else {
      label += name[i + 1];
      i += 2;
    }
  }
  if (label !== '') labels.push(label);
  return labels;
}

/** Presentation form of labels (latin1 byte strings), escaped, absolute. */
export function labelsToName(labels: string[]): string {
  return labels.length ? labels.map(escapeLabel).join('.') + '.' : '.';
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

/** Wire form of a presentation name (no compression), lowercase. Throws on invalid names. */
export function nameToWire(name: string): Buffer {
  const n = canonicalName(name);
  if (n === '.') return Buffer.from([0]);
  const labels = name.includes('\\') ? labelsOf(name).map(asciiLower) : n.slice(0, -1).split('.');
  let len = 1;
  for (const l of labels) {
    if (l.length === 0) throw new Error(`empty label in "${name}"`);
    if (l.length > MAX_LABEL_LENGTH) throw new Error(`label longer than ${MAX_LABEL_LENGTH} bytes in "${name}"`);
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

/** Where nameKey() writes a key before it becomes a string (a name's wire form is at most 255 bytes). */
const keyBytes = Buffer.alloc(MAX_NAME_LENGTH + 1);

/**
 * Zone lookup key of a presentation name: its lowercase wire form as latin1. An absolute name
 * without escapes is written byte by byte and read back as one string: building it label by label
 * made several strings per label, and the zone makes a key for each of a service's names on every
 * change of the service.
 */
export function nameKey(name: string): string {
  const n = name.toLowerCase();
  const len = n.length;
  if (len < 2 || len >= MAX_NAME_LENGTH || n.charCodeAt(len - 1) !== 0x2e) return nameKeyOfLabels(name);
  // Each dot becomes the length of the label after it; the first label's length goes before it.
  let lengthAt = 0;
  for (let i = 0; i < len; i++) {
    const c = n.charCodeAt(i);
    if (c === 0x2e) {
      keyBytes[lengthAt] = i - lengthAt;
      lengthAt = i + 1;
    } else if (c === 0x5c || c > 0xff) {
      return nameKeyOfLabels(name);
    } else {
      keyBytes[i + 1] = c;
    }
  }
  keyBytes[lengthAt] = 0;
  return keyBytes.toString('latin1', 0, len + 1);
}

/** nameKey() of any name: escapes, a relative name, the root, characters past latin1. */
function nameKeyOfLabels(name: string): string {
  const n = canonicalName(name);
  if (n.includes('\\')) return labelsOf(name).map((l) => String.fromCharCode(l.length) + asciiLower(l)).join('') + '\0';
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

/** The labels of a lookup key, left to right, each escaped as presentation text (RFC 1035 5.1); none for the root. */
export function keyLabels(key: string): string[] {
  const labels: string[] = [];
  let i = 0;
  while (i < key.length) {
    const len = key.charCodeAt(i);
    if (len === 0) break;
    labels.push(escapeLabel(key.slice(i + 1, i + 1 + len)));
    i += len + 1;
  }
  return labels;
}

/** Presentation form of a lookup key (lowercase wire bytes as latin1), escaped (RFC 1035 5.1). */
export function keyToName(key: string): string {
  const labels = keyLabels(key);
  return labels.length ? labels.join('.') + '.' : '.';
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
