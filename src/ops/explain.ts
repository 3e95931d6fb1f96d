// Why an answer is what it is: the parsed name, the answer the server gives right now, and for
// cluster-backed names every member cluster's verdict and the fallback that fired.
import { EdnsOption, rcodeName, RRType, typeName, typeNumber } from '../wire/constants.js';
import { decodeMessage, encodeQuery } from '../wire/message.js';
import { canonicalName, MAX_NAME_LENGTH, nameKey, nameToWire, wireLength } from '../wire/name.js';
import { rrText } from '../wire/records.js';
import type { Responder } from '../server/responder.js';
import type { Pace } from '../federation/pacer.js';
import type { Federation } from '../federation/federation.js';
import { notSyncedReason, type ClusterVerdict, type FederatedService } from '../federation/model.js';
import type { IgnoredValue } from '../cluster/objects.js';
import { parseClusterSetName, parseName, type ParsedClusterSetName, type ParsedName } from '../zone/names.js';
import { isAddress, parseNetwork } from '../address.js';
import { plan } from '../zone/locality.js';
import { serviceLocality } from '../federation/service-records.js';

export interface Explanation {
  name: string;
  type: string;
  parsed: ParsedName | ParsedClusterSetName;
  /** The zone that answers the name (the federation or the clusterset zone). */
  zone?: string;
  serial: number;
  rcode: string;
  answer: string[];
  authority: string[];
  additional: string[];
  /** Extended DNS Error on the answer, if any. */
  ede?: string;
  /** SCOPE PREFIX-LENGTH of the EDNS Client Subnet option the answer echoed (asked with --client SUBNET). */
  ecsScope?: number;
  service?: {
    key: string;
    exists: boolean;
    headless?: boolean;
    ttl?: number;
    stale?: boolean;
    panic?: boolean;
    clusters: ClusterVerdict[];
    /** Names of the service left out: longer than 255 bytes. */
    omittedNames?: string[];
    /** Its rebuilds take longer than a slice, so its changes wait (src/federation/pacer.ts). */
    pace?: Pace;
    /** Paced services its change waits for: it would give them a name or take one from them (src/federation/pacer.ts). */
    waitsFor?: string[];
    /** Values of the service's objects not used ("cluster: reason "value""). */
    ignored?: string[];
    /** Clusterset zone: where the service name's addresses come from (ClusterSetIP or not). */
    clusterSetIp?: string;
  };
  /** The traffic policy of the service, and what it gives the client asked about. */
  traffic?: {
    policy: string;
    /** Where each setting came from (annotation or configuration). */
    source: Record<string, string>;
    order?: string[];
    weights?: Record<string, number>;
    maxAddresses?: number;
    /** Annotations the service's copies disagree on, each cluster's value, and the one used. */
    disagreements: { annotation: string; values: Record<string, string>; chosen: string }[];
    client?: {
      address: string;
      /** What identified the client: its source address or an EDNS Client Subnet. */
      by: string;
      /** How the client was identified: the network that matched and whose it is, or "unknown". */
      identified: string;
      cluster?: string;
      region?: string;
      zones?: string[];
      /** Per address family: the tier that answers and the choices (several: drawn by weight). */
      choices: { family: string; tier: string; cluster?: string; weight: number; chance: string; addresses: string[]; perAnswer: number }[];
    };
  };
  /** Plain-language reasons: which level answered, which fallback fired. */
  notes: string[];
}

export class ExplainError extends Error {}

/**
 * Explains NAME TYPE as the server answers it now; `client` (an IP address) asks as that client
 * would, for the traffic policies (the responder's traffic settings identify it).
 */
