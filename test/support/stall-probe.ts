/**
 * A client that asks without pause and records how long each answer took: one UDP query out,
 * wait for its answer (or `timeoutMs`), the next one at once. It runs in a worker thread, so
 * that whatever the calling thread does meanwhile (fake API servers serialising big lists) does
 * not count as fedns's wait.
 *
 *   const probe = await StallProbe.start(port, 'example.com.');
 *   ... work on fedns ...
 *   const { maxMs, answers, timeouts } = await probe.take(); // figures since start or the last take()
 *   await probe.stop();
 */
import { Worker } from 'node:worker_threads';

export interface StallFigures {
  /** Longest wait for an answer (a timeout counts as timeoutMs). */
  maxMs: number;
  /** Answers received. */
  answers: number;
  /** Queries left unanswered within timeoutMs. */
  timeouts: number;
}

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const dgram = require('node:dgram');
const { port, name, timeoutMs } = workerData;
const labels = name.replace(/\\.$/, '').split('.');
const q = Buffer.alloc(12 + labels.reduce((n, l) => n + l.length + 1, 1) + 4);
let o = 12;
q.writeUInt16BE(1, 4);
for (const l of labels) { q[o++] = l.length; o += q.write(l, o, 'latin1'); }
q[o++] = 0; q.writeUInt16BE(6, o); q.writeUInt16BE(1, o + 2); // SOA IN
const s = dgram.createSocket('udp4');
let id = 0, sent = 0, timer, max = 0, answers = 0, timeouts = 0, stopped = false;
function ask() {
  if (stopped) return;
  id = (id + 1) & 0xffff;
  q.writeUInt16BE(id, 0);
  sent = performance.now();
  timer = setTimeout(() => { timeouts++; max = Math.max(max, timeoutMs); ask(); }, timeoutMs);
  s.send(q, port, '127.0.0.1');
}
s.on('message', (m) => {
  if (m.length < 12 || m.readUInt16BE(0) !== id) return;
  clearTimeout(timer);
  max = Math.max(max, performance.now() - sent);
  answers++;
  ask();
});
parentPort.on('message', (cmd) => {
  parentPort.postMessage({ maxMs: max, answers, timeouts });
  max = 0; answers = 0; timeouts = 0;
  if (cmd === 'stop') { stopped = true; clearTimeout(timer); s.close(); }
});
s.bind(0, '127.0.0.1', ask);
`;

export class StallProbe {
  private constructor(private readonly worker: Worker) {}

  static async start(port: number, name: string, timeoutMs = 2000): Promise<StallProbe> {
    const worker = new Worker(WORKER, { eval: true, workerData: { port, name, timeoutMs } });
    await new Promise<void>((resolve, reject) => {
      worker.once('online', resolve);
      worker.once('error', reject);
    });
    return new StallProbe(worker);
  }

  private ask(cmd: 'take' | 'stop'): Promise<StallFigures> {
    return new Promise((resolve) => {
      this.worker.once('message', resolve);
      this.worker.postMessage(cmd);
    });
  }

  /** Figures since the start or the previous take(), and a new window from now. */
  take(): Promise<StallFigures> {
    return this.ask('take');
  }

  /** The last window's figures; the worker ends. */
  async stop(): Promise<StallFigures> {
    const f = await this.ask('stop');
    await this.worker.terminate();
    return f;
  }
}
