/**
 * DNSSEC through a signing secondary (README: DNSSEC): fedns (the demo, as a child process) is the
 * primary of Knot DNS configured from config/examples/knot-signer.conf as it is shipped (only
 * addresses, ports and directories substituted, test/support/secondaries.ts knotSignerConfig), and
 * unbound validates what Knot serves from the zone's KSK as trust anchor (read from Knot with kdig).
 *
 * Checked: Knot serves exactly fedns's zone plus the DNSSEC records; dnssec-verify (BIND's zone
 * verifier, the equivalent of `kzonesign -v`, which Debian's knot 3.2 does not ship) finds it fully
 * signed and rejects a tampered copy; every RRset has its RRSIG; positive answers, CNAME chains,
 * NODATA and NXDOMAIN through unbound carry AD and equal fedns's answers; a wrong trust anchor gives
 * SERVFAIL; a member-cluster change (a manifest edited) is served signed and validated within
 * seconds (fedns's SOA refresh stays at an hour: only its NOTIFY can have made Knot follow).
 * All of it twice: plainly, and with the example's commented-out TSIG lines in use while fedns
 * requires TSIG for transfers and signs its NOTIFYs.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nameToWire } from '../../src/wire/name.js';
import { dig, rrKey, type DigResult, type RR } from '../support/dig.js';
import { startFedns, withYaml, type FednsProcess } from '../support/fedns.js';
import { eventually } from '../support/kube-harness.js';
import { freePort, requirePeers, runPeer, startUnbound, tmpDir, type PeerHandle, type TmpDir } from '../support/peers.js';
import { knotSignerConfig, startSecondary, type Secondary, type TsigSpec } from '../support/secondaries.js';
import { writeAtomic } from './harness.js';

const ZONE = 'example.com.';
const available = requirePeers('dig', 'kdig', 'knotd', 'knotc', 'keymgr', 'unbound', 'dnssec-verify');

/** Record types the signer adds (RFC 4034, RFC 5155, RFC 7344). */
const DNSSEC_TYPES = new Set(['RRSIG', 'NSEC', 'NSEC3', 'NSEC3PARAM', 'DNSKEY', 'CDS', 'CDNSKEY']);

/** The zone's KSK as Knot serves it, as a trust anchor ("example.com. DNSKEY 257 3 13 ..."), read with kdig. */
async function readKsk(port: number): Promise<string | undefined> {
  const { code, out } = await runPeer('kdig', ['@127.0.0.1', '-p', String(port), '+short', '+norec', '+retry=2', '+time=2', ZONE, 'DNSKEY']);
  const ksk = code === 0 ? out.split('\n').find((l) => /^257 3 \d+ \S+/.test(l.trim())) : undefined;
  return ksk ? `${ZONE} DNSKEY ${ksk.trim()}` : undefined;
}

/** RFC 4034 appendix B: the key tag of a DNSKEY, from its RDATA in wire format. */
function keyTag(rdata: Buffer): number {
  let ac = 0;
  for (let i = 0; i < rdata.length; i++) ac += i & 1 ? rdata[i] : rdata[i] << 8;
  return (ac + ((ac >> 16) & 0xffff)) & 0xffff;
}

/** DNSKEY RDATA in wire format (RFC 4034 2.2) from "FLAGS PROTOCOL ALGORITHM BASE64...". */
function dnskeyWire(text: string): Buffer {
  const [flags, protocol, algorithm, ...key] = text.trim().split(/\s+/);
  const head = Buffer.alloc(4);
  head.writeUInt16BE(Number(flags), 0);
  head.writeUInt8(Number(protocol), 2);
  head.writeUInt8(Number(algorithm), 3);
  return Buffer.concat([head, Buffer.from(key.join(''), 'base64')]);
}

/** The key of the TSIG scenario: the name the example's commented-out TSIG lines use. */
const TSIG: TsigSpec = { name: 'xfr-key.', secret: 'ZmVkbnMtdGVzdC10c2lnLXNlY3JldC0wMTIzNDU2Nzg5' };

const axfr = (port: number, extra: string[] = []) => dig(['@127.0.0.1', '-p', String(port), ...extra, ZONE, 'AXFR']);

/**
 * The zone's records without what the signer adds, SOA serial blanked (Knot serves its own), and
 * without the TSIG records dig lists with a signed transfer (they sign messages, not the zone).
 */
function unsignedContent(r: DigResult): string[] {
  const keys = r.answer
    .filter((rr) => !DNSSEC_TYPES.has(rr.type) && rr.type !== 'TSIG')
    .map((rr) => (rr.type === 'SOA' ? rrKey({ ...rr, data: rr.data.split(' ').map((f, i) => (i === 2 ? 'SERIAL' : f)).join(' ') }) : rrKey(rr)));
  return [...new Set(keys)].sort();
}

