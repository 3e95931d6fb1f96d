// The configuration file's schema: every field, its default, and what makes it valid.
import { hostname } from 'node:os';
import { z } from 'zod';
import { nameProblem, canonicalName, MAX_NAME_LENGTH, wireLength } from '../wire/name.js';
import { isAddress } from '../address.js';
import { MAX_TTL } from '../wire/writer.js';
import { parseLabelSelector } from '../federation/selector.js';
import { TSIG_ALGORITHMS, type TsigAlgorithm } from '../wire/tsig.js';
import { VERSION } from '../version.js';
import { MAX_ADDRESSES, TRAFFIC_POLICIES } from '../traffic-policy.js';

/** "30", 30, "30s", "5m", "2h", "500ms" -> seconds. */
export function parseDuration(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(v);
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const seconds = unit === 'ms' ? n / 1000 : unit === 's' ? n : unit === 'm' ? n * 60 : n * 3600;
  // To the microsecond: binary fractions made "8.3m" 498.00000000000006 s, which is no whole second.
  return Math.round(seconds * 1e6) / 1e6;
}

/**
 * The longest duration, in seconds: 2^31-1 ms, the most a Node.js timer holds. A timer set
 * longer fires after 1 ms instead, so a grace period of 1000h expired a cluster at once.
 */
export const MAX_DURATION = 2_147_483.647;

/** A duration in seconds; errors are reported under the field's path, so the message names no field. */
const duration = () =>
  z.preprocess(
    (v) => parseDuration(v) ?? v,
    z
      .number({ error: 'expected seconds as a number or a duration like "30s", "5m"' })
      .nonnegative()
      .max(MAX_DURATION, `must be at most ${MAX_DURATION} seconds (about 24.8 days, the longest a timer waits), e.g. 596h`),
  );

/** log.level and serve --log-level. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * Most MiB and names of the answer cache (answerCache): bounds against a typo. lru-cache sizes
 * its tables by the number of names when it is made (a few dozen bytes each), memory or not.
 */
export const MAX_ANSWER_CACHE_MIB = 16_384;
export const MAX_ANSWER_CACHE_ENTRIES = 1_000_000;
/** Most prefixes the rate limiter tracks (rateLimit.tableSize). */
export const MAX_RRL_TABLE = 1_000_000;

/** A TXT string: printable ASCII, at most 255 bytes. */
const chaosText = z.string().regex(/^[\x20-\x7e]{1,255}$/, '1 to 255 printable ASCII characters (or null to not answer)');

/** A TTL or SOA timer, in whole seconds or a duration ("30s", "1h"): 32-bit, but only 0..2^31-1 (RFC 2181 8). */
const seconds = (min: number, max = MAX_TTL) =>
  z.preprocess(
    (v) => parseDuration(v) ?? v,
    z
      .number({ error: 'expected whole seconds, e.g. 30, or a duration like "30s", "5m"' })
      .int(`must be whole seconds from ${min} to ${max}`)
      .min(min, `must be whole seconds from ${min} to ${max}`)
      .max(max, `must be whole seconds from ${min} to ${max}${max === MAX_TTL ? ' (RFC 2181 8)' : ''}`),
  );

const dnsName = z
  .string()
  .superRefine((s, ctx) => {
    const p = nameProblem(s);
    if (p) ctx.addIssue({ code: 'custom', message: `not a valid domain name: ${p}` });
  })
  .transform(canonicalName);

/** A hostname label (RFC 1123: letters, digits, "-" inside), or one of "_" labels such as _tcp. */
const HOSTNAME_LABEL = /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?$/;

/**
 * A zone fedns is authoritative for: below the root (the root would make every name in the world
 * NXDOMAIN here, and hostmaster.<zone> no name), and of hostname labels only (a "*" label would
 * be the name of a wildcard, not of a zone).
 */
