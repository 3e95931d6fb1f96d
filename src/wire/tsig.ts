// TSIG (RFC 8945) with HMAC-SHA1/224/256/384/512: verifying requests and signing
// (multi-message) responses.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { RRClass, RRType } from './constants.js';
import { canonicalName, nameToWire } from './name.js';
import { Reader } from './message.js';

export const HMAC_SHA256 = 'hmac-sha256.';

/** TSIG algorithm names (RFC 8945 6, RFC 4635) -> node:crypto HMAC hash. MD5 is not offered. */
export const TSIG_ALGORITHMS = {
  'hmac-sha1': 'sha1',
  'hmac-sha224': 'sha224',
  'hmac-sha256': 'sha256',
  'hmac-sha384': 'sha384',
  'hmac-sha512': 'sha512',
} as const;
export type TsigAlgorithm = keyof typeof TSIG_ALGORITHMS;

function hmac(key: TsigKey) {
  const hash = TSIG_ALGORITHMS[key.algorithm.replace(/\.$/, '') as TsigAlgorithm];
  if (!hash) throw new Error(`unsupported TSIG algorithm ${key.algorithm}`);
  return createHmac(hash, key.secret);
}

/** Bytes of a TSIG RR (RFC 8945 4.2): owner, type to RDLENGTH, algorithm, time, fudge, MAC, id, error, other. */
function tsigLength(owner: number, algorithm: number, mac: number, other: number): number {
  return owner + 10 + algorithm + 6 + 2 + 2 + mac + 2 + 2 + 2 + other;
}

export interface TsigKey {
  /** Key name, canonical ("xfr-key."). */
  name: string;
  /** Algorithm name, canonical ("hmac-sha256."). */
  algorithm: string;
  secret: Buffer;
}

/** TSIG error codes (RFC 8945 3). */
export const TsigError = { BADSIG: 16, BADKEY: 17, BADTIME: 18, BADTRUNC: 22 } as const;

export interface TsigRecord {
  keyName: string;
  algorithm: string;
  timeSigned: number;
  fudge: number;
  mac: Buffer;
  originalId: number;
  error: number;
  other: Buffer;
  /** Offset of the TSIG RR in the message. */
  offset: number;
}

/** Reads the TSIG RR at `offset` (the last additional record). */
export function readTsig(msg: Buffer, offset: number): TsigRecord {
  const r = new Reader(msg);
  r.off = offset;
  const keyName = r.name();
  const type = r.u16();
  const klass = r.u16();
  r.u32();
  const rdlen = r.u16();
  const end = r.off + rdlen;
  if (type !== RRType.TSIG || klass !== RRClass.ANY) throw new Error('not a TSIG record');
  const algorithm = r.name();
  const hi = r.u16();
  const lo = r.u32();
  const fudge = r.u16();
  const mac = Buffer.from(r.bytes(r.u16()));
  const originalId = r.u16();
  const error = r.u16();
  const other = Buffer.from(r.bytes(r.u16()));
  if (r.off !== end || end !== msg.length) throw new Error('TSIG record malformed or not last');
  return { keyName, algorithm, timeSigned: hi * 2 ** 32 + lo, fudge, mac, originalId, error, other, offset };
}

function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
}

function time48(t: number): Buffer {
  const b = Buffer.alloc(6);
  b.writeUInt16BE(Math.floor(t / 2 ** 32), 0);
  b.writeUInt32BE(t % 2 ** 32, 2);
  return b;
}

/** TSIG variables (RFC 8945 4.3.3); `timersOnly` for later messages of a transfer. */
function variables(key: TsigKey, timeSigned: number, fudge: number, error: number, other: Buffer, timersOnly: boolean): Buffer {
  if (timersOnly) return Buffer.concat([time48(timeSigned), u16(fudge)]);
  return Buffer.concat([
    nameToWire(key.name),
    u16(RRClass.ANY),
    Buffer.alloc(4),
    nameToWire(key.algorithm),
    time48(timeSigned),
    u16(fudge),
    u16(error),
    u16(other.length),
    other,
  ]);
}

/** The message as it was before its TSIG was added: TSIG removed, ARCOUNT less one, original ID. */
function unsigned(msg: Buffer, t: TsigRecord): Buffer {
  const m = Buffer.from(msg.subarray(0, t.offset));
  m.writeUInt16BE(t.originalId, 0);
  m.writeUInt16BE(m.readUInt16BE(10) - 1, 10);
  return m;
}

/**
 * A failed verification: `error` is the TSIG error for a NOTAUTH answer; without `tsig` (the
 * record could not be read) or with `formerr` (a MAC size no signer may send) the request is
 * malformed and answered FORMERR.
 */