export function explain(fed: Federation, responder: Responder, name: string, type = 'A', clientText?: string): Explanation {
  const qtype = typeNumber(type);
  if (qtype === undefined) throw new ExplainError(`unknown record type "${type}"`);
  const client = clientText === undefined ? undefined : parseClient(clientText);
  const qname = canonicalName(name);
  // A name too long for DNS is still explained (which service it would belong to), but not asked.
  const tooLong = wireLength(qname) > MAX_NAME_LENGTH;
  let query: Buffer | undefined;
  try {
    if (!tooLong) {
      nameToWire(name);
      const options = client?.subnet ? [{ code: EdnsOption.CLIENT_SUBNET, data: ecsData(client.subnet) }] : undefined;
      query = encodeQuery(qname, qtype, { id: 1, edns: { udpSize: 1232, options } });
    }
  } catch (e) {
    throw new ExplainError(`"${name}" is not a domain name: ${(e as Error).message}`);
  }
  const naming = fed.naming;
  const csNaming = fed.clusterSetNaming;
  const csParsed = csNaming && parseClusterSetName(csNaming, qname);
  if (csParsed) return explainClusterSet(fed, responder, qname, qtype, query, tooLong, csParsed);
  const parsed = parseName(naming, qname);
  const snap = fed.snapshot;
  const { ex, msg } = asked(responder, qname, qtype, query, tooLong, parsed, snap.serial, client?.address);
  const notes = ex.notes;

  if (parsed.kind === 'outside') notes.push(`outside ${naming.domain}: REFUSED, fedns is not a resolver`);
  if (parsed.kind === 'apex') notes.push('zone apex: SOA and NS from the configuration');
  if (!snap.ready) notes.push('no member cluster has synced yet: names from cluster data get SERVFAIL');
  if (parsed.kind === 'other') {
    notes.push(
      msg?.rcode === 0
        ? 'an empty non-terminal (an ancestor of existing names): NODATA, never NXDOMAIN (RFC 8020)'
        : 'no federated service, region or endpoint gives this name',
    );
  }
  if ('service' in parsed && 'namespace' in parsed) {
    const key = `${parsed.namespace}/${parsed.service}`;
    const fs = fed.federated(key);
    ex.service = serviceOf(fed, key, fs);
    noteBuild(fed, key, ex.service, notes);
    const ignored = ignoredValues(fed, key);
    if (ignored.length) ex.service.ignored = ignored;
    // Labels can make two owners give one name: the holder's records answer (README, "What names answer").
    const holder = tooLong ? undefined : snap.names.get(nameKey(qname))?.owner;
    if (holder && holder !== key)
      notes.push(
        holder === '@'
          ? `a name server of the zone has this name: its glue answers, not service ${key} (the apex's names come first)`
          : `service ${holder} gives this name too and holds it (services in namespace/name order): its records answer, not those of ${key}, until it lets the name go`,
      );
    if (!fs) notes.push(`service ${key} is not federated: no live or stale member cluster selects it`);
    else {
      if (fs.panic) notes.push('panic mode: every cluster with addresses for this service has expired; serving their last known addresses');
      else if (fs.stale) notes.push(`some data comes from a stale cluster: TTL lowered to ${fs.ttl}s and EDE 3 added`);
      if (parsed.kind === 'regional') {
        const set = fs.regions.get(parsed.region);
        notes.push(
          set
            ? `region ${parsed.region} has healthy addresses: answered at the regional level`
            : fed.topologyNow.regions.has(parsed.region)
              ? `region ${parsed.region} has no healthy address: CNAME to the global name`
              : `region ${parsed.region} is not known in the federation`,
        );
      }
      if (parsed.kind === 'zonal') {
        const set = fs.zones.get(`${parsed.region}/${parsed.zone}`);
        const known = fed.topologyNow.regions.get(parsed.region)?.includes(parsed.zone);
        notes.push(
          set
            ? `zone ${parsed.zone} has healthy addresses: answered at the zonal level`
            : known
              ? `zone ${parsed.zone} has no healthy address: CNAME to the regional name${fs.regions.has(parsed.region) ? '' : `, and region ${parsed.region} has none either: on to the global name`}`
              : `zone ${parsed.zone} of region ${parsed.region} is not known in the federation`,
        );
      }
      if (parsed.kind === 'short' || parsed.kind === 'global' || parsed.kind === 'srv') explainTraffic(ex, fs, responder, client);
      if ((parsed.kind === 'short' || parsed.kind === 'global') && fs.global.v4.length + fs.global.v6.length === 0)
        notes.push('no cluster has a healthy address for this service: the name exists with no addresses (NODATA)');
    }
  }
  if (msg?.answers.some((r) => r.type === RRType.CNAME) && qtype !== RRType.CNAME) notes.push('CNAME chain followed inside the zone');
  return ex;
}

