// The `join` / `unjoin` command actions: run, print the report, map errors to messages and
// exit codes (2: invalid configuration, like the other commands; 1: everything else).
import { ConfigError } from '../config/load.js';
import { EditError } from './edit.js';
import { JoinError, join, unjoin, type RunResult } from './join.js';
import { KubeError } from './kube.js';

export interface JoinCliOptions {
  kubeconfig: string;
  context?: string;
  nameserver: string;
  config: string;
  region?: string;
  zones?: string;
  dryRun?: boolean;
}

export interface UnjoinCliOptions {
  config: string;
  kubeconfig?: string;
  context?: string;
  skipCluster?: boolean;
  dryRun?: boolean;
}

async function run(what: () => Promise<RunResult>): Promise<void> {
  try {
    const r = await what();
    process.stdout.write(r.output);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`fedns: invalid configuration\n${e.message}\n`);
      process.exitCode = 2;
      return;
    }
    const known = e instanceof JoinError || e instanceof KubeError || e instanceof EditError;
    process.stderr.write(`fedns: ${known ? (e as Error).message : ((e as Error).stack ?? String(e))}\n`);
    process.exitCode = 1;
  }
}

export function runJoinCommand(cluster: string, o: JoinCliOptions): Promise<void> {
  return run(() =>
    join({
      cluster,
      kubeconfig: o.kubeconfig,
      context: o.context,
      nameserver: o.nameserver,
      config: o.config,
      region: o.region,
      zones: o.zones,
      dryRun: o.dryRun,
    }),
  );
}

export function runUnjoinCommand(cluster: string, o: UnjoinCliOptions): Promise<void> {
  return run(() =>
    unjoin({ cluster, config: o.config, kubeconfig: o.kubeconfig, context: o.context, skipCluster: o.skipCluster, dryRun: o.dryRun }),
  );
}