function contentDiff(fedns: DigResult, knot: DigResult): string[] {
  const a = unsignedContent(fedns);
  const b = unsignedContent(knot);
  return [...a.filter((k) => !b.includes(k)).map((k) => `only fedns: ${k}`), ...b.filter((k) => !a.includes(k)).map((k) => `only Knot: ${k}`)];
}

/** "owner TYPE" of every RRset that has no RRSIG covering it. */
function unsignedRRsets(rrs: RR[]): string[] {
  const covered = new Set(rrs.filter((rr) => rr.type === 'RRSIG').map((rr) => `${rr.name} ${rr.data.split(' ')[0]}`));
  return [...new Set(rrs.filter((rr) => rr.type !== 'RRSIG').map((rr) => `${rr.name} ${rr.type}`))].filter((k) => !covered.has(k));
}

/** The answer as "owner TYPE data" without TTLs (a resolver counts them down) and without RRSIGs. */
const answerSet = (r: DigResult) => [...new Set(r.answer.filter((rr) => rr.type !== 'RRSIG').map((rr) => `${rr.name} ${rr.type} ${rr.data}`))].sort();

for (const tsig of [false, true]) {
  describe.skipIf(!available)(`DNSSEC: fedns -> Knot signing secondary (config/examples/knot-signer.conf${tsig ? ', with its TSIG lines; fedns requires TSIG' : ''}) -> validating unbound`, () => {
    let fedns: FednsProcess;
    let knot: Secondary;
    let unbound: PeerHandle;
    let scratch: TmpDir;
    let ksk: string;

    /** dnssec-verify on the zone Knot transfers out; the file is kept for the tamper check. */
    async function verifyKnotZone(): Promise<{ code: number; out: string; text: string }> {
      const r = await axfr(knot.port);
      expect(r.xfr, r.raw).toBe(true);
      const file = join(scratch.path, 'signed.zone');
      writeFileSync(file, r.raw);
      return { ...(await runPeer('dnssec-verify', ['-o', ZONE, file])), text: r.raw };
    }

    /** fedns's own zone (with TSIG when it requires it). */
    const fednsAxfr = () => axfr(fedns.port, tsig ? ['-y', `hmac-sha256:${TSIG.name}:${TSIG.secret}`] : []);

    const resolve = (name: string, type: string, extra: string[] = []) =>
      dig(['@127.0.0.1', '-p', String(unbound.port), '+tries=3', '+time=3', ...extra, name, type]);

    beforeAll(async () => {
      scratch = await tmpDir('fedns-dnssec-');
      const knotPort = await freePort();
      fedns = await startFedns({
        edit: withYaml(
          `transfer: { allow: [127.0.0.1], notify: ["127.0.0.1:${knotPort}"], notifyDelay: 100ms` +
            (tsig ? `, tsig: [{ name: ${TSIG.name}, secret: "${TSIG.secret}" }], requireTsig: true, notifyKey: ${TSIG.name}` : '') +
            ' }',
        ),
      });
      knot = await startSecondary('knot', { zone: ZONE, primaryPort: fedns.port, port: knotPort, tsig: tsig ? TSIG : undefined, config: knotSignerConfig });
      // The first AXFR, key generation and signing of the whole zone.
      ksk = await eventually(() => readKsk(knot.port), (k) => k !== undefined, "Knot's KSK", 30_000, 200).then((k) => k!);
      // Answers are cached for at most a second, so that polling the resolver sees a change as soon
      // as Knot serves it (a production resolver keeps the 30 s TTL).
      unbound = await startUnbound({
        upstreamPort: knot.port,
        domain: ZONE,
        trustAnchors: [ksk],
        extraServerConfig: '    cache-max-ttl: 1\n    cache-max-negative-ttl: 1\n    val-log-level: 2',
      });
    });

    afterAll(async () => {
      if (process.env.FEDNS_SHOW_SECONDARY_OUTPUT === '1' && knot) console.log(`--- knotd output ---\n${knot.output()}`);
      await unbound?.stop();
      await knot?.stop();
      await fedns?.stop();
      await scratch?.cleanup();
    });

    it("serves fedns's zone, fully signed (dnssec-verify), every RRset with its RRSIG", async () => {
      const diff = await eventually(
        async () => contentDiff(await fednsAxfr(), await axfr(knot.port)),
        (d) => d.length === 0,
        "Knot's zone to equal fedns's",
        20_000,
        200,
      );
      expect(diff).toEqual([]);

      const signed = await axfr(knot.port);
      const types = new Set(signed.answer.map((rr) => rr.type));
      for (const t of ['DNSKEY', 'RRSIG', 'NSEC3', 'NSEC3PARAM']) expect(types.has(t), t).toBe(true);
      expect(unsignedRRsets(signed.answer)).toEqual([]);
      // NSEC3 as the example asks: no extra iterations, no salt (RFC 9276).
      expect(signed.answer.find((rr) => rr.type === 'NSEC3PARAM')?.data).toBe('1 0 0 -');

      const verified = await verifyKnotZone();
      expect(verified.out).toMatch(/Zone fully signed/);
      expect(verified.code, verified.out).toBe(0);

      // The verifier is not a rubber stamp: one address changed after signing is found.
      const tampered = verified.text.replace(/^(nginx\.default\.fed\.example\.com\.\s+\d+\s+IN\s+A\s+)198\.51\.100\.10$/m, '$1198.51.100.11');
      expect(tampered).not.toBe(verified.text);
      const file = join(scratch.path, 'tampered.zone');
      writeFileSync(file, tampered);
      const bad = await runPeer('dnssec-verify', ['-o', ZONE, file]);
      expect(bad.code).not.toBe(0);
      expect(bad.out).toMatch(/No correct .* signature for nginx\.default\.fed\.example\.com A/);
    });

    // Independent of how the zone reaches Knot: once.
    if (!tsig) it("the README's operator commands: conf-check, the DS for the parent, KSK submitted", async () => {
      const check = await runPeer('knotc', ['-c', knot.configFile, 'conf-check']);
      expect(check.out).toMatch(/Configuration is valid/);
      expect(check.code, check.out).toBe(0);

      // The DS to publish at the parent is the one of the KSK the resolver trusts (RFC 4509: SHA-256).
      const ds = await runPeer('keymgr', ['-c', knot.configFile, ZONE, 'ds']);
      expect(ds.code, ds.out).toBe(0);
      const sha256 = ds.out.split('\n').map((l) => l.trim().split(/\s+/)).find((f) => f[1] === 'DS' && f[4] === '2');
      expect(sha256, ds.out).toBeDefined();
      const [owner, , tag, algorithm, , digest] = sha256!;
      const rdata = dnskeyWire(ksk.split(' DNSKEY ')[1]);
      expect(owner).toBe(ZONE);
      expect(Number(tag)).toBe(keyTag(rdata));
      expect(Number(algorithm)).toBe(rdata[3]);
      expect(digest.toLowerCase()).toBe(createHash('sha256').update(Buffer.concat([nameToWire(ZONE), rdata])).digest('hex'));

      // Once the DS is at the parent: the KSK leaves "ready" for "active" (keymgr list).
      const submitted = await runPeer('knotc', ['-s', join(knot.dir, 'knot.sock'), 'zone-ksk-submitted', ZONE]);
      expect(submitted.code, submitted.out).toBe(0);
      await eventually(
        async () => (await runPeer('keymgr', ['-c', knot.configFile, ZONE, 'list'])).out,
        (list) => list.split('\n').some((l) => l.includes(` ${tag} KSK `) && /\bactive=/.test(l)),
        'the KSK to become active',
        10_000,
        200,
      );
      // ... and the zone keeps validating.
      const r = await resolve('nginx.default.fed.example.com', 'A');
      expect(r.flags.has('ad'), r.raw).toBe(true);
    });

    it("answers through the validating resolver carry AD and equal fedns's answers", async () => {
      const queries: [string, string, string][] = [
        ['nginx.default.fed.example.com', 'A', 'NOERROR'],
        ['web.shop.fed.example.com', 'AAAA', 'NOERROR'],
        ['_postgres._tcp.db.data.fed.example.com', 'SRV', 'NOERROR'],
        // A CNAME chain inside the zone (region -> federation), each link validated.
        ['nginx.default.fed.svc.eu-west-a.eu-west.example.com', 'A', 'NOERROR'],
        // NODATA and NXDOMAIN: denial proven by NSEC3.
        ['nginx.default.fed.example.com', 'TXT', 'NOERROR'],
        ['nosuch.default.fed.example.com', 'A', 'NXDOMAIN'],
      ];
      for (const [name, type, rcode] of queries) {
        const direct = await dig(['@127.0.0.1', '-p', String(fedns.port), '+norec', name, type]);
        const viaResolver = await resolve(name, type);
        const what = `${name} ${type}: ${viaResolver.raw}`;
        expect(direct.status, what).toBe(rcode);
        expect(viaResolver.status, what).toBe(rcode);
        expect(viaResolver.flags.has('ad'), what).toBe(true);
        expect(answerSet(viaResolver), what).toEqual(answerSet(direct));
        if (rcode === 'NOERROR' && type !== 'TXT') expect(viaResolver.answer.length, what).toBeGreaterThan(0);
      }

      // Knot's own denial of existence carries the NSEC3 records that prove it, signed.
      const denial = await dig(['@127.0.0.1', '-p', String(knot.port), '+norec', '+dnssec', 'nosuch.default.fed.example.com', 'A']);
      expect(denial.status).toBe('NXDOMAIN');
      expect(denial.authority.filter((rr) => rr.type === 'NSEC3').length).toBeGreaterThan(0);
      expect(unsignedRRsets(denial.authority)).toEqual([]);
    });

    if (!tsig) it('a resolver with the wrong trust anchor answers SERVFAIL (validation really happens)', async () => {
      // Another public key (one base64 character changed in the middle): the served DNSKEY RRset no
      // longer chains to the anchor, so its data is bogus.
      const parts = ksk.split(' ');
      const key = parts[parts.length - 1];
      const mid = Math.floor(key.length / 2);
      const wrong = [...parts.slice(0, -1), `${key.slice(0, mid)}${key[mid] === 'A' ? 'B' : 'A'}${key.slice(mid + 1)}`].join(' ');
      const strict = await startUnbound({ upstreamPort: knot.port, domain: ZONE, trustAnchors: [wrong] });
      try {
        const r = await dig(['@127.0.0.1', '-p', String(strict.port), '+tries=3', '+time=3', 'nginx.default.fed.example.com', 'A']);
        expect(r.status, r.raw).toBe('SERVFAIL');
        expect(r.answer).toEqual([]);
      } finally {
        await strict.stop();
      }
    });

    it('a member-cluster change is served signed and validated within seconds', async () => {
      const serialBefore = await knot.serial();
      expect(serialBefore).toBeDefined();
      const file = join(fedns.dir, 'demo', 'alpha', 'services.yaml');
      const text = readFileSync(file, 'utf8');
      expect(text).toContain('{ ip: 192.0.2.10 }');
      const logFrom = knot.output().length;
      const t0 = Date.now();
      writeAtomic(file, text.replace('{ ip: 192.0.2.10 }', '{ ip: 192.0.2.77 }'));

      const want = ['nginx.default.fed.example.com. A 192.0.2.77', 'nginx.default.fed.example.com. A 198.51.100.10'];
      // Bound generous for a busy 2-core machine; 1 to 3 s measured here.
      const got = await eventually(
        () => resolve('nginx.default.fed.example.com', 'A'),
        (r) => r.status === 'NOERROR' && r.flags.has('ad') && JSON.stringify(answerSet(r)) === JSON.stringify(want),
        'the new address, validated, through the resolver',
        20_000,
        100,
      );
      const elapsed = Date.now() - t0;
      console.log(`DNSSEC: manifest edit -> signed, validated answer in ${elapsed} ms`);
      expect(answerSet(got)).toEqual(want);
      expect(got.flags.has('ad')).toBe(true);

      // Knot re-signed (its own serial moved on) and serves the new RRset with its signature.
      const serialAfter = await knot.serial();
      expect(serialAfter).not.toBe(serialBefore);
      const signed = await dig(['@127.0.0.1', '-p', String(knot.port), '+norec', '+dnssec', 'nginx.default.fed.example.com', 'A']);
      expect(answerSet(signed)).toEqual(want);
      expect(signed.answer.some((rr) => rr.type === 'RRSIG' && rr.data.startsWith('A '))).toBe(true);

      // The whole zone is still equal to fedns's and fully signed after the incremental signing.
      await eventually(async () => contentDiff(await fednsAxfr(), await axfr(knot.port)), (d) => d.length === 0, "Knot's zone to equal fedns's", 20_000, 200);
      const verified = await verifyKnotZone();
      expect(verified.code, verified.out).toBe(0);
      expect(verified.out).toMatch(/Zone fully signed/);
      // Knot followed by IXFR (an incremental signing), not a new AXFR; fedns refused nothing (with
      // TSIG: every request was signed with the key).
      const log = knot.output().slice(logFrom);
      expect(log).toMatch(/IXFR, incoming, remote 127\.0\.0\.1@\d+, finished/);
      expect(log).toMatch(/DNSSEC, incrementally signed/);
      expect(log).not.toMatch(/AXFR, incoming/);
      expect(fedns.logs().filter((r) => String(r.msg).startsWith('zone transfer refused'))).toEqual([]);
    });
  });
}
