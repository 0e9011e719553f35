/**
 * Pacing per origin within one invocation (issue 11): targets interleaved by origin, at most 3
 * requests in flight to one origin and 6 in all (the Workers limit on simultaneous connections),
 * so one slow or hanging push service holds only its own share; once an origin timed out, its
 * targets not yet started are handed back (deferred) instead of queueing behind it.
 */

export const PER_ORIGIN_IN_FLIGHT = 3;
export const TOTAL_IN_FLIGHT = 6;

/** Marks an item not sent because its origin timed out earlier in the invocation. */
export const DEFERRED = Symbol("deferred");
export type Deferred = typeof DEFERRED;

/** Indices of `origins` in round-robin order over origins (first come first), each origin's own order kept. */
export function interleaveByOrigin(origins: readonly string[]): number[] {
  const queues = new Map<string, number[]>();
  origins.forEach((origin, i) => {
    const queue = queues.get(origin) ?? [];
    queue.push(i);
    queues.set(origin, queue);
  });
  const order: number[] = [];
  const lists = [...queues.values()];
  for (let round = 0; order.length < origins.length; round++) {
    for (const list of lists) if (round < list.length) order.push(list[round]);
  }
  return order;
}

/**
 * Runs `work` over `items` paced by origin; results in the items' order. An item whose origin
 * `stopsOrigin` said so of an earlier result, and that had not started, is DEFERRED.
 */
export async function runPaced<T, R>(
  items: readonly T[],
  originOf: (item: T) => string,
  work: (item: T) => Promise<R>,
  stopsOrigin: (result: R) => boolean,
  limits: { perOrigin: number; total: number } = { perOrigin: PER_ORIGIN_IN_FLIGHT, total: TOTAL_IN_FLIGHT },
): Promise<(R | Deferred)[]> {
  const origins = items.map(originOf);
  const waiting = interleaveByOrigin(origins);
  const results = new Array<R | Deferred>(items.length);
  const inFlight = new Map<string, number>();
  const stopped = new Set<string>();
  const running = new Set<Promise<void>>();
  const start = () => {
    for (let k = 0; k < waiting.length && running.size < limits.total; ) {
      const i = waiting[k];
      const origin = origins[i];
      if (stopped.has(origin)) {
        results[i] = DEFERRED;
        waiting.splice(k, 1);
        continue;
      }
      if ((inFlight.get(origin) ?? 0) >= limits.perOrigin) {
        k++;
        continue;
      }
      waiting.splice(k, 1);
      inFlight.set(origin, (inFlight.get(origin) ?? 0) + 1);
      const task: Promise<void> = work(items[i]).then((result) => {
        results[i] = result;
        inFlight.set(origin, inFlight.get(origin)! - 1);
        if (stopsOrigin(result)) stopped.add(origin);
        running.delete(task);
      });
      running.add(task);
    }
  };
  start();
  while (running.size > 0) {
    await Promise.race(running);
    start();
  }
  for (const i of waiting) results[i] = DEFERRED;
  return results;
}

/** The origin a target is sent to: its push resource's, or one name per non-URL service (FCM). */
export function originOf(endpoint: string | null, fallback: string): string {
  if (endpoint === null) return fallback;
  try {
    return new URL(endpoint).origin;
  } catch {
    return fallback;
  }
}
