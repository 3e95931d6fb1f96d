// Memory and service under abuse: the abuse run of test/e2e/abuse.test.ts (non-reading
// pipeliners, slowloris and byte-trickling clients, 2,000 idle connections from one address, a
// UDP NXDOMAIN flood) against the built fedns, while a well-behaved client asks 1,000 queries/s
// over UDP and 10/s over TCP. Prints fedns's start and peak RSS and the good client's answer rate.
// usage: node dist/benchmarks/abuse.js [seconds=60]
import { ABUSE_CONFIG, ABUSE_MIX, runAbuse } from '../test/support/abuse.js';
import { startFedns, withYaml } from '../test/support/fedns.js';

const SECONDS = Number(process.argv[2] ?? ABUSE_MIX.seconds);
const MiB = 1024 * 1024;

const f = await startFedns({ edit: withYaml(ABUSE_CONFIG) });
try {
  const mix = { ...ABUSE_MIX, seconds: SECONDS };
  console.log(
    `abuse run, ${SECONDS} s: ${mix.pipeliners} non-reading pipeliners, ${mix.slowloris} slowloris, ${mix.tricklers} tricklers, ` +
      `${mix.idle} idle connections from one address, ${mix.floodPerSecond} NXDOMAIN queries/s over UDP; ` +
      `good client ${mix.goodUdpPerSecond}/s UDP + ${mix.goodTcpPerSecond}/s TCP`,
  );
  const r = await runAbuse(f.port, f.process.pid!, mix);
  const pct = (right: number, asked: number) => (asked ? ((100 * right) / asked).toFixed(2) : '-');
  console.log(`fedns RSS: start ${(r.rss.start / MiB).toFixed(1)} MiB, peak ${(r.rss.peak / MiB).toFixed(1)} MiB (+${((r.rss.peak - r.rss.start) / MiB).toFixed(1)} MiB, ${r.rss.samples} samples)`);
  console.log(
    `good client: ${pct(r.good.udp.right + r.good.tcp.right, r.good.udp.asked + r.good.tcp.asked)} % right ` +
      `(UDP ${r.good.udp.right}/${r.good.udp.asked}, TCP ${r.good.tcp.right}/${r.good.tcp.asked}, wrong ${r.good.udp.wrong + r.good.tcp.wrong})`,
  );
  const lost = Object.entries(r.udpLostBySecond);
  console.log(`good client's UDP queries lost, by second of the run: ${lost.length ? lost.map(([s, n]) => `${s}s: ${n}`).join(', ') : 'none'}; its own event loop held up at most ${r.clientLagMaxMs} ms`);
  console.log(
    `abusers: pipeliners sent ${(r.pipeliners.sentBytes / MiB).toFixed(1)} MiB on ${r.pipeliners.connections} connections (${r.pipeliners.closedByServer} closed by fedns); ` +
      `slowloris ${r.slowloris.closedByServer}/${r.slowloris.connections} and tricklers ${r.tricklers.closedByServer}/${r.tricklers.connections} closed by fedns; ` +
      `idle ${r.idle.closedByServer} closed by fedns, ${r.idle.openAtEnd} open at the end; flood ${r.flood.answers}/${r.flood.sent} answered`,
  );
} finally {
  await f.stop();
}