const zoneName = (what: string, example: string) =>
  dnsName.superRefine((s, ctx) => {
    const fix = `give the zone fedns serves, e.g. ${example}`;
    if (s === '.') {
      ctx.addIssue({ code: 'custom', message: `the root "." cannot be the ${what}: ${fix}` });
      return;
    }
    const bad = s.slice(0, -1).split('.').find((l) => !HOSTNAME_LABEL.test(l));
    if (bad !== undefined) ctx.addIssue({ code: 'custom', message: `label "${bad}" is not a hostname label (letters, digits, "-", "_"); ${fix}` });
  });

/** `name` is `zone` or a name inside it (every name is inside the root). */
export function isWithin(name: string, zone: string): boolean {
  return zone === '.' || name === zone || name.endsWith(`.${zone}`);
}

/** A single DNS label as Kubernetes names use them (RFC 1123). */
const dnsLabel = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be a lowercase DNS label (letters, digits, "-", at most 63)');

export interface ListenAddress {
  host: string;
  port: number;
}

/** "127.0.0.1:1053", "[::1]:1053", ":53" (all IPv4 interfaces is not allowed implicitly). */
export function parseListen(s: string): ListenAddress | string {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s.trim());
  if (!m) return `"${s}" is not HOST:PORT (write IPv6 as [::1]:53)`;
  const host = m[1] ?? m[2];
  const port = Number(m[3]);
  if (!isAddress(host)) return `"${host}" is not an IP address`;
  if (port > 65535) return `port ${port} is out of range`;
  return { host, port };
}

const listenAddress = z.string().transform((s, ctx) => {
  const r = parseListen(s);
  if (typeof r === 'string') {
    ctx.addIssue({ code: 'custom', message: r });
    return z.NEVER;
  }
  return r;
});

/** A secondary to NOTIFY: HOST:PORT with a port from 1 (Node's dgram send() throws on port 0). */
const notifyTarget = listenAddress.refine((a) => a.port !== 0, 'port 0 is no secondary: give the port it listens on (1-65535)');

const ipAddress = z.string().refine((s) => isAddress(s) !== 0, 'must be an IPv4 or IPv6 address');

/**
 * A DNS server to send queries to: IP, or IP:PORT with a port from 1 (port 0 is no server, and
 * Node.js's resolver aborts the process on it), written as Node.js's resolver takes it.
 */
const resolverAddress = z.string().transform((s, ctx) => {
  if (isAddress(s) !== 0) return s;
  const r = s === s.trim() ? parseListen(s) : `"${s}" has spaces around it`;
  if (typeof r === 'string' || r.port === 0) {
    ctx.addIssue({ code: 'custom', message: `must be IP or IP:PORT with a port from 1 to 65535 (write IPv6 as [2001:db8::1]:53)${typeof r === 'string' ? `: ${r}` : ''}` });
    return z.NEVER;
  }
  return isAddress(r.host) === 6 ? `[${r.host}]:${r.port}` : `${r.host}:${r.port}`;
});

export const AddressMode = z.enum(['loadBalancer', 'endpoints']);
export type AddressMode = z.infer<typeof AddressMode>;

const filesSource = z.strictObject({
  type: z.literal('files'),
  /** Directory of manifests, relative to the config file. */
  path: z.string().min(1),
});

const kubeSource = z.strictObject({
  type: z.literal('kube'),
  /** Kubeconfig path relative to the config file; absent with inCluster. */
  kubeconfig: z.string().min(1).optional(),
  context: z.string().min(1).optional(),
  inCluster: z.boolean().default(false),
});

const cidr = z.string().refine((s) => {
  const [addr, bits, extra] = s.split('/');
  const fam = isAddress(addr);
  if (!fam || extra !== undefined) return false;
  return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (fam === 4 ? 32 : 128));
}, 'must be an IP address or CIDR block such as 10.0.0.0/8');

