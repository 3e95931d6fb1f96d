// The page reader's worker thread (page-reader.ts): parses and converts pages of LIST answers
// and big manifest files, one message at a time, and answers each with the converted objects (a
// big page's in batches, each sent when asked for) or what was wrong with them.
import { parentPort } from 'node:worker_threads';
import { convertPage, PAGE_BATCH, type ConvertedPage } from './list-page.js';
import { ManifestError, parseManifestText } from './manifest.js';
import type { PageReply, WorkerRequest } from './page-reader.js';

const port = parentPort;
if (!port) throw new Error('page-worker.js runs as a worker thread of fedns');

/** Pages sent back in part: their objects from `at` on wait for the main thread to ask (PAGE_BATCH). */
const held = new Map<number, { page: ConvertedPage; at: number }>();

/** Page `id`'s objects from `at` on: all of them, or a batch, the rest held until asked for. */
function batchOf(id: number, page: ConvertedPage, at: number): PageReply {
  const end = at + PAGE_BATCH;
  if (at === 0 && page.items.length <= PAGE_BATCH && page.skipped.length <= PAGE_BATCH) return { id, page };
  const more = end < page.items.length || end < page.skipped.length;
  if (more) held.set(id, { page, at: end });
  else held.delete(id);
  const batch = { ...page, items: page.items.slice(at, end), skipped: page.skipped.slice(at, end) };
  return more ? { id, page: batch, more } : { id, page: batch };
}

port.on('message', (m: WorkerRequest) => {
  let reply: PageReply;
  try {
    if (m.kind === 'next') {
      const h = held.get(m.id);
      reply = h ? batchOf(m.id, h.page, h.at) : { id: m.id, defect: 'the next batch of a page not held' };
    } else if (m.kind === 'manifest') reply = { id: m.id, inventory: parseManifestText(m.file, m.text) };
    else {
      const text = Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength).toString('utf8');
      const page = convertPage(m.kind, text);
      reply = typeof page === 'string' ? { id: m.id, problem: page } : batchOf(m.id, page, 0);
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
