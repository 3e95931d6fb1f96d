// A member cluster restored from an etcd backup: its resourceVersions are behind the one fedns
// watches from. The API server answers such a watch, after waiting a few seconds for its cache
// to catch up, with a 504 Status whose cause is ResourceVersionTooLarge (as an HTTP answer, or
// as an ERROR event in the stream). Resuming the watch from the same resourceVersion gets the
// same answer for ever: the cluster stays stale, and the restored cluster's services are never
// read. fedns lists again instead (a consistent list), as for 410 Gone.
import { describe, expect, it } from 'vitest';
import { describeStatus } from '../../src/cluster/kube-http.js';
import { scriptedTransport, sinkOf, startReflector } from '../support/reflector.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The Status a kube-apiserver gives a watch from a resourceVersion it has not reached. */
const TOO_LARGE = {
  kind: 'Status',
  apiVersion: 'v1',
  status: 'Failure',
  message: 'Too large resource version: 900, current: 120',
  reason: 'Timeout',
  details: { causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }], retryAfterSeconds: 1 },
  code: 504,
};

/**
 * A reflector over a server restored to resourceVersion 120 after fedns had seen 900: the first
 * list says 900; every watch from 900 gets `answer`; lists after that say 120, and a watch from
 * 120 stays open. Returns the lists made and the resourceVersions watched from.
 */
async function restored(answer: 'status' | 'event') {
  let lists = 0;
  const watchedFrom: string[] = [];
  const { transport, streams } = scriptedTransport(
    async () => {
      lists++;
      return { items: [], metadata: { resourceVersion: lists === 1 ? '900' : '120' } };
    },
    (query, s) => {
      watchedFrom.push(query.resourceVersion);
      if (query.resourceVersion !== '900') return;
      if (answer === 'status') throw describeStatus(504, JSON.stringify(TOO_LARGE));
      setImmediate(() => s.end(`${JSON.stringify({ type: 'ERROR', object: TOO_LARGE })}\n`));
    },
  );
  const r = startReflector(transport, sinkOf());
  try {
    for (const end = Date.now() + 3000; Date.now() < end && !watchedFrom.includes('120'); ) await sleep(10);
    return { lists, watchedFrom: [...watchedFrom] };
  } finally {
    await r.stop();
    for (const s of streams) s.destroy();
  }
}

describe('Reflector: a watch from a resourceVersion the API server has not reached (a restored cluster)', () => {
  for (const answer of ['status', 'event'] as const) {
    it(`lists again when told so by ${answer === 'status' ? 'a 504 answer' : 'an ERROR event'} with cause ResourceVersionTooLarge`, async () => {
      const { lists, watchedFrom } = await restored(answer);
      expect(lists).toBe(2);
      expect(watchedFrom[0]).toBe('900');
      expect(watchedFrom).toContain('120');
    });
  }
});