const clusterSchema = z.strictObject({
  name: dnsLabel,
  region: dnsLabel.optional(),
  zones: z.array(dnsLabel).default([]),
  addressMode: AddressMode.optional(),
  source: z.discriminatedUnion('type', [filesSource, kubeSource], {
    error: (issue) => {
      if (issue.input === undefined || issue.input === null || typeof issue.input !== 'object')
        return 'every cluster needs a source: { type: files, path: DIR } or { type: kube, kubeconfig: FILE } (or inCluster: true)';
      // A type missing or not one fedns knows (zod's own words: "Invalid discriminator value").
      if (issue.code === 'invalid_union') {
        const type = (issue.input as { type?: unknown }).type;
        const shapes = 'files (with path: DIR) or kube (with kubeconfig: FILE, or inCluster: true)';
        if (type === undefined || type === null) return `missing: give ${shapes}`;
        const shown = typeof type === 'string' && type.length <= 24 ? JSON.stringify(type) : `a ${Array.isArray(type) ? 'list' : typeof type}`;
        return `${shown} is not a source type: give ${shapes}`;
      }
      return undefined;
    },
  }),
  /**
   * Where this member's cluster DNS queries come from (traffic policies, README "Traffic
   * policy"): CIDR blocks, or "auto" to learn them from the member's Node objects (their
   * spec.podCIDRs and InternalIP addresses).
   */
  clientNetworks: z.union([z.literal('auto'), z.array(cidr)], { error: 'expected "auto" or a list of CIDR blocks such as 10.8.0.0/14' }).default([]),
});

/** Clients that are not member clusters (an office, a VPC): where they are, for the traffic policies. */
const clientSchema = z
  .strictObject({
    networks: z.array(cidr).min(1, 'give at least one CIDR block'),
    region: dnsLabel.optional(),
    zone: dnsLabel.optional(),
  })
  .refine((c) => c.zone === undefined || c.region !== undefined, { message: 'a client with a zone needs a region', path: ['region'] });


const selectionSchema = z
  .strictObject({
    policy: z.enum(['all', 'exported', 'labels']).default('all'),
    /** Equality selector "a=b,c=d" (and "a!=b", "a", "!a"), used with policy "labels". */
    labelSelector: z.string().optional(),
  })
  .refine((s) => s.policy !== 'labels' || !!s.labelSelector, {
    message: 'policy "labels" needs a labelSelector such as "federation=yes"',
    path: ['labelSelector'],
  })
  .superRefine((s, ctx) => {
    // Checked here, so that a selector fedns cannot read stops start-up and check with the
    // field named, and a reload is rejected before anything of it applies.
    if (s.labelSelector === undefined) return;
    try {
      parseLabelSelector(s.labelSelector);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message, path: ['labelSelector'] });
    }
  });

const nameserverSchema = z.strictObject({
  name: dnsName,
  /** Glue, needed when the name server's name is inside the domain. */
  addresses: z.array(ipAddress).default([]),
});

const tsigKeySchema = z.strictObject({
  name: dnsName,
  /** As BIND and Knot write it too: any case, with or without the final dot ("HMAC-SHA256."). */
  algorithm: z
    .preprocess((v) => (typeof v === 'string' ? v.toLowerCase().replace(/\.$/, '') : v), z.enum(Object.keys(TSIG_ALGORITHMS) as [TsigAlgorithm, ...TsigAlgorithm[]]))
    .default('hmac-sha256'),
  /** Base64 shared secret (as `tsig-keygen` or `keymgr -t` print it). */
  secret: z.string().refine((s) => /^[A-Za-z0-9+/]+={0,2}$/.test(s) && Buffer.from(s, 'base64').length >= 16, 'must be a base64 secret of at least 16 bytes'),
});