/** Who explain asks as: a source address, or an EDNS Client Subnet (ADDRESS/PREFIX). */
interface Client {
  text: string;
  /** The source address of the query; absent for a subnet (it comes through some resolver). */
  address?: string;
  subnet?: { family: 1 | 2; prefix: number; bytes: Buffer };
}

function parseClient(text: string): Client {
  if (!text.includes('/')) {
    if (!isAddress(text)) throw new ExplainError(`client "${text}" is not an IP address or a subnet such as 192.0.2.0/24`);
    return { text, address: text };
  }
  const n = parseNetwork(text);
  if (!n) throw new ExplainError(`client "${text}" is not an IP address or a subnet such as 192.0.2.0/24`);
  // The option carries the prefix's bytes only, with the bits past the prefix zero (RFC 7871 6).
  return { text, subnet: { family: n.family === 4 ? 1 : 2, prefix: n.bits, bytes: Buffer.from(n.bytes.slice(0, Math.ceil(n.bits / 8))) } };
}

/** The ECS option's data for a subnet (scope 0, as queries carry it). */
function ecsData(s: NonNullable<Client['subnet']>): Buffer {
  return Buffer.concat([Buffer.from([0, s.family, s.prefix, 0]), s.bytes]);
}

/** The service's traffic policy, and for a client which tier and choices answer it. */
function explainTraffic(ex: Explanation, fs: FederatedService, responder: Responder, client: Client | undefined): void {
  const t = fs.traffic;
  const notes = ex.notes;
  ex.traffic = {
    policy: t.policy,
    source: t.source,
    ...(t.policy === 'failover' ? { order: t.order } : {}),
    ...(t.policy === 'weighted' ? { weights: Object.fromEntries(t.weights) } : {}),
    ...(t.maxAddresses !== undefined ? { maxAddresses: t.maxAddresses } : {}),
    disagreements: t.disagreements,
  };
  for (const d of t.disagreements)
    notes.push(`the copies disagree on ${d.annotation} (${Object.entries(d.values).map(([c, v]) => `${c}: ${v}`).join(', ')}): ${d.chosen} is used, the value most copies hold (ties: the first cluster in configuration order)`);
  const loc = serviceLocality(fs);
  if (!loc) return;
  if (client === undefined) {
    // failover and weighted answer every client alike; nearest (and an address cap's windows, per client network) depend on who asks.
    const why =
      t.policy === 'weighted'
        ? 'each answer is one cluster drawn by weight, for every client alike'
        : t.policy === 'failover'
          ? 'every client gets the first healthy cluster in order'
          : 'the answer depends on who asks';
    notes.push(`traffic policy ${t.policy}${t.maxAddresses !== undefined ? `, at most ${t.maxAddresses} addresses per answer` : ''}: ${why}; give a client (--client IP, &client=IP) to see the answer one gets`);
    return;
  }
  const ecsOn = responder.traffic?.ecs === true;
  const sub = client.subnet;
  const match = sub ? (ecsOn ? responder.traffic?.clients.lookupSubnet(sub.family, sub.bytes, sub.prefix) : undefined) : responder.traffic?.clients.lookup(client.address!);
  const place = match?.place;
  const ignored = sub !== undefined && !ecsOn;
  if (ignored) notes.push(`locality.ecs is off: the EDNS Client Subnet ${client.text} is ignored, and the source address of the query decides; give the resolver's address (--client IP, &client=IP) to see what its queries get`);
  const choices: NonNullable<NonNullable<Explanation['traffic']>['client']>['choices'] = [];
  for (const family of [4, 6] as const) {
    const p = plan(loc, place, family);
    for (const c of p.choices)
      choices.push({
        family: family === 4 ? 'A' : 'AAAA',
        tier: c.tier,
        cluster: c.cluster,
        weight: c.weight,
        chance: `${((100 * c.weight) / p.total).toFixed(1)}%`,
        addresses: [...new Set(c.windows.flatMap((w) => [...w]))].sort(),
        perAnswer: c.windows[0].size,
      });
  }
  ex.traffic.client = {
    address: client.text,
    by: sub ? (ecsOn ? 'EDNS Client Subnet' : 'EDNS Client Subnet, ignored: locality.ecs is off') : 'source address',
    identified: match ? `${place!.via}, network ${match.network}` : ignored ? 'not identified: the subnet is ignored' : 'unknown: in no client network',
    ...(place ? { cluster: place.cluster, region: place.region, zones: [...place.zones] } : {}),
    choices,
  };
  const tiers = [...new Set(choices.map((c) => c.tier))].join(', ');
  const who = match ? `client ${client.text} is ${place!.via}` : ignored ? 'with the subnet ignored, a client in no client network' : `client ${client.text} is unknown`;
  notes.push(`traffic policy ${t.policy} (${t.source.policy}): ${who}; answered by tier ${tiers || 'none'}`);
  const scope = ex.ecsScope;
  if (scope !== undefined) notes.push(`the answer carries ECS scope /${scope}: resolvers may give it to every client of ${sub ? `that /${scope}` : 'the subnet'}${scope === 0 ? ' (everyone)' : ''}`);
}

