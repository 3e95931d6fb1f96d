#!/usr/bin/env node
// The abusive clients of the abuse run in a process of their own (see runAbuse in abuse.ts):
//
//   node dist/test/support/abusers-cli.js PORT MIX_JSON
//
// Prints "started" once they run against 127.0.0.1:PORT, then after the mix's seconds what they
// did, as JSON.
import { runAbusers, type AbuseMix } from './abuse.js';

const [port, mix] = process.argv.slice(2);
if (!port || !mix) {
  process.stderr.write('usage: abusers-cli PORT MIX_JSON\n');
  process.exit(2);
}
const stats = await runAbusers(Number(port), JSON.parse(mix) as AbuseMix, () => process.stdout.write('started\n'));
process.stdout.write(`${JSON.stringify(stats)}\n`);
// Sockets still closing must not hold the process.
process.exit(0);
