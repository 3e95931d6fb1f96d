#!/usr/bin/env node
// fedns command line: serve, check, zone, explain, join, unjoin.
import { watchFile, unwatchFile } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { ConfigError, loadConfig, MAX_CONFIG_FILE, type Config } from './config/load.js';
import { readRegularFile } from './regular-file.js';
import { LOG_LEVELS } from './config/schema.js';
import { clientMap, Fedns, loadFederation, rateLimitSummary, ReloadIncomplete, transferPolicy } from './app.js';
import { createLogger } from './ops/log.js';
import { ListenError } from './listen-error.js';
import { chooseUdpPath, type UdpBatchMode } from './server/udp-batch.js';
import { applyHeapGrowth } from './heap-growth.js';
import { VERSION } from './version.js';
import { masterFile } from './zone/masterfile.js';
import { canonicalName } from './wire/name.js';
import { runJoinCommand, runUnjoinCommand } from './join/command.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The embedded default: config/fedns.yaml of the installation. */
export const DEFAULT_CONFIG = resolve(here, '..', '..', 'config', 'fedns.yaml');

function load(file: string): Config {
  try {
    return loadConfig(file);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`fedns: invalid configuration\n${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
}

const program = new Command();
program.name('fedns').description('Authoritative DNS for a federation of Kubernetes clusters').version(VERSION).showHelpAfterError();
const configOption = () => new Option('-c, --config <file>', 'configuration file').default(DEFAULT_CONFIG, 'config/fedns.yaml');

program
  .command('serve')
  .description('answer DNS queries for the federation zone')
  .addOption(configOption())
  .addOption(new Option('--log-level <level>', 'override log.level').choices(LOG_LEVELS))
  .action(async (opts: { config: string; logLevel?: string }) => {
    // Before anything grows the heap (src/heap-growth.ts).
    const heapGrowth = applyHeapGrowth();
    // --log-level stands for log.level at every start: the configuration in force says so, and a
    // reload's file is read with it too (its own log.level is no change while the flag stands).
    const withFlags = (c: Config): Config => (opts.logLevel ? { ...c, log: { ...c.log, level: opts.logLevel as Config['log']['level'] } } : c);
    const config = withFlags(load(opts.config));
    const log = createLogger(config.log.level);
    // A promise nobody awaited that failed is a bug somewhere off the query path: log it and go
    // on answering rather than take the DNS down with it (Node's default is to exit).
    process.on('unhandledRejection', (e) => log.error({ err: e }, 'unhandled promise rejection; serving on'));
    const server = new Fedns(config, log);
    try {
      await server.start();
    } catch (e) {
      // An address that cannot be had is the operator's to fix, not a bug: no stack trace.
      log.fatal(e instanceof ListenError ? listenFields(e) : { err: e }, 'cannot start');
      // Also in plain words, for whoever started it by hand.
      const hint = e instanceof ListenError ? `; change "${e.field}" in ${config.file}` : '';
      process.stderr.write(`fedns: cannot start: ${e instanceof Error ? e.message : String(e)}${hint}\n`);
      process.exit(1);
    }
    log.info({ config: config.file, domain: config.domain, clusters: config.clusters.length, heapGrowth }, 'fedns started');
    const warnIfNoClusters = (c: Config) => {
      if (c.clusters.length === 0) log.warn({ config: c.file }, NO_CLUSTERS);
    };
    warnIfNoClusters(config);
    let reloading = Promise.resolve();
    // The text of the file as last loaded (or attempted): an edit announced twice (SIGHUP and the
    // file watcher, or a watcher that fires twice for one write) is applied once.
    // Only after it was applied: touching a file whose reload failed (a port then in use) tries again.
    let lastText = readText(config.file);
    const reload = (why: string) => {
      reloading = reloading.then(async () => {
        const text = readText(config.file);
        if (why === 'file changed' && text !== undefined && text === lastText) return;
        lastText = undefined;
        let next: Config;
        try {
          next = withFlags(loadConfig(config.file, { reload: true }));
        } catch (e) {
          log.error({ reason: why, error: (e as Error).message }, 'configuration rejected; keeping the running one');
          server.metrics.configReload('rejected');
          return;
        }
        try {
          await server.reload(next);
          lastText = text;
          server.metrics.configReload('applied');
          warnIfNoClusters(next);
        } catch (e) {
          // A file valid on its own that does not go with what only a restart changes.
          if (e instanceof ConfigError) {
            log.error({ reason: why, error: e.message }, 'configuration rejected; keeping the running one');
            server.metrics.configReload('rejected');
            return;
          }
          if (e instanceof ReloadIncomplete)
            log.error({ err: e.cause, reason: why }, 'reload applied in part: the new configuration is in force, but not yet to every cluster; restart fedns to apply it whole');
          else log.error({ ...(e instanceof ListenError ? listenFields(e) : { err: e }), reason: why }, 'reload failed; keeping the running configuration');
          server.metrics.configReload('failed');
        }
      });
    };
    process.on('SIGHUP', () => reload('SIGHUP'));
    // Not the modification time alone: a file removed and put back (renamed back, a backup
    // restored with its times) has the time it had, and Node compares it with the stat before the
    // removal. Its change time moves, and the text check above skips what is already in force.
    watchFile(config.file, { interval: 500 }, (cur, prev) => {
      if (cur.mtimeMs !== prev.mtimeMs || cur.ctimeMs !== prev.ctimeMs || cur.ino !== prev.ino) reload('file changed');
    });
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'shutting down');
      unwatchFile(config.file);
      const force = setTimeout(() => process.exit(1), 5000);
      force.unref();
      await server.stop(2000);
      log.info('stopped');
      process.exit(0);
    };
    process.on('SIGTERM', () => void stop('SIGTERM'));
    process.on('SIGINT', () => void stop('SIGINT'));
  });

/** A ListenError as log fields: what could not listen, why, and the field that sets it. */
function listenFields(e: ListenError): Record<string, unknown> {
  return { error: e.message, field: e.field, code: e.code };
}

/** Clusters read from a Kubernetes API server, which the offline commands do not contact. */
function kubeClusters(config: Config): string[] {
  return config.clusters.filter((c) => c.source.type === 'kube').map((c) => c.name);
}

/**
 * The `files` clusters whose manifests could not be read when loadFederation read them (a file
 * that does not parse, one that is not a regular file, a directory that cannot be listed), each
 * with the error naming the file.
 */
function unreadableFileClusters(config: Config, fed: Awaited<ReturnType<typeof loadFederation>>): { name: string; error: string }[] {
  const out: { name: string; error: string }[] = [];
  for (const cl of config.clusters) {
    const state = cl.source.type === 'files' ? fed.clusters.get(cl.name) : undefined;
    if (state && state.health !== 'live') out.push({ name: cl.name, error: state.reason });
  }
  return out;
}

/** What check and serve say of a configuration without clusters. */
const NO_CLUSTERS = 'no clusters: the zone holds only its apex (add clusters, each with a source)';

/** Which replica serves transfers (transfer.primary), as `fedns check` says it. */
function primaryText(c: Config): string {
  const p = c.transfer.primary;
  if (p === undefined) return '';
  return `, served by ${p} only (${p === c.identity.server ? 'this replica' : `not this replica, ${c.identity.server}`})`;
}

program
  .command('check')
  .description('validate a configuration file and print a summary')
  .addOption(configOption())
  .action(async (opts: { config: string }) => {
    const config = load(opts.config);
    const log = createLogger('warn');
    const fed = await loadFederation(config, log);
    const snap = fed.snapshot;
    const cs = fed.clusterSetSnapshot;
    const clients = clientMap(config, fed.clusters);
    // Cluster data fedns cannot use in full: the configuration is valid, the zone misses something.
    // Kube clusters are not contacted, but their kubeconfig is read as serve reads it.
    const { loadKubeConfig } = await import('./cluster/kube.js');
    const kubeProblems: string[] = [];
    for (const cl of config.clusters) {
      if (cl.source.type !== 'kube') continue;
      try {
        await loadKubeConfig(cl.source);
      } catch (e) {
        const what = cl.source.inCluster ? 'inCluster' : `kubeconfig ${cl.source.kubeconfig}`;
        kubeProblems.push(`    cluster ${cl.name}: ${what}: ${(e as Error).message.split('\n')[0]}; it will not sync until this is fixed`);
      }
    }
    const kube = new Set(kubeClusters(config));
    const warnings = [
      ...(config.clusters.length === 0 ? [`    ${NO_CLUSTERS}`] : []),
      ...kubeProblems,
      ...unreadableFileClusters(config, fed).map(
        ({ name, error }) => `    cluster ${name}: cannot read its manifests: ${error}; the zones above lack its services, and serve would not read it until this is fixed`,
      ),
      ...[...fed.policyDisagreements].map(
        ([key, annotations]) => `    service ${key}: its copies disagree on ${annotations.join(', ')} (fedns explain names the value used)`,
      ),
      ...clients.duplicates.map((n) => `    client network ${n} is listed twice; the first listing (cluster order, then clients) places it`),
      ...clients.hostBits.map(([written, network]) => `    client network ${written} has host bits set: it is the network ${network} (write that)`),
      ...(clients.overridden
        ? [`    ${clients.overridden} network${clients.overridden > 1 ? 's' : ''} learned from nodes lie inside networks the configuration places elsewhere; left out`]
        : []),
      ...[...fed.servicesWithOmittedNames].map(
        ([key, names]) => `    service ${key}: ${names.length} name${names.length > 1 ? 's' : ''} longer than 255 bytes left out, e.g. ${names[0]}`,
      ),
      ...fed.ignored
        .entries()
        .filter(([reason, n]) => n > 0 && reason !== 'name too long')
        .map(([reason, n]) =>
          reason === 'unreadable object'
            ? `    ${n} object${n > 1 ? 's' : ''} fedns cannot read skipped (the log names each)`
            : `    ${n} ${reason} value${n > 1 ? 's' : ''} in cluster objects ignored (the log names each object)`,
        ),
    ];
    // udp.batch on without the addon: valid syntax, but the server would not start.
    const udp = udpSummary(config.udp.batch);
    const cannotStart = udp.startsWith('error: ');
    const verdict = cannotStart
      ? 'valid, but fedns would not start (udp below)'
      : warnings.length
        ? `OK, with ${warnings.length} warning${warnings.length > 1 ? 's' : ''}`
        : 'OK';
    const lines = [
      `${config.file}: ${verdict}`,
      `  zone ${config.domain} federation ${config.federation}, serial ${snap.serial}, ${snap.recordCount} records`,
      ...(cs ? [`  zone ${cs.domain} (Multi-Cluster Services, exported services), serial ${cs.serial}, ${cs.recordCount} records`] : []),
      `  listen ${config.listen.map((l) => `${l.host}:${l.port}`).join(', ')}; ops ${config.ops.listen ? `${config.ops.listen.host}:${config.ops.listen.port}` : 'off'}`,
      `  selection ${config.selection.policy}${config.selection.labelSelector ? ` (${config.selection.labelSelector})` : ''}, address mode ${config.addressMode}`,
      `  queries from ${config.queries.allow === null ? 'everyone' : config.queries.allow.join(', ') || 'nobody'}; transfers to ${config.transfer.allow.join(', ') || 'nobody'}${config.transfer.tsig.length ? ` (TSIG ${config.transfer.requireTsig === false ? 'optional' : 'required'})` : ''}${primaryText(config)}`,
      `  rate limit ${rateLimitSummary(config)}`,
      `  udp ${udp}`,
      `  traffic policy ${config.policy}${config.maxAddresses !== null ? `, at most ${config.maxAddresses} addresses per answer` : ''}; ${clients.size} client networks${config.clusters.some((c) => c.clientNetworks === 'auto') ? ' (and those learned from nodes)' : ''}; ECS ${config.locality.ecs ? 'on' : 'off'}`,
      `  identity ${config.identity.server ?? 'off'}, version ${config.identity.version ?? 'off'}, NSID ${config.identity.nsid && config.identity.server !== null ? 'on' : 'off'}`,
      `  clusters (${config.clusters.length}):`,
      ...[...fed.clusters.values()].map(
        (c) =>
          `    ${c.name}: region ${c.region ?? '-'}, zones ${c.zones.join(',') || '-'}, ${c.settings.addressMode}, ` +
          (kube.has(c.name)
            ? 'read from a Kubernetes API server, not contacted by check (the zones above lack its services)'
            : `${c.health}, ${c.services.size} services${c.reason ? ` (${c.reason})` : ''}`),
      ),
      ...(warnings.length ? [`  warnings (${warnings.length}):`, ...warnings] : []),
    ];
    process.stdout.write(lines.join('\n') + '\n');
    fed.close();
    if (cannotStart) process.exitCode = 1;
  });

/** Which UDP path `serve` would take, and why. */
function udpSummary(mode: UdpBatchMode): string {
  try {
    const c = chooseUdpPath(mode);
    return `${c.path} (${c.reason})`;
  } catch (e) {
    return `error: ${(e as Error).message}`;
  }
}

program
  .command('zone')
  .description('print the zone the server would serve, in master-file format')
  .addOption(configOption())
  .option('--zone <domain>', 'the zone to print: the federation domain (default) or mcs.domain (the clusterset zone)')
  .action(async (opts: { config: string; zone?: string }) => {
    const config = load(opts.config);
    const want = opts.zone === undefined ? config.domain : canonicalName(opts.zone);
    if (want !== config.domain && !(config.mcs.enabled && want === config.mcs.domain))
      fail(`--zone ${opts.zone}: not a zone of ${config.file} (it serves ${[config.domain, ...(config.mcs.enabled ? [config.mcs.domain] : [])].join(' and ')})`);
    // A zone without those clusters' services would load into a secondary as if it were whole.
    const kube = kubeClusters(config);
    if (kube.length) {
      const ops = config.ops.listen;
      // /zone carries no TSIG: while one is required, only a signed AXFR gives the zone.
      const tsigRequired = transferPolicy(config).requireTsig;
      const listen = config.listen[0];
      const instead = tsigRequired
        ? `transfer it from the running server with the TSIG key, e.g. kdig -y hmac-sha256:${config.transfer.tsig[0]?.name ?? 'KEY'}:SECRET @${listen.host} -p ${listen.port} ${want} AXFR`
        : `curl http://${ops ? `${ops.host.includes(':') ? `[${ops.host}]` : ops.host}:${ops.port}` : 'OPS-ADDRESS'}/zone${want === config.domain ? '' : `?zone=${want}`} (for clients in transfer.allow)`;
      fail(
        `${config.file}: ${kube.length > 1 ? 'clusters' : 'cluster'} ${kube.join(', ')} ${kube.length > 1 ? 'are' : 'is'} read from a Kubernetes API server, which \`fedns zone\` does not contact: the zone would lack ${kube.length > 1 ? 'their' : 'its'} services. ` +
          `Ask the running server instead: ${instead}.`,
      );
    }
    const fed = await loadFederation(config, createLogger('warn'));
    const unreadable = unreadableFileClusters(config, fed);
    if (unreadable.length) {
      fed.close();
      fail(
        `${config.file}: ${unreadable.map(({ name, error }) => `cluster ${name} cannot be read: ${error}`).join('; ')}. ` +
          `The zone would lack ${unreadable.length > 1 ? 'their' : 'its'} services: fix it and run fedns zone again.`,
      );
    }
    process.stdout.write(masterFile(want === config.domain ? fed.snapshot : fed.clusterSetSnapshot!));
    fed.close();
  });

