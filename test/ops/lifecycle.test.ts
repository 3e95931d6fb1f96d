import { readFileSync, renameSync, utimesSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { RRType } from '../../src/wire/constants.js';
import { decodeMessage, encodeQuery, type Message } from '../../src/wire/message.js';
import { startFedns, type FednsProcess } from '../support/fedns.js';
import { freePort } from '../support/peers.js';

let f: FednsProcess | undefined;
afterEach(async () => {
  await f?.stop();
  f = undefined;
});

function udpAsk(port: number, name: string, type: number = RRType.A, timeoutMs = 1000, qclass = 1): Promise<Message | undefined> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const t = setTimeout(() => {
      s.close();
      resolve(undefined);
    }, timeoutMs);
    s.on('message', (m) => {
      clearTimeout(t);
      s.close();
      resolve(decodeMessage(m));
    });
    s.on('error', () => {
      clearTimeout(t);
      s.close();
      resolve(undefined);
    });
    s.send(encodeQuery(name, type, { class: qclass }), port, '127.0.0.1');
  });
}

async function until<T>(f: () => Promise<T>, ok: (v: T) => boolean, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

const ttlOf = (m?: Message) => m?.answers[0]?.ttl;

/**
 * Starts fedns with an ops listener on a port of its choosing, and a reader of one metric's value
 * from /metrics (`absent` when no line has it).
 */
async function startWithOps(): Promise<{ fedns: FednsProcess; metric: (line: string, absent?: number) => Promise<number> }> {
  const fedns = await startFedns({ edit: (y) => y.replace('ops: { listen: null }', 'ops: { listen: 127.0.0.1:0 }') });
  const up = await fedns.waitForLog((r) => typeof r.msg === 'string' && r.msg.startsWith('ops listener up')).catch(async (e: unknown) => {
    await fedns.stop();
    throw e;
  });
  const opsPort = Number(/:(\d+)$/.exec(String(up.address))![1]);
  const metric = async (line: string, absent = NaN) => {
    const body = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
    const found = body.split('\n').find((l) => l.startsWith(`${line} `));
    return found === undefined ? absent : Number(found.split(' ')[1]);
  };
  return { fedns, metric };
}

describe('change without restart', () => {
  it('keeps --log-level in force across reloads: the file\'s log.level is not a change while the flag stands', async () => {
    f = await startFedns({ args: ['--log-level', 'debug'] });
    const yaml = readFileSync(f.config, 'utf8');
    expect(yaml).not.toMatch(/level: debug/);
    // A file whose log.level is the flag's, then one that says warn: neither is said to change
    // the level, which the flag sets at every start.
    writeFileSync(f.config, `${yaml.replace('default: 30', 'default: 31')}\nlog: { level: debug }\n`);
    f.process.kill('SIGHUP');
    await f.waitForLog((r) => r.msg === 'configuration reloaded');
    writeFileSync(f.config, yaml.replace('default: 30', 'default: 32'));
    f.process.kill('SIGHUP');
    await f.waitForLog((r) => r.msg === 'configuration reloaded' && f!.logs().filter((l) => l.msg === 'configuration reloaded').length === 2);
    expect(ttlOf(await udpAsk(f.port, 'nginx.default.fed.example.com.'))).toBe(32);
    expect(f.logs().filter((l) => l.msg === 'log.level changed: it takes effect at the next restart')).toEqual([]);
  });

  it('applies a valid config on SIGHUP and keeps the running one when the new one is invalid', async () => {
    f = await startFedns();
    expect(ttlOf(await udpAsk(f.port, 'nginx.default.fed.example.com.'))).toBe(30);
    const yaml = readFileSync(f.config, 'utf8');
    // Invalid: rejected with the field named, still serving the old configuration.
    writeFileSync(f.config, yaml.replace('default: 30', 'default: -5'));
    f.process.kill('SIGHUP');
    const rejected = await f.waitForLog((r) => r.msg === 'configuration rejected; keeping the running one');
    expect(String(rejected.error)).toMatch(/ttl\.default/);
    // Aliases that expand without bound: rejected like any other invalid file, the file named.
    const lol = ['lol0: &l0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 9; i++) lol.push(`lol${i}: &l${i} [${Array(10).fill(`*l${i - 1}`).join(', ')}]`);
    writeFileSync(f.config, lol.join('\n') + '\n');
    f.process.kill('SIGHUP');
    const bomb = await f.waitForLog((r) => r.msg === 'configuration rejected; keeping the running one' && /alias/.test(String(r.error)));
    expect(String(bomb.error).startsWith(`${f.config}: YAML: `)).toBe(true);
    // Empty, or comments only (a file caught mid-write): no configuration at all, not one of
    // no clusters that would drop every cluster.
    for (const [text, said] of [
      ['', /is empty/],
      ['# being rewritten\n', /only comments/],
    ] as const) {
      writeFileSync(f.config, text);
      f.process.kill('SIGHUP');
      const empty = await f.waitForLog((r) => r.msg === 'configuration rejected; keeping the running one' && said.test(String(r.error)));
      expect(String(empty.error)).toContain(f.config);
      expect(String(empty.error)).toMatch(/rename/);
      expect(ttlOf(await udpAsk(f.port, 'nginx.default.fed.example.com.'))).toBe(30);
    }
    expect(f.exited()).toBe(false);
    expect(ttlOf(await udpAsk(f.port, 'nginx.default.fed.example.com.'))).toBe(30);
    // Valid: TTL 60, a new identity, and cluster charlie removed (its db endpoints leave the answer).
    const without = yaml
      .replace('default: 30', 'default: 60')
      .replace('server: fedns-demo', 'server: fedns-reloaded')
      .replace(/  - name: charlie\n(?:    .*\n)+/, '');
    expect(without).toContain('fedns-reloaded');
    expect(without).not.toContain('charlie');
    writeFileSync(f.config, without);
    f.process.kill('SIGHUP');
    await f.waitForLog((r) => r.msg === 'configuration reloaded');
    const m = await until(() => udpAsk(f!.port, 'db.data.fed.example.com.'), (m) => m?.answers.length === 2);
    expect(m?.answers.map((r) => r.data).sort()).toEqual(['192.0.2.101', '192.0.2.102']);
    expect(ttlOf(await udpAsk(f.port, 'nginx.default.fed.example.com.'))).toBe(60);
    const id = await udpAsk(f.port, 'id.server.', RRType.TXT, 1000, 3);
    expect(id?.answers[0]?.data).toEqual(['fedns-reloaded']);
  });

  it('reloads when the config file changes, moving the listen address: every query sent to the old one is answered in full', async () => {
    f = await startFedns();
    const oldPort = f.port;
    const newPort = await freePort();
    const yaml = readFileSync(f.config, 'utf8');
    const full = (m?: Message) => JSON.stringify(m?.answers.map((r) => r.data).sort()) === JSON.stringify(['192.0.2.10', '198.51.100.10']);
    // Ask the old address without pause until the reload is logged: every reply is checked.
    let answered = 0;
    let wrong = 0;
    let asking = true;
    const loop = (async () => {
      while (asking) {
        if (full(await udpAsk(oldPort, 'nginx.default.fed.example.com.', RRType.A, 1500))) answered++;
        else wrong++;
      }
    })();
    await new Promise((r) => setTimeout(r, 200));
    writeFileSync(f.config, yaml.replace('127.0.0.1:0', `127.0.0.1:${newPort}`));
    await f.waitForLog((r) => r.msg === 'configuration reloaded');
    asking = false;
    await loop;
    expect(wrong).toBe(0);
    expect(answered).toBeGreaterThan(10);
    expect(full(await udpAsk(newPort, 'nginx.default.fed.example.com.'))).toBe(true);
    // The old address answers what was already sent to it, then stops.
    const last = await until(() => udpAsk(oldPort, 'nginx.default.fed.example.com.', RRType.A, 300), (m) => m === undefined, 5000);
    expect(last).toBeUndefined();
  });
});

describe('reload of the ops listener', () => {
  it('an ops address that cannot open changes nothing (old listener kept, counted as failed); touching the file once it can tries again, counted as applied', async () => {
    f = await startFedns({ edit: (y) => y.replace('ops: { listen: null }', 'ops: { listen: 127.0.0.1:0 }') });
    const up = await f.waitForLog((r) => typeof r.msg === 'string' && r.msg.startsWith('ops listener up'));
    let opsPort = Number(/:(\d+)$/.exec(String(up.address))![1]);
    const get = async (path: string) => {
      const res = await fetch(`http://127.0.0.1:${opsPort}${path}`);
      return { status: res.status, body: await res.text() };
    };
    const metric = (body: string, line: string) => Number(body.split('\n').find((l) => l.startsWith(`${line} `))?.split(' ')[1]);
    expect(metric((await get('/metrics')).body, 'fedns_config_last_reload_successful')).toBe(1);
    const holder = createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
    try {
      const taken = (holder.address() as { port: number }).port;
      const yaml = readFileSync(f.config, 'utf8');
      // Each edit is picked up by the file watch alone (a SIGHUP as well would reload twice).
      writeFileSync(f.config, yaml.replace('ops: { listen: 127.0.0.1:0 }', `ops: { listen: 127.0.0.1:${taken} }`).replace('default: 30', 'default: 45'));
      const failed = await f.waitForLog((r) => r.msg === 'reload failed; keeping the running configuration');
      // The operator's to fix, not a bug: the reason and the field, no stack trace.
      expect(failed).toMatchObject({ field: 'ops.listen', code: 'EADDRINUSE' });
      expect(String(failed.error)).toContain(`cannot listen for ops HTTP on 127.0.0.1:${taken}`);
      expect(failed.err).toBeUndefined();
      // Nothing changed: the old ops listener answers, the TTL is the old one.
      expect((await get('/healthz')).status).toBe(200);
      expect(ttlOf(await udpAsk(f.port, 'nginx.default.fed.example.com.'))).toBe(30);
      let m = (await get('/metrics')).body;
      expect(metric(m, 'fedns_config_reloads_total{result="failed"}')).toBe(1);
      expect(metric(m, 'fedns_config_last_reload_successful')).toBe(0);
      // The port is free again: touching the file (its text as before) tries the same edit again.
      await new Promise<void>((r) => holder.close(() => r()));
      const now = new Date();
      utimesSync(f.config, now, now);
      await f.waitForLog((r) => r.msg === 'configuration reloaded');
      expect(ttlOf(await udpAsk(f.port, 'nginx.default.fed.example.com.'))).toBe(45);
      // The ops listener moved there.
      opsPort = taken;
      expect((await get('/healthz')).status).toBe(200);
      m = (await get('/metrics')).body;
      expect(metric(m, 'fedns_config_reloads_total{result="applied"}')).toBe(1);
      expect(metric(m, 'fedns_config_last_reload_successful')).toBe(1);
      expect(m).toMatch(/^fedns_build_info\{version="\d+\.\d+\.\d+[^"]*",nodejs="\d+\.\d+\.\d+"\} 1$/m);
    } finally {
      if (holder.listening) holder.close();
    }
  });
});

describe('one edit, one reload', () => {
  it('an edit announced by SIGHUP and by the file watcher is applied once', async () => {
    const ops = await startWithOps();
    f = ops.fedns;
    const metric = ops.metric;
    const applied = () => metric('fedns_config_reloads_total{result="applied"}', 0);
    writeFileSync(f.config, readFileSync(f.config, 'utf8').replace('default: 30', 'default: 45'));
    f.process.kill('SIGHUP');
    await until(applied, (n) => n >= 1);
    expect(ttlOf(await udpAsk(f.port, 'nginx.default.fed.example.com.'))).toBe(45);
    // The watcher polls twice a second: give it several polls to notice the same edit.
    await new Promise((r) => setTimeout(r, 2000));
    expect(await applied()).toBe(1);
    expect(f.logs().filter((r) => r.msg === 'configuration reloaded')).toHaveLength(1);
  });
});

describe('a config file removed and put back', () => {
  it('is read again when it comes back with the modification time it had (renamed back): applied, and the reload gauge is 1 again', async () => {
    const ops = await startWithOps();
    f = ops.fedns;
    const metric = ops.metric;
    const away = `${f.config}.away`;
    renameSync(f.config, away);
    await f.waitForLog((r) => r.msg === 'configuration rejected; keeping the running one' && /no such file/.test(String(r.error)));
    expect(await metric('fedns_config_last_reload_successful')).toBe(0);
    // Its modification time is the one it had before it went away.
    renameSync(away, f.config);
    await f.waitForLog((r) => r.msg === 'configuration reloaded');
    expect(await metric('fedns_config_last_reload_successful')).toBe(1);
    expect(await metric('fedns_config_reloads_total{result="applied"}')).toBe(1);
    expect(ttlOf(await udpAsk(f.port, 'nginx.default.fed.example.com.'))).toBe(30);
  });
});

describe('graceful shutdown', () => {
  it('answers what a TCP client already sent, stops accepting and exits 0 on SIGTERM', async () => {
    f = await startFedns();
    const sock = connect(f.port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    const frames: Buffer[] = [];
    let buf = Buffer.alloc(0);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        frames.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
    });
    const frame = (id: number) => {
      const q = encodeQuery('web.shop.fed.example.com.', RRType.AAAA, { id });
      return Buffer.concat([Buffer.from([q.length >> 8, q.length & 255]), q]);
    };
    // One round trip first, so the server has certainly accepted the connection.
    sock.write(frame(76));
    while (frames.length < 1) await new Promise((r) => setTimeout(r, 5));
    // Then a query written right before the signal: it may still be unread when SIGTERM lands.
    sock.write(frame(77));
    f.process.kill('SIGTERM');
    const exit = await new Promise<number | null>((r) => f!.process.once('exit', (code) => r(code)));
    expect(exit).toBe(0);
    expect(frames.length).toBe(2);
    expect(decodeMessage(frames[1]).id).toBe(77);
    expect(decodeMessage(frames[1]).answers.length).toBe(2);
    const refused = await new Promise<boolean>((r) => {
      const c = connect(f!.port, '127.0.0.1');
      c.on('error', () => r(true));
      c.on('connect', () => {
        c.destroy();
        r(false);
      });
    });
    expect(refused).toBe(true);
    sock.destroy();
  });
});