export type VerifyResult =
  | { ok: true; key: TsigKey; tsig: TsigRecord }
  | { ok: false; error: number; reason: string; tsig?: TsigRecord; key?: TsigKey; formerr?: boolean };

export function verifyRequest(msg: Buffer, offset: number, keys: TsigKey[], nowSeconds = Math.floor(Date.now() / 1000)): VerifyResult {
  let t: TsigRecord;
  try {
    t = readTsig(msg, offset);
  } catch (e) {
    return { ok: false, error: TsigError.BADSIG, reason: (e as Error).message };
  }
  const key = keys.find((k) => k.name === t.keyName && k.algorithm === t.algorithm);
  if (!key) return { ok: false, error: TsigError.BADKEY, reason: `unknown key ${t.keyName} (${t.algorithm})`, tsig: t };
  const expect = hmac(key)
    .update(Buffer.concat([unsigned(msg, t), variables(key, t.timeSigned, t.fudge, t.error, t.other, false)]))
    .digest();
  // RFC 8945 5.2.2.1: longer than the hash, or shorter than max(10, half the hash), is malformed.
  if (t.mac.length > expect.length || t.mac.length < Math.max(10, expect.length / 2)) {
    return { ok: false, error: TsigError.BADSIG, reason: `MAC of ${t.mac.length} bytes for ${key.algorithm}`, tsig: t, key, formerr: true };
  }
  if (!timingSafeEqual(t.mac, expect.subarray(0, t.mac.length))) return { ok: false, error: TsigError.BADSIG, reason: `bad signature with key ${key.name}`, tsig: t, key };
  // The time is checked before the truncation (RFC 8945 5.2.3, 5.2.4).
  if (Math.abs(nowSeconds - t.timeSigned) > t.fudge) return { ok: false, error: TsigError.BADTIME, reason: 'signature time outside the fudge window', tsig: t, key };
  // A truncated MAC that verifies is still refused: fedns's policy is full-length MACs only.
  if (t.mac.length < expect.length) return { ok: false, error: TsigError.BADTRUNC, reason: `MAC truncated to ${t.mac.length} of ${expect.length} bytes`, tsig: t, key };
  return { ok: true, key, tsig: t };
}

/**
 * Signs the messages of one response in order. The first MAC covers the request MAC; each later
 * one covers the previous MAC and, with timers only, the messages since (RFC 8945 5.3.1).
 */
export class ResponseSigner {
  private previousMac: Buffer;
  private first = true;
  /** Bytes sign() adds without Other Data: responses keep this much room for it (RFC 8945 5.3). */
  readonly size: number;

  constructor(
    private readonly key: TsigKey,
    request: TsigRecord,
    private readonly fudge = 300,
  ) {
    this.previousMac = request.mac;
    this.size = tsigLength(nameToWire(key.name).length, nameToWire(key.algorithm).length, hmac(key).digest().length, 0);
  }

  /** sign() with no error: the signer as a response tail. */
  append(msg: Buffer): Buffer {
    return this.sign(msg);
  }

  /** Returns `msg` with a TSIG RR appended (ARCOUNT bumped). `other`: Other Data (BADTIME: server time). */
  sign(msg: Buffer, error = 0, nowSeconds = Math.floor(Date.now() / 1000), other: Buffer = Buffer.alloc(0)): Buffer {
    const id = msg.readUInt16BE(0);
    const mac = hmac(this.key)
      .update(Buffer.concat([u16(this.previousMac.length), this.previousMac, msg, variables(this.key, nowSeconds, this.fudge, error, other, !this.first)]))
      .digest();
    this.first = false;
    this.previousMac = mac;
    const rdata = Buffer.concat([nameToWire(this.key.algorithm), time48(nowSeconds), u16(this.fudge), u16(mac.length), mac, u16(id), u16(error), u16(other.length), other]);
    return appendRR(msg, nameToWire(this.key.name), rdata);
  }
}

function appendRR(msg: Buffer, owner: Buffer, rdata: Buffer): Buffer {
  const rr = Buffer.concat([owner, u16(RRType.TSIG), u16(RRClass.ANY), Buffer.alloc(4), u16(rdata.length), rdata]);
  const out = Buffer.concat([msg, rr]);
  out.writeUInt16BE(out.readUInt16BE(10) + 1, 10);
  return out;
}

/** Errors answered signed, as the request's MAC verified (RFC 8945 5.3.2): time, and a MAC shorter than policy allows. */
function signedError(error: number, key: TsigKey | undefined): key is TsigKey {
  return key !== undefined && (error === TsigError.BADTIME || error === TsigError.BADTRUNC);
}