const transferSchema = z
  .strictObject({
    /** Clients allowed to AXFR/IXFR (addresses or CIDR blocks). Empty: transfers refused. */
    allow: z.array(cidr).default([]),
    tsig: z.array(tsigKeySchema).default([]),
    /** Require a valid TSIG; defaults to true when keys are configured. */
    requireTsig: z.boolean().optional(),
    /** Secondaries to NOTIFY when the serial changes. */
    notify: z.array(notifyTarget).default([]),
    /** Name of the key that signs NOTIFY messages. */
    notifyKey: dnsName.optional(),
    notifyDelay: duration().default(0.2),
    journal: z
      .strictObject({ deltas: z.number().int().min(0).default(100), records: z.number().int().min(0).default(100_000) })
      .prefault({}),
    /** File that keeps the last SOA serial across restarts (optional). */
    serialFile: z.string().optional(),
    /**
     * identity.server of the one replica that serves AXFR/IXFR and sends NOTIFY (a StatefulSet
     * pod's name), so that secondaries never get two zones under one serial; the other replicas
     * refuse transfers. Unset: every replica serves them.
     */
    primary: chaosText.optional(),
  })
  .superRefine((t, ctx) => {
    // A request's key is found by its name: a second key of that name would never be used.
    t.tsig.forEach((k, i) => {
      const first = t.tsig.findIndex((o) => o.name === k.name);
      if (first < i) ctx.addIssue({ code: 'custom', path: ['tsig', i, 'name'], message: `key ${k.name} is already transfer.tsig[${first}]: give each key its own name` });
    });
    if (t.notifyKey && !t.tsig.some((k) => k.name === t.notifyKey))
      ctx.addIssue({ code: 'custom', path: ['notifyKey'], message: `no key named ${t.notifyKey} in transfer.tsig` });
  });