/** Asks the responder, and the parts of an explanation every name has. */
function asked(
  responder: Responder,
  qname: string,
  qtype: number,
  query: Buffer | undefined,
  tooLong: boolean,
  parsed: Explanation['parsed'],
  serial: number,
  client?: string,
): { ex: Explanation; msg?: ReturnType<typeof decodeMessage> } {
  const wire = query ? responder.answer(query, 'tcp', undefined, client) : null;
  const msg = wire ? decodeMessage(wire) : undefined;
  const ex: Explanation = {
    name: qname,
    type: typeName(qtype),
    parsed,
    serial,
    rcode: msg ? rcodeName(msg.rcode) : tooLong ? `none: longer than ${MAX_NAME_LENGTH} bytes, no query can ask for it` : 'no answer',
    answer: msg?.answers.map(rrText) ?? [],
    authority: msg?.authorities.map(rrText) ?? [],
    additional: msg?.additionals.map(rrText) ?? [],
    notes: [],
  };
  const ede = msg?.edns?.options.find((o) => o.code === 15);
  if (ede) ex.ede = `code ${ede.data.readUInt16BE(0)} (Stale Answer): built from data of a cluster whose watch is broken`;
  const ecs = msg?.edns?.options.find((o) => o.code === EdnsOption.CLIENT_SUBNET);
  if (ecs && ecs.data.length >= 4) ex.ecsScope = ecs.data[3];
  return { ex, msg };
}

function serviceOf(fed: Federation, key: string, fs: FederatedService | undefined): NonNullable<Explanation['service']> {
  const clusters = fs?.verdicts ?? verdictsWithoutService(fed, key);
  return fs ? { key, exists: true, headless: fs.headless, ttl: fs.ttl, stale: fs.stale, panic: fs.panic, clusters } : { key, exists: false, clusters };
}