program
  .command('explain')
  .description('show why NAME answers what it does: clusters considered, their health, fallbacks')
  .argument('<name>', 'query name')
  .argument('[type]', 'query type', 'A')
  .addOption(configOption())
  .option('--offline', 'compute from the configuration instead of asking the running server')
  .option('--json', 'print JSON')
  .option('--client <ip|subnet>', 'answer as this client gets it (traffic policies): its source address, or an EDNS Client Subnet such as 192.0.2.0/24')
  .action(async (name: string, type: string, opts: { config: string; offline?: boolean; json?: boolean; client?: string }) => {
    const config = load(opts.config);
    const format = opts.json ? 'json' : 'text';
    if (!opts.offline) {
      if (!config.ops.listen) fail(`${config.file}: ops.listen is off; use --offline or enable the ops listener`);
      const { host, port } = config.ops.listen!;
      const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/explain?name=${encodeURIComponent(name)}&type=${encodeURIComponent(type)}&format=${format}${opts.client ? `&client=${encodeURIComponent(opts.client)}` : ''}`;
      let res: Response;
      try {
        res = await fetch(url);
      } catch (e) {
        fail(`cannot reach the running server at ${host}:${port} (${(e as Error).cause ?? (e as Error).message}); is it running? (or use --offline)`);
      }
      const body = await res!.text();
      if (!res!.ok) fail(body.trim());
      process.stdout.write(body);
      return;
    }
    const fed = await loadFederation(config, createLogger('warn'));
    const kube = kubeClusters(config);
    if (kube.length)
      process.stderr.write(
        `fedns: --offline does not contact Kubernetes API servers: ${kube.join(', ')} show${kube.length > 1 ? '' : 's'} as not synced (ask the running server: drop --offline)\n`,
      );
    for (const { name, error } of unreadableFileClusters(config, fed)) process.stderr.write(`fedns: cluster ${name} cannot be read (${error}): it shows as not synced\n`);
    const { explain, explanationText } = await import('./ops/explain.js');
    const { Responder } = await import('./server/responder.js');
    try {
      const responder = new Responder(() => fed.snapshot);
      responder.traffic = { clients: clientMap(config, fed.clusters), ecs: config.locality.ecs };
      responder.otherZone = () => fed.clusterSetSnapshot;
      const ex = explain(fed, responder, name, type, opts.client);
      process.stdout.write(opts.json ? JSON.stringify(ex, null, 2) + '\n' : explanationText(ex));
    } catch (e) {
      fail((e as Error).message);
    } finally {
      fed.close();
    }
  });

program
  .command('join')
  .description("add a member cluster: a clusters[] entry in the configuration, and its cluster DNS (kube-dns / CoreDNS) forwarding the federation domain to fedns")
  .argument('<cluster>', 'cluster name (clusters[].name)')
  .requiredOption('--kubeconfig <file>', 'kubeconfig of the member cluster (fedns reads the cluster with it too)')
  .option('--context <name>', "kubeconfig context (default: the kubeconfig's current-context)")
  .requiredOption('--nameserver <ip[:port]>', 'fedns address as the member cluster reaches it, e.g. 192.0.2.53 or 192.0.2.53:1053 (IPv6: [addr]:port; comma-separated for several)')
  .addOption(configOption())
  .option('--region <region>', 'region of the cluster')
  .option('--zones <a,b>', 'zones of the cluster (comma-separated; needs a region)')
  .option('--dry-run', 'print the exact changes and apply nothing')
  .action(runJoinCommand);

program
  .command('unjoin')
  .description('remove a member cluster: its clusters[] entry and what join added to its cluster DNS')
  .argument('<cluster>', 'cluster name (clusters[].name)')
  .addOption(configOption())
  .option('--kubeconfig <file>', "member kubeconfig (default: the cluster entry's)")
  .option('--context <name>', "kubeconfig context (default: the cluster entry's)")
  .option('--skip-cluster', 'only remove the configuration entry (the member cluster is gone or unreachable)')
  .option('--dry-run', 'print the exact changes and apply nothing')
  .action(runUnjoinCommand);

function fail(message: string): never {
  process.stderr.write(`fedns: ${message}\n`);
  process.exit(1);
}

await program.parseAsync(process.argv);

/** A file's text, or undefined when it cannot be read (loadConfig then says why). */
function readText(file: string): string | undefined {
  try {
    return readRegularFile(file, MAX_CONFIG_FILE, 'configuration file');
  } catch {
    return undefined;
  }
}
