/**
 * The alert rules of config/deploy/monitoring.yaml checked by Prometheus's own tool: the
 * PrometheusRule's spec is written out as a rules file, `promtool check rules` must accept it and
 * `promtool test rules` must pass test/deploy/alerts.promtest.yaml, whose tests must cover every
 * alert (firing on the series that should fire it, silent where it should not). Skips loudly
 * without promtool (Debian `prometheus`), fails under FEDNS_STRICT_PEERS=1.
 */
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { ROOT } from '../support/demo.js';
import { requirePeer, runPeer, tmpDir, type TmpDir } from '../support/peers.js';

type Obj = Record<string, any>; // rule and test files are free-form YAML; the tests check the shape

const MONITORING = join(ROOT, 'config', 'deploy', 'monitoring.yaml');
const PROMTEST = join(ROOT, 'test', 'deploy', 'alerts.promtest.yaml');
/** The name alerts.promtest.yaml's rule_files refers to. */
const RULES_FILE = 'fedns-rules.yaml';

/** The PrometheusRule's spec ({ groups: [...] }): exactly what the operator hands Prometheus. */
function ruleSpec(): Obj {
  const docs = parseAllDocuments(readFileSync(MONITORING, 'utf8')).map((d) => d.toJS() as Obj);
  const rules = docs.filter((d) => d?.kind === 'PrometheusRule');
  expect(rules.length, 'one PrometheusRule in monitoring.yaml').toBe(1);
  return rules[0].spec as Obj;
}

const spec = ruleSpec();
const alerts = (spec.groups as Obj[]).flatMap((g) => g.rules as Obj[]).filter((r) => r.alert);
const promtest = parse(readFileSync(PROMTEST, 'utf8')) as Obj;
const cases: Obj[] = (promtest.tests as Obj[]).flatMap((t) => (t.alert_rule_test as Obj[]).map((c) => ({ group: t.name as string, ...c })));

describe('alerts.promtest.yaml covers every alert', () => {
  it('has, for each alert, a test where it fires and one where it does not', () => {
    expect(alerts.length).toBeGreaterThanOrEqual(9);
    expect(promtest.rule_files).toEqual([RULES_FILE]);
    for (const a of alerts) {
      const mine = cases.filter((c) => c.alertname === a.alert);
      expect(mine.some((c) => (c.exp_alerts as Obj[]).length > 0), `${a.alert} fires in some test`).toBe(true);
      expect(mine.some((c) => (c.exp_alerts as Obj[]).length === 0), `${a.alert} stays silent in some test`).toBe(true);
    }
    // A test of an alert that does not exist would pass silently.
    const names = new Set(alerts.map((a) => a.alert as string));
    for (const c of cases) expect(names.has(c.alertname), `${c.group}: ${c.alertname} is an alert of monitoring.yaml`).toBe(true);
  });

  it('feeds only metrics the rules read (a misspelt series would make "does not fire" vacuous)', () => {
    const used = new Set(alerts.flatMap((a) => [...String(a.expr).matchAll(/\bfedns_[a-z0-9_]+/g)].map((m) => m[0])));
    for (const t of promtest.tests as Obj[]) {
      for (const s of t.input_series as Obj[]) {
        const metric = /^([a-z_:][a-z0-9_:]*)\{/.exec(String(s.series))?.[1];
        expect(used.has(metric ?? ''), `${t.name}: ${s.series}`).toBe(true);
      }
    }
  });
});

describe.skipIf(!requirePeer('promtool'))('promtool on the alert rules of config/deploy/monitoring.yaml', () => {
  let dir: TmpDir;

  beforeAll(async () => {
    dir = await tmpDir('fedns-promtool-');
    writeFileSync(join(dir.path, RULES_FILE), stringify(spec));
    copyFileSync(PROMTEST, join(dir.path, 'alerts.promtest.yaml'));
  });
  afterAll(async () => {
    await dir?.cleanup();
  });

  it('promtool check rules accepts them', async () => {
    const r = await runPeer('promtool', ['check', 'rules', RULES_FILE], { cwd: dir.path });
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain(`SUCCESS: ${alerts.length} rules found`);
  });

  it('promtool test rules passes alerts.promtest.yaml', async () => {
    const r = await runPeer('promtool', ['test', 'rules', 'alerts.promtest.yaml'], { cwd: dir.path });
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/SUCCESS/);
    expect(r.out).not.toMatch(/FAILED/);
  });

  it('the unit tests catch a changed rule, and check rules a broken one', async () => {
    // The event-loop threshold raised tenfold: the test that expects FednsEventLoopLag fails.
    const lax = structuredClone(spec);
    const lag = (lax.groups as Obj[]).flatMap((g) => g.rules as Obj[]).find((r) => r.alert === 'FednsEventLoopLag')!;
    expect(lag.expr).toContain('> 0.05');
    lag.expr = String(lag.expr).replace('> 0.05', '> 0.5');
    const changed = await tmpDir('fedns-promtool-changed-');
    try {
      writeFileSync(join(changed.path, RULES_FILE), stringify(lax));
      copyFileSync(PROMTEST, join(changed.path, 'alerts.promtest.yaml'));
      const t = await runPeer('promtool', ['test', 'rules', 'alerts.promtest.yaml'], { cwd: changed.path });
      expect(t.code).not.toBe(0);
      expect(t.out).toMatch(/FAILED[\s\S]*alertname: FednsEventLoopLag/);

      lag.expr = 'max by (pod) (fedns_nodejs_eventloop_lag_p99_seconds > 0.05';
      writeFileSync(join(changed.path, RULES_FILE), stringify(lax));
      const c = await runPeer('promtool', ['check', 'rules', RULES_FILE], { cwd: changed.path });
      expect(c.code).not.toBe(0);
      expect(c.out).toMatch(/FAILED/);
    } finally {
      await changed.cleanup();
    }
  });
});
