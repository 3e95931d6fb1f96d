import { connect } from 'node:net';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { spawnSync } from 'node:child_process';
import { get as httpGet } from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Fedns } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import { Rcode, RRType } from '../../src/wire/constants.js';
import { decodeMessage, encodeQuery } from '../../src/wire/message.js';
import { createLogger } from '../../src/ops/log.js';
import { readTsig, signRequest } from '../../src/wire/tsig.js';
import { demoCopy } from '../support/demo.js';
import { findBinary, requirePeer } from '../support/peers.js';
import { lastAdditionalOffset, tsigKey, verifyResponseTsig } from '../transfer/harness.js';

const running: { server: Fedns; cleanup(): void }[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) {
    await r.server.stop(100);
    r.cleanup();
  }
});

async function start(edit: (y: string) => string = (y) => y) {
  const copy = demoCopy((y) =>
    edit(y.replace('127.0.0.1:1053', '127.0.0.1:0').replace('listen: 127.0.0.1:9153', 'listen: 127.0.0.1:0')),
  );
  mkdirSync(join(copy.dir, 'demo', 'broken'), { recursive: true });
  writeFileSync(join(copy.dir, 'demo', 'broken', 'bad.yaml'), 'kind: [unclosed\n');
  const server = new Fedns(loadConfig(copy.config), createLogger('silent'));
  running.push({ server, cleanup: copy.cleanup });
  await server.start();
  const ops = server.ops!.address!;
  const get = async (path: string, accept = '*/*') => {
    const res = await fetch(`http://127.0.0.1:${ops.port}${path}`, { headers: { accept } });
    return { status: res.status, body: await res.text(), type: res.headers.get('content-type') ?? '' };
  };
  return { server, get, dir: copy.dir };
}

