// The operations listener: /metrics, /healthz, /readyz, /explain, /zone.
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { Responder, type TrafficSettings } from '../server/responder.js';
import type { Federation } from '../federation/federation.js';
import { masterFileChunks } from '../zone/masterfile.js';
import { canonicalName } from '../wire/name.js';
import { listenError } from '../listen-error.js';
import { ConnectionBounds } from '../server/connection-bounds.js';
import { ThrottledLog } from '../throttled-log.js';
import { explain, ExplainError, explanationText } from './explain.js';
import type { Metrics } from './metrics.js';

export interface OpsOptions {
  host: string;
  port: number;
  /** Seconds after start when /readyz turns ready even if some cluster has not synced. */
  readyDeadline: number;
  /** When the process started (ms since the epoch): the deadline counts from there. */
  startedAt: number;
  /** Why a client may not read /zone (the whole zone, as AXFR would give it), or undefined if it may. */
  zoneRefusal: (client: string | undefined) => string | undefined;
  /** Who the clients are (the serving responder's), so /explain&client=IP answers as they get it. */
  traffic?: () => TrafficSettings | undefined;
  /** Seconds a client may go without reading a streamed answer (/zone) before it is closed: tcp.idleTimeout, as for AXFR. */
  drainTimeout: () => number;
}

/**
 * Writes a body in pieces (the whole zone) as it is made, as fast as the client reads, and ends
 * it. A client that reads nothing for `drainMs` is closed, as a TCP transfer is: it would hold
 * its connection and the zone version it reads for as long as it liked. True when it was closed
 * so; a client that went away (or was closed) stops the writing too.
 */
export async function writePieces(res: Writable, body: AsyncIterable<string>, drainMs: number): Promise<boolean> {
  for await (const whole of body) {
    for (const piece of slices(whole)) {
      if (res.destroyed) return false;
      if (res.write(piece)) continue;
      const drained = await new Promise<boolean>((resolve) => {
        const done = (ok: boolean) => () => {
          clearTimeout(timer);
          res.off('drain', onDrain).off('close', onClose);
          resolve(ok);
        };
        const onDrain = done(true);
        const onClose = done(true);
        const timer = setTimeout(done(false), drainMs);
        res.on('drain', onDrain).on('close', onClose);
      });
      if (!drained) {
        res.destroy();
        return true;
      }
    }
  }
  if (!res.destroyed) res.end();
  return false;
}

/** Most characters written at once: the drain waited for is what a client reads of one write, not a big service's every name. */
const WRITE_SLICE = 64 * 1024;

/** `text` in slices of WRITE_SLICE characters, no surrogate pair split. */
function* slices(text: string): Generator<string> {
  for (let start = 0; start < text.length; ) {
    let end = Math.min(start + WRITE_SLICE, text.length);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--;
    yield text.slice(start, end);
    start = end;
  }
}

/** Connections the ops listener keeps open at once, from all clients and from one address. */
export const OPS_MAX_CONNECTIONS = 256;
export const OPS_MAX_CONNECTIONS_PER_CLIENT = 32;
/** How long a client has to send a whole request (headers included), in ms. */
const OPS_REQUEST_TIMEOUT_MS = 10_000;
/**
 * Requests one connection may have under way at once (pipelined: asked before the answers to the
 * ones before were read). Node hands over every request of what it reads at once, and each answer
 * is made when asked for: a client sending 64 KiB of `GET /metrics` lines and reading nothing
 * would have some 1,800 metrics pages made and held. A connection asking for more is closed.
 */
export const OPS_MAX_PIPELINED = 8;

export class OpsServer {
  private server?: Server;
  /** Where the listener is bound, once listening. */
  address?: { host: string; port: number };
  private readonly explainer: Responder;
  /** Failed requests: any client can cause them, so a few lines a minute. */
  private readonly failures: ThrottledLog;

  constructor(
    private readonly federation: () => Federation,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private opts: OpsOptions,
  ) {
    // A responder of its own, so explained queries do not count as served ones.
    this.explainer = new Responder(() => this.federation().snapshot, { cacheSize: 1000 });
    this.explainer.otherZone = () => this.federation().clusterSetSnapshot;
    this.failures = new ThrottledLog(log);
  }