/**
 * The TSIG of an error response to a request whose TSIG failed (RFC 8945 5.2, 5.3.2): the error
 * code travels in the TSIG RR, so one must be there. BADKEY and BADSIG: unsigned (MAC size 0),
 * key name, algorithm, time and fudge as the request had them. BADTIME: signed with the (known)
 * key, Time Signed copied from the request and the server's time as Other Data (5.2.3), so the
 * client can verify it and see the clock difference. BADTRUNC: signed, over the request's
 * truncated MAC (5.2.2.1).
 */
export function tsigErrorResponse(msg: Buffer, request: TsigRecord, error: number, key?: TsigKey, nowSeconds = Math.floor(Date.now() / 1000)): Buffer {
  if (signedError(error, key)) {
    const signer = new ResponseSigner(key, request, request.fudge);
    return error === TsigError.BADTIME ? signer.sign(msg, error, request.timeSigned, time48(nowSeconds)) : signer.sign(msg, error, nowSeconds);
  }
  const id = msg.readUInt16BE(0);
  const rdata = Buffer.concat([nameToWire(request.algorithm), time48(request.timeSigned), u16(request.fudge), u16(0), u16(id), u16(error), u16(0)]);
  return appendRR(msg, nameToWire(request.keyName), rdata);
}

/** tsigErrorResponse() as a response tail, sized before the response is built. */
export function tsigErrorTail(request: TsigRecord, error: number, key?: TsigKey): { size: number; append(msg: Buffer): Buffer } {
  const size = signedError(error, key)
    ? new ResponseSigner(key, request, request.fudge).size + (error === TsigError.BADTIME ? 6 : 0)
    : tsigLength(nameToWire(request.keyName).length, nameToWire(request.algorithm).length, 0, 0);
  return { size, append: (msg) => tsigErrorResponse(msg, request, error, key) };
}

/** Offset of the last record of a message when it is in the additional section (where a TSIG goes), else -1; throws on a malformed message. */
export function lastAdditionalOffset(msg: Buffer): number {
  const r = new Reader(msg);
  r.off = 4;
  const qd = r.u16();
  const an = r.u16();
  const ns = r.u16();
  const ar = r.u16();
  for (let i = 0; i < qd; i++) {
    r.name();
    r.off += 4;
  }
  let last = -1;
  for (let i = 0; i < an + ns + ar; i++) {
    last = r.off;
    r.name();
    r.off += 8;
    const rdlength = r.u16();
    r.off += rdlength;
  }
  return ar > 0 ? last : -1;
}

/**
 * Why the response to a request signed with `requestMac` does not verify with `key` (RFC 8945
 * 5.3.1, a single message), or undefined when it does: a NOTIFY's acknowledgement must come from
 * the secondary holding the key, not from whoever guessed its id.
 */
export function responseProblem(msg: Buffer, requestMac: Buffer, key: TsigKey, nowSeconds = Math.floor(Date.now() / 1000)): string | undefined {
  let t: TsigRecord;
  try {
    const offset = lastAdditionalOffset(msg);
    if (offset < 0) return 'not signed';
    t = readTsig(msg, offset);
  } catch (e) {
    return (e as Error).message;
  }
  if (t.keyName !== key.name || t.algorithm !== key.algorithm) return `signed with another key (${t.keyName} ${t.algorithm})`;
  const expect = hmac(key)
    .update(Buffer.concat([u16(requestMac.length), requestMac, unsigned(msg, t), variables(key, t.timeSigned, t.fudge, t.error, t.other, false)]))
    .digest();
  if (t.mac.length !== expect.length || !timingSafeEqual(t.mac, expect)) return `bad signature with key ${key.name}`;
  if (Math.abs(nowSeconds - t.timeSigned) > t.fudge) return 'signature time outside the fudge window';
  // Signed, but saying our request's TSIG failed there (BADTIME is signed, and BADTRUNC).
  if (t.error !== 0) return `TSIG error ${t.error} from the other side`;
  return undefined;
}

/** Signs a request (for tests and tools that act as a secondary). */
export function signRequest(msg: Buffer, key: TsigKey, nowSeconds = Math.floor(Date.now() / 1000), fudge = 300): Buffer {
  const id = msg.readUInt16BE(0);
  const mac = hmac(key).update(Buffer.concat([msg, variables(key, nowSeconds, fudge, 0, Buffer.alloc(0), false)])).digest();
  const rdata = Buffer.concat([nameToWire(key.algorithm), time48(nowSeconds), u16(fudge), u16(mac.length), mac, u16(id), u16(0), u16(0)]);
  return appendRR(msg, nameToWire(canonicalName(key.name)), rdata);
}