async function until<T>(f: () => Promise<T> | T, ok: (v: T) => boolean, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** GET over plain HTTP from a chosen loopback address. */
function getFrom(localAddress: string, port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port, path, localAddress }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

function metric(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `) || (labels === '' && l.startsWith(`${name} `)));
  return line ? Number(line.split(' ').pop()) : undefined;
}

describe('ops listener', () => {
  it('serves /healthz, /readyz and Prometheus metrics with query counts, serial and cluster health', async () => {
    const { server, get } = await start();
    expect((await get('/healthz')).status).toBe(200);
    const ready = await until(() => get('/readyz'), (r) => r.status === 200);
    expect(ready.body).toBe('ready\n');
    const { port } = server.dns.addresses()[0];
    const sock = createSocket('udp4');
    for (let i = 0; i < 3; i++) {
      const answered = new Promise((r) => sock.once('message', r));
      sock.send(encodeQuery('nginx.default.fed.example.com.', RRType.A), port, '127.0.0.1');
      await answered;
    }
    sock.close();
    server.responder.answer(encodeQuery('missing.default.fed.example.com.', RRType.AAAA), 'tcp');
    const m = await get('/metrics');
    expect(m.type).toContain('text/plain');
    expect(metric(m.body, 'fedns_queries_total', 'transport="udp",type="A",rcode="NOERROR"')).toBe(3);
    expect(metric(m.body, 'fedns_queries_total', 'transport="tcp",type="AAAA",rcode="NXDOMAIN"')).toBe(1);
    expect(metric(m.body, 'fedns_zone_serial', 'zone="example.com."')).toBe(server.federation.snapshot.serial);
    expect(metric(m.body, 'fedns_zone_records', 'zone="example.com."')).toBe(server.federation.snapshot.recordCount);
    expect(metric(m.body, 'fedns_cluster_health', 'cluster="charlie",state="live"')).toBe(1);
    expect(metric(m.body, 'fedns_cluster_health', 'cluster="charlie",state="syncing"')).toBe(0);
    expect(metric(m.body, 'fedns_answer_cache_misses_total')).toBeGreaterThan(0);
    expect(metric(m.body, 'fedns_answer_errors_total')).toBe(0);
    expect(metric(m.body, 'fedns_paced_services')).toBe(0);
    expect(metric(m.body, 'fedns_paced_rebuilds_total')).toBe(0);
    expect(m.body).toContain('fedns_nodejs_eventloop_lag_seconds');
    expect(metric(m.body, 'fedns_response_seconds_count', 'transport="udp"')).toBe(3);
  });

  // The README's `curl .../metrics | promtool check metrics`: Prometheus's own linter.
  it.skipIf(!requirePeer('promtool'))('promtool check metrics accepts /metrics', async () => {
    const { server, get } = await start();
    await until(() => server.federation.snapshot.ready, (ready) => ready);
    const body = (await get('/metrics')).body;
    expect(body).toContain('fedns_queries_total');
    const r = spawnSync(findBinary('promtool')!, ['check', 'metrics'], { input: body, encoding: 'utf8', timeout: 20_000 });
    expect(`${r.stdout}${r.stderr}`).toBe('');
    expect(r.status).toBe(0);
  });

  it('counts rate-limited UDP responses by kind and action', async () => {
    const { server, get } = await start((y) => `${y}rateLimit: { responsesPerSecond: 5, slip: 2 }\n`);
    expect(metric((await get('/metrics')).body, 'fedns_rrl_responses_total', 'kind="nxdomain",action="dropped"')).toBe(0);
    const { port } = server.dns.addresses()[0];
    // NXDOMAIN once the zone is ready: before, every name is SERVFAIL, limited as another kind.
    await until(() => server.federation.snapshot.ready, (ready) => ready);
    const sock = createSocket('udp4');
    let replies = 0;
    const rcodes = new Set<number>();
    sock.on('message', (m) => {
      replies++;
      rcodes.add(decodeMessage(m).rcode);
    });
    for (let i = 0; i < 25; i++) sock.send(encodeQuery(`missing-${i}.default.fed.example.com.`, RRType.A), port, '127.0.0.1');
    await until(() => replies, (n) => n >= 15);
    await new Promise((r) => setTimeout(r, 100));
    sock.close();
    const m = await get('/metrics');
    // A burst of 5 answered (one more per 200 ms the burst took), the rest limited: half dropped, half slipped.
    const dropped = metric(m.body, 'fedns_rrl_responses_total', 'kind="nxdomain",action="dropped"')!;
    const slipped = metric(m.body, 'fedns_rrl_responses_total', 'kind="nxdomain",action="slipped"')!;
    expect(dropped + slipped).toBeGreaterThanOrEqual(15);
    expect(slipped).toBe(Math.floor((dropped + slipped) / 2));
    expect(replies).toBe(25 - dropped);
    expect([...rcodes]).toEqual([Rcode.NXDOMAIN]);
    expect(metric(m.body, 'fedns_rrl_responses_total', 'kind="answer",action="dropped"')).toBe(0);
  });

  // A slipped answer tells the client to ask again over TCP; to a signed query it must be signed
  // (RFC 8945 5.3), or the client (a secondary checking the serial) discards it as forged.
  it('slips a signed, EDNS answer as TC=1 that keeps its OPT and is signed', async () => {
    const secret = Buffer.from('0123456789abcdef0123456789abcdef').toString('base64');
    const key = tsigKey('xfr-key.', secret);
    const { server, get } = await start(
      (y) => `${y}rateLimit: { responsesPerSecond: 5, slip: 2 }\ntransfer: { allow: [127.0.0.1], tsig: [{ name: xfr-key., algorithm: hmac-sha256, secret: "${secret}" }] }\n`,
    );
    const { port } = server.dns.addresses()[0];
    await until(() => server.federation.snapshot.ready, (ready) => ready);
    const sock = createSocket('udp4');
    const macs = new Map<number, Buffer>();
    const replies: Buffer[] = [];
    sock.on('message', (m) => replies.push(m));
    for (let i = 0; i < 25; i++) {
      const q = signRequest(encodeQuery(`missing-${i}.default.fed.example.com.`, RRType.A, { id: 1000 + i, edns: {} }), key);
      macs.set(1000 + i, readTsig(q, lastAdditionalOffset(q)).mac);
      sock.send(q, port, '127.0.0.1');
    }
    await until(() => replies.length, (n) => n >= 15);
    await new Promise((r) => setTimeout(r, 100));
    sock.close();
    const slipped = replies.filter((m) => decodeMessage(m).tc);
    expect(slipped.length).toBeGreaterThanOrEqual(5);
    for (const m of replies) {
      const d = decodeMessage(m);
      expect(d.edns, `reply ${d.id}`).toBeDefined();
      expect(verifyResponseTsig(macs.get(d.id)!, [m], key), `reply ${d.id} tc=${d.tc}`).toBeUndefined();
      if (d.tc) expect([d.rcode, d.answers.length, d.authorities.length, d.questions.length]).toEqual([Rcode.NXDOMAIN, 0, 0, 1]);
    }
    // Each query counted once, slipped or dropped or not.
    const m = (await get('/metrics')).body;
    expect(metric(m, 'fedns_queries_total', 'transport="udp",type="A",rcode="NXDOMAIN"')).toBe(25);
    const limited = ['dropped', 'slipped'].map((a) => metric(m, 'fedns_rrl_responses_total', `kind="nxdomain",action="${a}"`)!);
    expect(limited[1]).toBe(slipped.length);
    expect(replies.length).toBe(25 - limited[0]);
  });

  it('gives /zone only to clients allowed to transfer the zone', async () => {
    const { server, dir } = await start((y) => `${y}transfer: { allow: [127.0.0.1, 127.0.1.0/24] }\n`);
    const port = server.ops!.address!.port;
    await until(() => server.federation.snapshot.ready, (ready) => ready);
    for (const allowed of ['127.0.0.1', '127.0.1.9']) {
      const r = await getFrom(allowed, port, '/zone');
      expect(r.status, allowed).toBe(200);
      expect(r.body).toMatch(/^example\.com\.\s+\d+\s+IN\s+SOA\s/m);
    }
    const refused = await getFrom('127.0.0.9', port, '/zone');
    expect(refused.status).toBe(403);
    expect(refused.body).toBe('forbidden: 127.0.0.9 is not in transfer.allow\n');
    expect(refused.body).not.toContain('IN');
    // Other paths stay open to everyone who reaches the listener.
    expect((await getFrom('127.0.0.9', port, '/healthz')).status).toBe(200);
    // A reload of transfer.allow applies to /zone at once.
    const file = join(dir, 'fedns.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('allow: [127.0.0.1, 127.0.1.0/24]', 'allow: [127.0.0.9]'));
    await server.reload(loadConfig(file));
    expect((await getFrom('127.0.0.9', port, '/zone')).status).toBe(200);
    expect((await getFrom('127.0.0.1', port, '/zone')).status).toBe(403);
  });

  it('serves /zone, like AXFR, only once the zone is ready', async () => {
    // Every cluster's directory holds a broken file: none ever syncs, and the zone is never ready.
    const { server } = await start((y) => `${y.replace(/demo\/(alpha|bravo|charlie)/g, 'demo/broken')}transfer: { allow: [127.0.0.1] }\n`);
    const r = await getFrom('127.0.0.1', server.ops!.address!.port, '/zone');
    expect(server.federation.snapshot.ready).toBe(false);
    expect(r.status).toBe(503);
    expect(r.body).toBe('not ready: no member cluster has synced yet, or the zone is still being built (AXFR is refused too)\n');
  });

  it('refuses /zone to everyone by default, and when transfers need TSIG', async () => {
    const { get } = await start();
    const r = await get('/zone');
    expect(r.status).toBe(403);
    expect(r.body).toBe('forbidden: 127.0.0.1 is not in transfer.allow\n');
    const { server } = await start(
      (y) => `${y}transfer: { allow: [127.0.0.1], tsig: [{ name: xfr-key., secret: "${Buffer.alloc(32, 7).toString('base64')}" }] }\n`,
    );
    const signed = await getFrom('127.0.0.1', server.ops!.address!.port, '/zone');
    expect(signed.status).toBe(403);
    expect(signed.body).toBe('forbidden: transfer.requireTsig is on; transfer the zone by AXFR with a TSIG key\n');
  });

  it('reports programming latency after a change in a member cluster', async () => {
    const { get, dir } = await start();
    await until(() => get('/readyz'), (r) => r.status === 200);
    const file = join(dir, 'demo', 'bravo', 'services.yaml');
    const { readFileSync } = await import('node:fs');
    writeFileSync(file, readFileSync(file, 'utf8').replace('198.51.100.30', '198.51.100.31'));
    const m = await until(
      () => get('/metrics'),
      (r) => (metric(r.body, 'fedns_programming_latency_seconds_count', 'cluster="bravo"') ?? 0) >= 1,
    );
    expect(metric(m.body, 'fedns_programming_latency_seconds_count', 'cluster="bravo"')).toBeGreaterThanOrEqual(1);
  });

  it('is not ready while a cluster has never synced, until the start-up deadline', async () => {
    const { get } = await start((y) => y.replace('ops:\n  listen: 127.0.0.1:0', 'ops:\n  readyTimeout: 1\n  listen: 127.0.0.1:0').replace('demo/charlie', 'demo/broken'));
    // charlie's directory holds a broken file (created below), so charlie stays syncing.
    const first = await get('/readyz');
    expect(first.status === 503 ? first.body : 'ready early').toMatch(/not ready: waiting for charlie/);
    const later = await until(() => get('/readyz'), (r) => r.status === 200, 3000);
    expect(later.status).toBe(200);
  });

  it('explains an answer: clusters, health, skipped addresses and the fallback that fired', async () => {
    const { get } = await start();
    await until(() => get('/readyz'), (r) => r.status === 200);
    const res = await get('/explain?name=nginx.default.fed.svc.eu-west.example.com&type=A', 'application/json');
    expect(res.status).toBe(200);
    const ex = JSON.parse(res.body);
    expect(ex.rcode).toBe('NOERROR');
    expect(ex.parsed).toEqual({ kind: 'regional', namespace: 'default', service: 'nginx', region: 'eu-west' });
    const charlie = ex.service.clusters.find((c: { cluster: string }) => c.cluster === 'charlie');
    expect(charlie).toMatchObject({ used: false, health: 'live', reason: 'no ready endpoint in this cluster' });
    expect(charlie.skipped).toContainEqual({ address: '203.0.113.10', reason: 'cluster has no ready endpoint' });
    expect(ex.notes.join('\n')).toMatch(/region eu-west has no healthy address: CNAME to the global name/);
    const text = await get('/explain?name=missing.example.org&format=text');
    expect(text.body).toMatch(/REFUSED/);
    expect((await get('/explain?name=x.example.com&type=BOGUS')).status).toBe(400);
    // Not a name: an empty label, a lone backslash (RFC 1035 5.1 escapes), a label over 63 bytes.
    for (const bad of ['a..example.com', 'a%5C', `${'x'.repeat(64)}.example.com`]) expect((await get(`/explain?name=${bad}`)).status, bad).toBe(400);
    expect((await get('/explain?name=a%5C.b.example.com&format=text')).status).toBe(200);
    expect((await get('/explain')).status).toBe(400);
  });

  it('answers GET and HEAD; any other method is 405 with the methods it takes', async () => {
    const { server } = await start();
    const base = `http://127.0.0.1:${server.ops!.address!.port}`;
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const res = await fetch(`${base}/metrics`, { method });
      expect(res.status, method).toBe(405);
      expect(res.headers.get('allow')).toBe('GET, HEAD');
      expect(await res.text()).toMatch(/GET/);
    }
    const head = await fetch(`${base}/healthz`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });

  it('keeps at most 32 connections from one client, closes those that stay idle for tcp.idleTimeout, and answers the others meanwhile', async () => {
    const { server } = await start((y) => `${y}\ntcp: { idleTimeout: 1 }\n`);
    const port = server.ops!.address!.port;
    // 40 connections from one address that send nothing.
    const sockets = await Promise.all(
      Array.from({ length: 40 }, () => new Promise<ReturnType<typeof connect>>((resolve) => {
        const c = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' }, () => resolve(c));
        c.on('error', () => {});
      })),
    );
    const closedAt = sockets.map((c) => new Promise<number>((resolve) => c.on('close', () => resolve(performance.now()))));
    const begun = performance.now();
    const open = () => new Promise<number>((r) => (server.ops as unknown as { server: { getConnections(cb: (e: unknown, n: number) => void): void } }).server.getConnections((_e, n) => r(n)));
    // The ones past 32 are closed at once.
    expect(await until(open, (n) => n === 32, 2000)).toBe(32);
    // Another client is answered meanwhile.
    expect((await getFrom('127.0.0.3', port, '/healthz')).status).toBe(200);
    // The idle ones go after a second.
    const times = await Promise.all(closedAt);
    expect(Math.max(...times) - begun).toBeGreaterThanOrEqual(800);
    expect(Math.max(...times) - begun).toBeLessThan(8000);
    // And the other client's, kept alive after its answer, within the keep-alive timeout (5 s).
    expect(await until(open, (n) => n === 0, 8000)).toBe(0);
  }, 20_000);

  it('answers a request target it cannot read with 400, not an internal error', async () => {
    const { server } = await start();
    const port = server.ops!.address!.port;
    for (const target of ['http://[', 'http://a:99999/zone']) {
      const head = await new Promise<string>((resolve, reject) => {
        const c = connect(port, '127.0.0.1', () => c.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
        let got = '';
        c.on('data', (d) => (got += d));
        c.on('end', () => resolve(got));
        c.on('error', reject);
      });
      expect(head.split('\r\n')[0], target).toBe('HTTP/1.1 400 Bad Request');
    }
  });

  it('explains a traffic policy for a client, and counts answers by policy and tier and disagreeing services', async () => {
    const { server, get, dir } = await start();
    await until(() => get('/readyz'), (r) => r.status === 200);
    const ex = JSON.parse((await get('/explain?name=nginx.default.fed.example.com&client=127.0.0.3', 'application/json')).body);
    expect(ex.answer).toEqual([expect.stringMatching(/\tA\t198\.51\.100\.10$/)]);
    expect(ex.traffic).toMatchObject({ policy: 'nearest', source: { policy: 'annotation' }, disagreements: [] });
    expect(ex.traffic.client).toMatchObject({ address: '127.0.0.3', by: 'source address', identified: 'cluster bravo, network 127.0.0.3/32', cluster: 'bravo', region: 'us-east' });
    expect(ex.traffic.client.choices).toEqual([expect.objectContaining({ family: 'A', tier: 'cluster', addresses: ['198.51.100.10'] })]);
    const unknown = JSON.parse((await get('/explain?name=nginx.default.fed.example.com&client=127.0.0.9', 'application/json')).body);
    expect(unknown.traffic.client).toMatchObject({ identified: 'unknown: in no client network' });
    expect(unknown.traffic.client.choices).toEqual([expect.objectContaining({ tier: 'unknown', addresses: ['192.0.2.10', '198.51.100.10'] })]);
    expect((await get('/explain?name=nginx.default.fed.example.com&client=nobody')).status).toBe(400);

    const { port } = server.dns.addresses()[0];
    for (const from of ['127.0.0.2', '127.0.0.2', '127.0.0.4']) {
      const sock = createSocket('udp4');
      await new Promise<void>((r) => sock.bind(0, from, () => r()));
      const answered = new Promise((r) => sock.once('message', r));
      sock.send(encodeQuery('nginx.default.fed.example.com.', RRType.A), port, '127.0.0.1');
      await answered;
      sock.close();
    }
    const m = (await get('/metrics')).body;
    expect(metric(m, 'fedns_policy_answers_total', 'policy="nearest",tier="cluster"')).toBe(2);
    expect(metric(m, 'fedns_policy_answers_total', 'policy="nearest",tier="all"')).toBe(1);
    expect(metric(m, 'fedns_policy_disagreements', 'annotation="fedns.io/policy"')).toBe(0);

    // charlie's copy of nginx turns to failover: the copies disagree, 2 to 1.
    const file = join(dir, 'demo', 'charlie', 'services.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('annotations: { fedns.io/policy: nearest }', 'annotations: { fedns.io/policy: failover }'));
    const after = await until(() => get('/metrics'), (r) => metric(r.body, 'fedns_policy_disagreements', 'annotation="fedns.io/policy"') === 1);
    expect(metric(after.body, 'fedns_policy_disagreements', 'annotation="fedns.io/policy"')).toBe(1);
    const text = (await get('/explain?name=nginx.default.fed.example.com&format=text')).body;
    expect(text).toContain('the copies disagree on fedns.io/policy (alpha: nearest, bravo: nearest, charlie: failover): nearest is used');
  });

  it('explains a client given as an EDNS Client Subnet: identified by the subnet when ECS is on, with the scope answered', async () => {
    const { get } = await start((y) => `${y}\nlocality: { ecs: true }\nclients: [{ networks: [198.51.100.0/24], region: us-east, zone: us-east-b }]\n`);
    await until(() => get('/readyz'), (r) => r.status === 200);
    const ex = JSON.parse((await get('/explain?name=nginx.default.fed.example.com&client=198.51.100.0/24', 'application/json')).body);
    expect(ex.answer).toEqual([expect.stringMatching(/\tA\t198\.51\.100\.10$/)]);
    expect(ex.ecsScope).toBe(24);
    expect(ex.traffic.client).toMatchObject({ address: '198.51.100.0/24', by: 'EDNS Client Subnet', identified: 'clients[0], network 198.51.100.0/24', region: 'us-east' });
    expect(ex.traffic.client.choices).toEqual([expect.objectContaining({ tier: 'zone', addresses: ['198.51.100.10'] })]);
    // Bits past the prefix are cleared, as the option requires.
    expect(JSON.parse((await get('/explain?name=nginx.default.fed.example.com&client=198.51.100.77/24', 'application/json')).body).ecsScope).toBe(24);
    for (const bad of ['198.51.100.0/33', '198.51.100.0/24/1', 'nowhere/8']) expect((await get(`/explain?name=nginx.default.fed.example.com&client=${bad}`)).status, bad).toBe(400);
  });

  it('says a subnet is ignored while ECS is off', async () => {
    const { get } = await start();
    await until(() => get('/readyz'), (r) => r.status === 200);
    const ex = JSON.parse((await get('/explain?name=nginx.default.fed.example.com&client=127.0.0.2/32', 'application/json')).body);
    expect(ex.ecsScope).toBeUndefined();
    expect(ex.traffic.client).toMatchObject({ by: 'EDNS Client Subnet, ignored: locality.ecs is off', identified: 'not identified: the subnet is ignored' });
    const notes = ex.notes.join('\n');
    expect(notes).toContain('locality.ecs is off: the EDNS Client Subnet 127.0.0.2/32 is ignored');
    // Not said to be an unknown client: what it is was never looked at.
    expect(notes).not.toContain('127.0.0.2/32 is unknown');
    expect(notes).toMatch(/with the subnet ignored, a client in no client network; answered by tier/);
  });
});
