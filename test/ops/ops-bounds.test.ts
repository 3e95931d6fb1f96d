// The ops listener's connection bounds against kubelet's probes.
import { connect, type Socket } from 'node:net';
import { get as httpGet } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { DemoServers } from '../support/demo.js';
import { OPS_MAX_CONNECTIONS, OPS_MAX_CONNECTIONS_PER_CLIENT } from '../../src/ops/http.js';

const demos = new DemoServers();
afterEach(() => demos.stopAll());

function getFrom(localAddress: string, port: number, path: string): Promise<{ status: number } | { error: string }> {
  return new Promise((resolve) => {
    httpGet({ host: '127.0.0.1', port, path, localAddress, timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
    }).on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
  });
}

describe('the ops listener full of idle connections', () => {
  it("still answers kubelet's /healthz probe from another address (an idle connection makes room, as on the DNS listener)", async () => {
    const { server, sockets } = await demos.start();
    const port = server.ops!.address!.port;
    // 8 addresses, 32 connections each, that send nothing: well within tcp.idleTimeout (10 s).
    const hosts = OPS_MAX_CONNECTIONS / OPS_MAX_CONNECTIONS_PER_CLIENT;
    for (let h = 0; h < hosts; h++)
      for (let i = 0; i < OPS_MAX_CONNECTIONS_PER_CLIENT; i++)
        sockets.push(
          await new Promise<Socket>((resolve) => {
            const c = connect({ port, host: '127.0.0.1', localAddress: `127.0.1.${h + 1}` }, () => resolve(c));
            c.on('error', () => {});
          }),
        );
    await new Promise((r) => setTimeout(r, 200));
    // The kubelet's probe, from the node's address.
    expect(await getFrom('127.0.0.1', port, '/healthz')).toEqual({ status: 200 });
  }, 30_000);
});
