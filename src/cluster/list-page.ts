// One page of a LIST answer: the shape every list shares, and the conversion of a page of
// Services or EndpointSlices into the slim objects fedns holds. The Reflector (supervisor.ts)
// checks the shape of the pages it converts itself; the page reader (page-reader.ts) converts
// the pages of Services and EndpointSlices, on a worker thread when they are big.
import { ObjectError, slimEndpointSlice, slimService, type SlimEndpointSlice, type SlimService } from './objects.js';

type Obj = Record<string, unknown>;

/** A parsed LIST answer: an object with an `items` array. */
export interface ListAnswer {
  items: unknown[];
  metadata?: { resourceVersion?: unknown; continue?: unknown };
}

/** Where a list stands after a page. */
export interface ListPosition {
  /** metadata.resourceVersion, when it is a non-empty string. */
  resourceVersion?: string;
  /** metadata.continue: the token of the next page; undefined on the last page. */
  continue?: string;
}

export function isListAnswer(body: unknown): body is ListAnswer {
  return !!body && typeof body === 'object' && Array.isArray((body as Obj).items);
}

/** An item of a list that can be an object of the API (anything else is left out). */
export function isListItem(it: unknown): it is Obj {
  return !!it && typeof it === 'object' && !Array.isArray(it);
}

export function listPosition(list: ListAnswer): ListPosition {
  const rv = list.metadata?.resourceVersion;
  const cont = list.metadata?.continue;
  return {
    resourceVersion: typeof rv === 'string' && rv ? rv : undefined,
    continue: typeof cont === 'string' && cont ? cont : undefined,
  };
}

/** The kinds whose pages the page reader converts: the ones big clusters have many of. */
export type PageKind = 'Service' | 'EndpointSlice';

/**
 * Objects of a converted page the worker sends back in one message. The main thread reads each
 * message back whole, about 2 us an object: an API server may ignore `limit` and send a page of
 * any size up to the body cap (400,000 Services held the main thread 0.5-0.8 s in one message),
 * so a bigger page comes back in batches, the next sent when the main thread asks for it (its
 * turns go between). Pages of `limit` objects (timing.pageSize) come back in one.
 */
export const PAGE_BATCH = 10_000;

export interface ConvertedPage extends ListPosition {
  items: Array<SlimService | SlimEndpointSlice>;
  /** Why objects were left out (ObjectError messages), one per object. */
  skipped: string[];
}

/**
 * A page's text converted, or what is wrong with it as a whole. An object that cannot be read
 * is left out and its reason listed; any other exception is a defect and is thrown.
 */
export function convertPage(kind: PageKind, text: string): ConvertedPage | 'not JSON' | 'not a list' {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return 'not JSON';
  }
  if (!isListAnswer(body)) return 'not a list';
  const slim = kind === 'Service' ? slimService : slimEndpointSlice;
  const items: Array<SlimService | SlimEndpointSlice> = [];
  const skipped: string[] = [];
  for (const it of body.items) {
    if (!isListItem(it)) continue;
    try {
      items.push(slim(it));
    } catch (e) {
      if (!(e instanceof ObjectError)) throw e;
      skipped.push(e.message);
    }
  }
  return { items, skipped, ...listPosition(body) };
}
