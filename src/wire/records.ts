// Resource records as plain data, and their presentation (RFC 1035 master-file) form.
import { RRType, typeName } from './constants.js';

export interface SoaData {
  mname: string;
  rname: string;
  serial: number;
  refresh: number;
  retry: number;
  expire: number;
  minimum: number;
}

export interface SrvData {
  priority: number;
  weight: number;
  port: number;
  target: string;
}

/**
 * Record data by type: A/AAAA an address string, NS/CNAME/PTR a target name,
 * SOA and SRV their fields, TXT its strings, anything else raw wire bytes.
 */
export type RData = string | SoaData | SrvData | string[] | Buffer;

export interface RR {
  /** Absolute lowercase owner name. */
  name: string;
  type: number;
  ttl: number;
  /** Class; IN when absent. */
  class?: number;
  data: RData;
}

export function rdataText(rr: RR): string {
  const d = rr.data;
  switch (rr.type) {
    case RRType.A:
    case RRType.AAAA:
    case RRType.NS:
    case RRType.CNAME:
    case RRType.PTR:
      return d as string;
    case RRType.SOA: {
      const s = d as SoaData;
      return `${s.mname} ${s.rname} ${s.serial} ${s.refresh} ${s.retry} ${s.expire} ${s.minimum}`;
    }
    case RRType.SRV: {
      const s = d as SrvData;
      return `${s.priority} ${s.weight} ${s.port} ${s.target}`;
    }
    case RRType.TXT:
      return (d as string[]).map((t) => JSON.stringify(t)).join(' ');
    default: {
      const b = d as Buffer;
      return `\\# ${b.length}${b.length ? ' ' + b.toString('hex') : ''}`;
    }
  }
}

/** One master-file line: owner, TTL, class, type, data. */
export function rrText(rr: RR): string {
  return `${rr.name}\t${rr.ttl}\tIN\t${typeName(rr.type)}\t${rdataText(rr)}`;
}


/** Same record data and TTL (owner and type already known to match). */
export function sameRecord(a: RR, b: RR): boolean {
  if (a.ttl !== b.ttl) return false;
  const x = a.data;
  const y = b.data;
  if (typeof x === 'string' || typeof y === 'string') return x === y;
  if (a.type === RRType.SRV) {
    const p = x as SrvData;
    const q = y as SrvData;
    return p.priority === q.priority && p.weight === q.weight && p.port === q.port && p.target === q.target;
  }
  return rdataText(a) === rdataText(b);
}