export const configSchema = z
  .strictObject({
    domain: zoneName('federation domain', 'example.com.').default('example.com.'),
    federation: dnsLabel.default('fed'),
    listen: z.array(listenAddress).min(1).default([{ host: '127.0.0.1', port: 1053 }]),
    ttl: z
      .strictObject({
        default: seconds(0, 86400).default(30),
        /** TTL of answers built from a stale cluster's data. */
        stale: seconds(0, 86400).default(5),
        /** TTL of the regional and zonal fallback CNAMEs. */
        cname: seconds(0, 86400).optional(),
      })
      .prefault({}),
    soa: z
      .strictObject({
        mname: dnsName.optional(),
        rname: dnsName.optional(),
        ttl: seconds(0).default(3600),
        refresh: seconds(1).default(3600),
        retry: seconds(1).default(600),
        expire: seconds(1).default(86400),
        /** Negative-caching TTL (RFC 2308). */
        minimum: seconds(0).default(30),
      })
      .prefault({}),
    nameservers: z.array(nameserverSchema).default([]),
    selection: selectionSchema.prefault({}),
    addressMode: AddressMode.default('loadBalancer'),
    health: z
      .strictObject({
        gracePeriod: duration().default(300),
        panicMode: z.boolean().default(true),
      })
      .prefault({}),
    udp: z
      .strictObject({
        /** Batched UDP through the native addon: auto (when it loads), on (required), off (node:dgram). */
        batch: z.enum(['auto', 'on', 'off'], { error: 'expected auto, on or off' }).default('auto'),
      })
      .prefault({}),
    /**
     * Encoded answers kept for names asked again (least recently asked go first): at most
     * `memory` MiB and `entries` names. A name not kept is encoded anew on each query, about three
     * times the cost of a kept one. Applies at the next restart.
     */
    answerCache: z
      .strictObject({
        memory: z.number().int().min(1).max(MAX_ANSWER_CACHE_MIB, `must be at most ${MAX_ANSWER_CACHE_MIB} (MiB)`).default(64),
        entries: z.number().int().min(1).max(MAX_ANSWER_CACHE_ENTRIES, `must be at most ${MAX_ANSWER_CACHE_ENTRIES}`).default(100_000),
      })
      .prefault({}),
    tcp: z
      .strictObject({
        idleTimeout: duration().default(10),
        maxConnections: z.number().int().min(1).default(1000),
        /** Per source address: one client cannot take every connection. */
        maxConnectionsPerClient: z.number().int().min(1).default(64),
      })
      .prefault({}),
    ops: z
      .strictObject({
        listen: listenAddress.nullable().default({ host: '127.0.0.1', port: 9153 }),
        /** /readyz turns ready after this long even if a cluster has not synced. */
        readyTimeout: duration().default(60),
      })
      .prefault({}),
    log: z
      .strictObject({
        level: z.enum(LOG_LEVELS).default('info'),
        queries: z.boolean().default(false),
      })
      .prefault({}),
    transfer: transferSchema.prefault({}),
    /** Load balancers that publish a hostname instead of an IP are re-resolved periodically. */
    hostnames: z
      .strictObject({
        /** Each refresh looks every hostname up again: under a second it floods the resolvers. */
        refresh: duration().pipe(z.number().min(1, 'must be at least 1s (each refresh looks up every load-balancer hostname again)')).default(30),
        /** DNS servers to resolve them with ("192.0.2.1", "192.0.2.1:5353", "[2001:db8::1]:53"); default: the system's. */
        resolvers: z.array(resolverAddress).default([]),
      })
      .prefault({}),
    /**
     * Who may query (every query, transfers and the secondaries' SOA checks included): addresses
     * and CIDR blocks; others get REFUSED. null (default): everyone.
     */
    queries: z
      .strictObject({
        allow: z.array(cidr).nullable().default(null),
      })
      .prefault({}),
    /**
     * Response rate limiting over UDP (see src/server/rrl.ts). responsesPerSecond null or 0: off.
     * The other rates default to responsesPerSecond; 0 leaves that kind unlimited.
     */
    rateLimit: z
      .strictObject({
        responsesPerSecond: z.number().min(0).nullable().default(null),
        nodataPerSecond: z.number().min(0).optional(),
        nxdomainsPerSecond: z.number().min(0).optional(),
        errorsPerSecond: z.number().min(0).optional(),
        slip: z.number().int().min(0).max(10).default(2),
        window: duration().pipe(z.number().min(1, 'at least 1s').max(3600, 'at most 1h')).default(15),
        ipv4PrefixLength: z.number().int().min(0).max(32).default(24),
        ipv6PrefixLength: z.number().int().min(0).max(128).default(56),
        /** Never limited: member clusters' DNS servers, secondaries. */
        exempt: z.array(cidr).default([]),
        /**
         * Bounded: the table's arrays are sized by it at start, and a full table of a million
         * prefixes holds about 250 MiB.
         */
        tableSize: z
          .number()
          .int()
          .min(1)
          .max(MAX_RRL_TABLE, `must be at most ${MAX_RRL_TABLE} (ten times the default; a full table of that many takes about 250 MiB)`)
          .default(100_000),
      })
      .prefault({}),
    /**
     * Which server answered: `id.server`/`hostname.bind` (class CH, TXT) and the EDNS NSID option
     * (RFC 5001) give `server`; `version.server`/`version.bind` give `version`. null: not answered.
     */
    identity: z
      .strictObject({
        server: chaosText.nullable().default(() => hostname()),
        version: chaosText.nullable().default(`fedns ${VERSION}`),
        nsid: z.boolean().default(true),
      })
      .prefault({}),
    clusters: z.array(clusterSchema).default([]),
    /**
     * The Multi-Cluster Services DNS zone (KEP-1645 specification, <svc>.<ns>.svc.<domain>), served
     * beside the federation zone from the same watches: exported services only.
     */
    mcs: z
      .strictObject({
        enabled: z.boolean().default(false),
        /** The clusterset zone; the specification fixes it to clusterset.local. */
        domain: zoneName('clusterset zone', 'clusterset.local.').default('clusterset.local.'),
        /** Secondaries told of the clusterset zone's serials; unset: transfer.notify. */
        notify: z.array(notifyTarget).optional(),
      })
      .prefault({}),
    /** Traffic policy of services without a `fedns.io/policy` annotation. */
    policy: z.enum(TRAFFIC_POLICIES, { error: `expected one of ${TRAFFIC_POLICIES.join(', ')}` }).default('all'),
    /** Most addresses in one answer (per address family); null: no cap. `fedns.io/max-addresses` overrides it. */
    maxAddresses: z.number().int().min(1).max(MAX_ADDRESSES).nullable().default(null),
    locality: z
      .strictObject({
        /** Identify clients by EDNS Client Subnet (RFC 7871) when a query carries it. */
        ecs: z.boolean().default(false),
      })
      .prefault({}),
    clients: z.array(clientSchema).default([]),
  })
  .superRefine((c, ctx) => {
    const seen = new Set<string>();
    c.clusters.forEach((cl, i) => {
      if (seen.has(cl.name)) ctx.addIssue({ code: 'custom', path: ['clusters', i, 'name'], message: `duplicate cluster name "${cl.name}"` });
      seen.add(cl.name);
      if (cl.zones.length > 0 && !cl.region)
        ctx.addIssue({ code: 'custom', path: ['clusters', i, 'region'], message: 'a cluster with zones needs a region' });
      if (cl.source.type === 'kube' && !cl.source.kubeconfig && !cl.source.inCluster)
        ctx.addIssue({ code: 'custom', path: ['clusters', i, 'source', 'kubeconfig'], message: 'give a kubeconfig file, or inCluster: true' });
    });
    // The shortest names the configuration allows (one-letter service and namespace) must fit in
    // 255 bytes; each field is blamed where it first makes them too long.
    const tooLong = (name: string) => wireLength(name) > MAX_NAME_LENGTH;
    const room = (what: string) => `every service name would be longer than ${MAX_NAME_LENGTH} bytes (${what}); use a shorter one`;
    if (tooLong(`a.a.f.svc.${c.domain}`)) ctx.addIssue({ code: 'custom', path: ['domain'], message: room(`"a.a.f.svc.${c.domain}" is the shortest`) });
    else if (tooLong(`a.a.${c.federation}.svc.${c.domain}`))
      ctx.addIssue({ code: 'custom', path: ['federation'], message: room(`with domain ${c.domain}`) });
    else {
      c.clusters.forEach((cl, i) => {
        if (!cl.region) return;
        const regional = `a.a.${c.federation}.svc.${cl.region}.${c.domain}`;
        if (tooLong(regional)) ctx.addIssue({ code: 'custom', path: ['clusters', i, 'region'], message: room(`in region ${cl.region}`) });
        else
          cl.zones.forEach((zone, j) => {
            if (tooLong(`a.a.${c.federation}.svc.${zone}.${cl.region}.${c.domain}`))
              ctx.addIssue({ code: 'custom', path: ['clusters', i, 'zones', j], message: room(`in zone ${zone} of region ${cl.region}`) });
          });
      });
    }
    // The root is reported under its own field already (every zone is inside it).
    if (c.mcs.enabled && c.mcs.domain !== '.' && c.domain !== '.') {
      const [a, b] = [c.mcs.domain, c.domain];
      if (isWithin(a, b) || isWithin(b, a))
        ctx.addIssue({ code: 'custom', path: ['mcs', 'domain'], message: `${a} and domain ${b} must not be the same zone or one inside the other; use clusterset.local.` });
      else if (tooLong(`a.a.svc.${a}`)) ctx.addIssue({ code: 'custom', path: ['mcs', 'domain'], message: room(`"a.a.svc.${a}" is the shortest`) });
    }
    if (c.transfer.primary !== undefined && c.identity.server === null)
      ctx.addIssue({ code: 'custom', path: ['transfer', 'primary'], message: 'needs identity.server (this replica\'s name, compared with it); it is null' });
    c.nameservers.forEach((ns, i) => {
      const inside = isWithin(ns.name, c.domain);
      if (inside && ns.addresses.length === 0)
        ctx.addIssue({ code: 'custom', path: ['nameservers', i, 'addresses'], message: `${ns.name} is inside ${c.domain} and needs glue addresses` });
    });
  });

export type ParsedConfig = z.output<typeof configSchema>;
export type ClusterConfig = ParsedConfig['clusters'][number];
