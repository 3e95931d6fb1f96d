#!/usr/bin/env node
// Runs the fake kube-apiserver as a stand-alone "live cluster" on 127.0.0.1:
//
//   node dist/test/support/fake-apiserver-cli.js --manifests DIR --kubeconfig-out FILE \
//        [--port N] [--token T] [--context NAME] [--no-service-exports] [--verbose]
//
// Loads every *.yaml/*.yml/*.json in DIR, writes a kubeconfig for it to FILE, prints the URL and
// then follows DIR: edit, add or delete manifest files and the objects are added, modified or
// deleted (watchers see the events). Stops on SIGINT/SIGTERM.

import { watch, type FSWatcher } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { FakeApiServer } from './fake-apiserver.js';

const USAGE = `usage: fake-apiserver-cli --manifests DIR --kubeconfig-out FILE [--port N] [--token T] [--context NAME]
                           [--no-service-exports] [--bookmark-interval MS] [--verbose]`;

function fail(msg: string): never {
  process.stderr.write(`fake-apiserver: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        manifests: { type: 'string', short: 'm' },
        port: { type: 'string', short: 'p', default: '0' },
        token: { type: 'string', short: 't', default: 'fedns-dev-token' },
        'kubeconfig-out': { type: 'string', short: 'o' },
        context: { type: 'string', default: 'fake' },
        'no-service-exports': { type: 'boolean', default: false },
        'bookmark-interval': { type: 'string', default: '5000' },
        verbose: { type: 'boolean', short: 'v', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    fail((err as Error).message);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (!values.manifests) fail('--manifests DIR is required');
  if (!values['kubeconfig-out']) fail('--kubeconfig-out FILE is required');
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`bad --port ${values.port}`);
  const bookmarkIntervalMs = Number(values['bookmark-interval']);
  if (!(bookmarkIntervalMs > 0)) fail(`bad --bookmark-interval ${values['bookmark-interval']}`);
  const dir = path.resolve(values.manifests);
  const kubeconfigOut = path.resolve(values['kubeconfig-out']);
  const log = (msg: string) => process.stderr.write(`${new Date().toISOString()} ${msg}\n`);

  const server = new FakeApiServer({
    port,
    tokens: [values.token],
    serviceExports: !values['no-service-exports'],
    bookmarkIntervalMs,
  });
  await server.start();
  if (values.verbose) {
    server.on('request', (r: { method: string; path: string; query: Record<string, string>; status: number }) => {
      const qs = new URLSearchParams(r.query).toString();
      log(`${r.status} ${r.method} ${r.path}${qs ? '?' + qs : ''}`);
    });
  }

  const sync = async (why: string) => {
    try {
      const r = await server.syncManifests(dir);
      const parts = [
        ...r.added.map((k) => `+${k}`),
        ...r.modified.map((k) => `~${k}`),
        ...r.removed.map((k) => `-${k}`),
      ];
      if (parts.length > 0 || why === 'initial') {
        log(`${why}: ${r.added.length} added, ${r.modified.length} modified, ${r.removed.length} removed, ${r.unchanged.length} unchanged (rv ${server.resourceVersion}) ${parts.join(' ')}`);
      }
    } catch (err) {
      log(`${why}: manifests not applied: ${(err as Error).message}`);
    }
  };

  await sync('initial');
  server.writeKubeconfig(kubeconfigOut, { context: values.context, token: values.token });
  process.stdout.write(`fake-apiserver listening on ${server.url}\n`);
  process.stdout.write(`kubeconfig written to ${kubeconfigOut} (context ${values.context})\n`);

  // Follow the directory; debounce bursts of fs events (editors write several times per save).
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dir, () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        timer = undefined;
        running = running.then(() => sync('reload'));
      }, 150);
    });
    watcher.on('error', (err) => log(`watching ${dir} failed: ${err.message}`));
  } catch (err) {
    log(`cannot watch ${dir}: ${(err as Error).message}; changes will not be followed`);
  }

  let stopping = false;
  const shutdown = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    log(`${sig}: stopping`);
    if (timer) clearTimeout(timer);
    watcher?.close();
    await running;
    await server.stop();
    process.exitCode = 0;
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
}

main().catch((err: unknown) => {
  process.stderr.write(`fake-apiserver: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