  /** Ready once every configured cluster has synced, or the start-up deadline has passed. */
  readiness(): { ready: boolean; waiting: string[] } {
    const waiting = [...this.federation().clusters.values()].filter((c) => c.health === 'syncing').map((c) => c.name);
    const deadline = (Date.now() - this.opts.startedAt) / 1000 >= this.opts.readyDeadline;
    return { ready: waiting.length === 0 || deadline, waiting };
  }

  async listen(): Promise<{ host: string; port: number }> {
    // Bounded like the DNS TCP listener: a client that opens connections without end, sends a
    // request a byte at a time, or sends nothing at all would otherwise hold file descriptors
    // the DNS listeners and the member clusters' watches need.
    // Requests under way per connection (asked, their answer not all handed to the kernel): a
    // connection with none may make room for a new one.
    const inFlight = new Map<Socket, number>();
    const server = createServer({ headersTimeout: OPS_REQUEST_TIMEOUT_MS, requestTimeout: OPS_REQUEST_TIMEOUT_MS, connectionsCheckingInterval: 1000 }, (req, res) => {
      const socket = req.socket;
      // Requests read with others the connection was closed for: not answered.
      if (socket.destroyed) return;
      const under = (inFlight.get(socket) ?? 0) + 1;
      if (under > OPS_MAX_PIPELINED) {
        this.failures.warn('ops pipelining', { client: socket.remoteAddress }, `an ops client asked for more than ${OPS_MAX_PIPELINED} answers at once on one connection, reading none; closed`);
        return void socket.destroy();
      }
      inFlight.set(socket, under);
      res.once('close', () => {
        const n = inFlight.get(socket);
        if (n === undefined) return;
        if (n > 1) inFlight.set(socket, n - 1);
        else inFlight.delete(socket);
      });
      // Node takes a keep-alive connection's timeout away (server.timeout: none) as its next request
      // begins: put the idle timeout back, or a client asking twice and then reading nothing would
      // hold its connection, busy, for as long as it liked.
      const idleMs = this.opts.drainTimeout() * 1000;
      socket.setTimeout(idleMs);
      // Between a keep-alive connection's requests, Node's own timer stands for it (keepAliveTimeout,
      // 5 s by default): tcp.idleTimeout there too, as the README says.
      server.keepAliveTimeout = idleMs;
      // Every endpoint reads; none takes a body or changes anything.
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { 'content-type': 'text/plain; charset=utf-8', allow: 'GET, HEAD' });
        return void res.end(`method ${String(req.method).slice(0, 20)} not allowed: the ops endpoints answer GET (and HEAD)\n`);
      }
      void this.handle(req.url ?? '/', req.headers.accept ?? '', req.socket.remoteAddress)
        .then(async ({ status, type, body }) => {
          res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
          if (typeof body === 'string') return void res.end(body);
          const stalled = await writePieces(res, body, this.opts.drainTimeout() * 1000);
          if (stalled) this.failures.warn('ops client stalled', { url: req.url?.slice(0, 200), client: req.socket.remoteAddress }, 'an ops client stopped reading a streamed answer (/zone); closed after tcp.idleTimeout');
        })
        .catch((e: unknown) => {
          this.failures.error('ops request failed', { err: e, url: req.url?.slice(0, 200) }, 'ops request failed');
          if (res.headersSent) return void res.destroy();
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end('internal error\n');
        });
    });
    // At the bounds, a new connection takes the place of the oldest one with no request under
    // way (idle, or still sending its request), as on the DNS listener: connections held open by
    // one client, or a few, cannot keep the kubelet's probes and the scrapes out.
    const connections = new ConnectionBounds<Socket>((set) => {
      for (const s of set) if (!inFlight.has(s)) return s;
      return undefined;
    });
    server.on('connection', (socket: Socket) => {
      const client = socket.remoteAddress ?? '';
      if (!connections.makeRoom(client, OPS_MAX_CONNECTIONS, OPS_MAX_CONNECTIONS_PER_CLIENT)) {
        this.failures.warn('ops connections', { client, all: connections.size }, `the ops listener has ${OPS_MAX_CONNECTIONS} connections open, or a client ${OPS_MAX_CONNECTIONS_PER_CLIENT}, each with a request under way; further ones are closed`);
        return void socket.destroy();
      }
      connections.add(socket, client);
      socket.once('close', () => {
        inFlight.delete(socket);
        connections.forget(socket);
      });
      // Idle for tcp.idleTimeout (nothing read or written): closed, as on the DNS listener.
      socket.setTimeout(this.opts.drainTimeout() * 1000, () => socket.destroy());
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      const failed = (e: Error) => reject(listenError('ops HTTP', 'ops.listen', `${this.opts.host}:${this.opts.port}`, e));
      server.once('error', failed);
      server.listen(this.opts.port, this.opts.host, () => {
        server.off('error', failed);
        resolve();
      });
    });
    const a = server.address() as { address: string; port: number };
    this.log.info({ address: `${a.address}:${a.port}` }, 'ops listener up (/metrics /healthz /readyz /explain /zone)');
    this.address = { host: a.address, port: a.port };
    return this.address;
  }

  private async handle(url: string, accept: string, client: string | undefined): Promise<{ status: number; type: string; body: string | AsyncIterable<string> }> {
    const text = (status: number, body: string) => ({ status, type: 'text/plain; charset=utf-8', body });
    let u: URL;
    try {
      u = new URL(url, 'http://fedns');
    } catch {
      return text(400, 'cannot read the request target\n');
    }
    switch (u.pathname) {
      case '/metrics':
        return { status: 200, type: this.metrics.registry.contentType, body: await this.metrics.text() };
      case '/healthz':
        return text(200, 'ok\n');
      case '/readyz': {
        const r = this.readiness();
        return r.ready ? text(200, 'ready\n') : text(503, `not ready: waiting for ${r.waiting.join(', ')}\n`);
      }
      case '/zone': {
        // The same access as AXFR: the zone lists every service of every member cluster.
        const refusal = this.opts.zoneRefusal(client);
        if (refusal) return text(403, `forbidden: ${refusal}\n`);
        // ?zone=clusterset.local. (or the configured mcs.domain) gives the clusterset zone.
        const asked = u.searchParams.get('zone');
        const fed = this.federation();
        const zone = asked === null ? fed.snapshot : [fed.snapshot, fed.clusterSetSnapshot].find((z) => z && z.domain === canonicalName(asked));
        if (!zone) return text(404, `not found: no zone ${asked} served here\n`);
        // As AXFR: a zone not ready yet is partial, and its serial will not be served.
        if (!zone.ready) return text(503, 'not ready: no member cluster has synced yet, or the zone is still being built (AXFR is refused too)\n');
        // In pieces, made a slice at a time: a big zone does not hold up queries while it is written.
        return { status: 200, type: 'text/plain; charset=utf-8', body: masterFileChunks(zone) };
      }
      case '/explain': {
        const name = u.searchParams.get('name');
        if (!name) return text(400, 'usage: /explain?name=NAME[&type=TYPE][&client=IP]\n');
        try {
          this.explainer.traffic = this.opts.traffic?.();
          const ex = explain(this.federation(), this.explainer, name, u.searchParams.get('type') ?? 'A', u.searchParams.get('client') ?? undefined);
          if (u.searchParams.get('format') === 'text' || (!accept.includes('json') && accept.includes('text/plain')))
            return text(200, explanationText(ex));
          return { status: 200, type: 'application/json', body: JSON.stringify(ex, null, 2) + '\n' };
        } catch (e) {
          if (e instanceof ExplainError) return text(400, `${e.message}\n`);
          throw e;
        }
      }
      default:
        return text(404, 'not found: try /metrics /healthz /readyz /explain?name=... /zone\n');
    }
  }

  async close(): Promise<void> {
    const s = this.server;
    if (!s) return;
    this.server = undefined;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
}