/** A name of the clusterset zone (mcs): the specification's rules that decide its answer. */
function explainClusterSet(
  fed: Federation,
  responder: Responder,
  qname: string,
  qtype: number,
  query: Buffer | undefined,
  tooLong: boolean,
  parsed: ParsedClusterSetName,
): Explanation {
  const snap = fed.clusterSetSnapshot!;
  const { ex, msg } = asked(responder, qname, qtype, query, tooLong, parsed, snap.serial);
  ex.zone = snap.domain;
  const notes = ex.notes;
  if (parsed.kind === 'clusterset-apex') notes.push('clusterset zone apex: SOA and NS from the configuration');
  if (parsed.kind === 'dns-version') notes.push('the version of the Multi-Cluster Services DNS specification served (its section 2.2)');
  if (!snap.ready) notes.push('no member cluster has synced yet: names from cluster data get SERVFAIL');
  if (parsed.kind === 'other') notes.push(msg?.rcode === 0 ? 'an empty non-terminal (an ancestor of existing names): NODATA' : 'no exported service gives this name');
  if (parsed.kind === 'clusterset-reserved')
    notes.push('<clusterid>.<svc>.<ns>.svc names are reserved by the specification (2.3.4, 2.4.4): never any record');
  if ('service' in parsed) {
    const key = `${parsed.namespace}/${parsed.service}`;
    const fs = fed.clusterSetService(key);
    ex.service = serviceOf(fed, key, fs);
    noteBuild(fed, key, ex.service, notes);
    if (!fs) notes.push(`service ${key} is not in the clusterset zone: no live or stale member cluster exports it (ServiceExport)`);
    else {
      if (fs.panic) notes.push('panic mode: every cluster with addresses for this service has expired; serving their last known addresses');
      else if (fs.stale) notes.push(`some data comes from a stale cluster: TTL lowered to ${fs.ttl}s and EDE 3 added`);
      const ip = fed.clusterSetIpOf(key, fs);
      ex.service.clusterSetIp = ip.reason;
      notes.push(ip.reason);
      if (fs.headless && fs.endpoints.length === 0) notes.push('headless service without a ready endpoint: NXDOMAIN (specification 2.4.1)');
      if (parsed.kind === 'clusterset-endpoint' && !fs.headless) notes.push('a service with a ClusterSetIP has no per-endpoint names (2.3.4)');
    }
  }
  return ex;
}

/** How the service's names (in either zone) are built: those left out for being longer than 255 bytes, its pace. */
function noteBuild(fed: Federation, key: string, service: NonNullable<Explanation['service']>, notes: string[]): void {
  const omitted = fed.omittedNames(key);
  if (omitted.length) {
    service.omittedNames = omitted;
    notes.push(`${omitted.length} name${omitted.length > 1 ? 's' : ''} of ${key} would be longer than ${MAX_NAME_LENGTH} bytes and ${omitted.length > 1 ? 'are' : 'is'} left out; its other names answer`);
  }
  const pace = fed.paceOf(key);
  if (pace) {
    service.pace = pace;
    notes.push(
      `paced: rebuilding ${key} took ${pace.rebuildMs} ms, longer than a slice; a change to it waits ${pace.waitMs} ms after each rebuild (longer while other paced services take their turns), merged with those after it` +
        (pace.waiting ? ' (one is waiting now)' : ''),
    );
  }
  const behind = fed.waitsFor(key);
  if (behind) {
    service.waitsFor = [...behind];
    notes.push(
      `a change to ${key} waits for the pace of ${behind.join(', ')}: it would give ${behind.length > 1 ? 'them' : 'it'} a name or take one (the same name from other labels), and such a name's answers are made again with the paced service's rebuild`,
    );
  }
}

/** What the service's objects (Service, EndpointSlices, ServiceImport) hold that fedns does not use. */
function ignoredValues(fed: Federation, key: string): string[] {
  const out: string[] = [];
  for (const c of fed.clusters.values()) {
    const objects: Array<{ ignored?: IgnoredValue[] } | undefined> = [c.services.get(key), c.imports.get(key)];
    c.eachSlice(key, (slice) => void objects.push(slice));
    for (const o of objects) for (const v of o?.ignored ?? []) out.push(`${c.name}: ${v.reason} ${JSON.stringify(v.value)} ignored`);
  }
  return out;
}

