// The page reader's worker thread (page-reader.ts): parses and converts pages of LIST answers
// and big manifest files, one message at a time, and answers each with the converted objects or
// what was wrong with them.
import { parentPort } from 'node:worker_threads';
import { convertPage } from './list-page.js';
import { ManifestError, parseManifestText } from './manifest.js';
import type { PageReply, PageRequest } from './page-reader.js';

const port = parentPort;
if (!port) throw new Error('page-worker.js runs as a worker thread of fedns');

port.on('message', (m: PageRequest) => {
  let reply: PageReply;
  try {
    if (m.kind === 'manifest') reply = { id: m.id, inventory: parseManifestText(m.file, m.text) };
    else {
      const text = Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength).toString('utf8');
      const page = convertPage(m.kind, text);
      reply = typeof page === 'string' ? { id: m.id, problem: page } : { id: m.id, page };
    }
  } catch (e) {
    // A manifest that does not parse, said as the main thread would say it.
    if (e instanceof ManifestError) reply = { id: m.id, manifestError: e.detail };
    // One line: it becomes the reason of the list's failure, in the cluster's health and log.
    else reply = { id: m.id, defect: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
  }
  port.postMessage(reply);
});
// The imports above loaded: the reader may count on this worker.
port.postMessage({ ready: true });