function verdictsWithoutService(fed: Federation, key: string): ClusterVerdict[] {
  return [...fed.clusters.values()].map((c) => ({
    cluster: c.name,
    health: c.health,
    dataAge: c.lastUpdate ? Math.round((Date.now() - c.lastUpdate) / 1000) : null,
    region: c.region,
    mode: c.settings.addressMode,
    used: false,
    reason: c.health === 'syncing' ? notSyncedReason(c) : c.services.has(key) ? `present, but ${c.health}` : 'service not in this cluster',
    addresses: [],
    skipped: [],
  }));
}

/** Human-readable rendering for `fedns explain`. */
export function explanationText(ex: Explanation): string {
  const out: string[] = [];
  out.push(`${ex.name} ${ex.type}: ${ex.rcode} (serial ${ex.serial})`);
  const section = (title: string, rrs: string[]) => {
    if (!rrs.length) return;
    out.push(`  ${title}:`);
    for (const r of rrs) out.push(`    ${r.replace(/\t/g, ' ')}`);
  };
  section('answer', ex.answer);
  section('authority', ex.authority);
  section('additional', ex.additional);
  if (ex.ede) out.push(`  extended error: ${ex.ede}`);
  if (ex.service) {
    const s = ex.service;
    out.push(`  service ${s.key}${s.exists ? `: ttl ${s.ttl}s${s.headless ? ', headless' : ''}${s.stale ? ', stale' : ''}${s.panic ? ', panic' : ''}` : ': not federated'}`);
    for (const v of s.clusters) {
      const age = v.dataAge === null ? 'never synced' : `data age ${v.dataAge}s`;
      out.push(`    ${v.used ? '+' : '-'} ${v.cluster} [${v.health}, ${age}, region ${v.region ?? '-'}, ${v.mode}] ${v.reason}`);
      if (v.addresses.length) out.push(`        took ${v.addresses.join(', ')}`);
      for (const s2 of v.skipped) out.push(`        skipped ${s2.address}: ${s2.reason}`);
    }
    for (const n of s.omittedNames ?? []) out.push(`    left out (over ${MAX_NAME_LENGTH} bytes): ${n}`);
    for (const i of s.ignored ?? []) out.push(`    ${i}`);
    if (s.clusterSetIp) out.push(`    address: ${s.clusterSetIp}`);
  }
  if (ex.traffic) {
    const t = ex.traffic;
    const extra = [
      t.order ? `order ${t.order.join(',')}` : '',
      t.weights ? `weights ${Object.entries(t.weights).map(([c, w]) => `${c}=${w}`).join(',')}` : '',
      t.maxAddresses !== undefined ? `at most ${t.maxAddresses} addresses per answer` : '',
    ].filter(Boolean);
    out.push(`  traffic policy ${t.policy} (${t.source.policy})${extra.length ? `: ${extra.join('; ')}` : ''}`);
    if (t.client) {
      out.push(`    client ${t.client.address} (by ${t.client.by}): ${t.client.identified}${t.client.region ? ` [region ${t.client.region}${t.client.zones?.length ? `, zones ${t.client.zones.join(',')}` : ''}]` : ''}`);
      for (const c of t.client.choices)
        out.push(`      ${c.family} tier ${c.tier}${c.cluster ? ` (${c.cluster})` : ''}${c.chance !== '100.0%' ? ` ${c.chance} of answers` : ''}: ${c.addresses.join(', ')}${c.perAnswer < c.addresses.length ? ` (${c.perAnswer} per answer, in turn)` : ''}`);
    }
  }
  for (const n of ex.notes) out.push(`  why: ${n}`);
  return out.join('\n') + '\n';
}
