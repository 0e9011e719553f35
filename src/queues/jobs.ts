/** Queue message bodies and the limits that size them (Cloudflare Queues, Workers). */
import type { SealedTable } from "../store/sealed-columns";
import type { QueuedTarget } from "../transports";
import type { DeliveredTransport, PushMessage } from "../transports/transport";

/**
 * One recipient of a delivery job, in the form of the service its job's `transport` names (each
 * service's module declares it: src/transports/). Its secrets stay sealed on the queue (and in
 * dead letters, which D1 keeps): the deliveries consumer opens them just before sending.
 */
export type DeliveryTarget = QueuedTarget;

/**
 * A job's `transport` field as queued: none for Web Push, as every job once was (jobs in flight or
 * in dead letters from then still read so), the service's name for every other.
 */
export const transportField = (transport: DeliveredTransport | undefined): { transport?: DeliveredTransport } =>
  transport === undefined || transport === "web_push" ? {} : { transport };

export const FANOUT_QUEUE = "push-fanout";
export const DELIVERIES_QUEUE = "push-deliveries";
export const DEAD_LETTER_QUEUE = "push-dead-letters";

/**
 * A chunk of one message's recipients for the `deliveries` consumer. Retries are per target: a
 * retry job holds the one target it retries, with that target's attempt number.
 */
export interface DeliveryJob {
  tenantId: string;
  /** `ttl` is the message's own; each send carries the time left until `deadline`. */
  message: PushMessage;
  /** Absent: Web Push. */
  transport?: DeliveredTransport;
  targets: DeliveryTarget[];
  /** 1 for the first try; counts the target's attempts (a deferral after a timeout is not one). */
  attempt: number;
  /** Unix seconds: the hub's flush time + TTL; retries stop here. Absent on older jobs: now + TTL. */
  deadline?: number;
  /** Unix seconds: not to be sent before (a wait longer than the queue's maximum delay is re-queued). */
  dueAt?: number;
  /** Older jobs only: the VAPID key to sign with when the subscription has none bound. */
  signWith?: string;
}

/** On the fanout queue: tell every Web Push subscription (keyless ones plain) the VAPID key changes, then switch. */
export interface VapidRotationJob {
  kind: "vapid-rotation";
  /** vapid_keys row of the new key */
  keyId: number;
  /** the key the subscriptions were made with, which signs the rotation messages; null: none */
  oldPublicKey: string | null;
  /** keyset cursor over subscriptions.id */
  after: number;
}

/** On the fanout queue: re-seal stored secrets with SECRETS_KEY, one page of one table a job. */
export interface SecretsRotationJob {
  kind: "secrets-rotation";
  table: SealedTable;
  /** keyset cursor within the table ("" = from the start) */
  after: string;
}

/** What lands in the dead-letter queue when a target's next attempt would fall past the message's deadline. */
export interface DeadLetter extends DeliveryJob {
  reasons: Record<number, string>;
  /** Why, for the operator ("503; Retry-After 3600 s is past the TTL (58 s left)"). */
  reason?: string;
}
/** Recipients per delivery job: with 10 jobs a batch, 500 sends stay under 1000 subrequests. */
export const TARGETS_PER_JOB = 50;
/** Workers allow 6 simultaneous outbound connections per invocation. */
export const SEND_CONCURRENCY = 6;
/** Registrations read per D1 query, and pages per fan-out invocation before it continues in a new job. */
export const FANOUT_PAGE_SIZE = 1000;
export const FANOUT_PAGES_PER_JOB = 10;
/** `sendBatch` takes ≤ 100 messages and ≤ 256 KB; one message ≤ 128 KB. */
const BATCH_MESSAGES = 100;
const BATCH_BYTES = 200_000;

/**
 * Cloudflare Queues take one message of at most 128 KB; read as 128,000 bytes, the smaller of the
 * two readings of "KB".
 */
export const MAX_QUEUE_MESSAGE_BYTES = 128 * 1000;
/**
 * Kept free below MAX_QUEUE_MESSAGE_BYTES: a body's JSON is only an estimate of what the queue
 * stores (it serialises the body itself and adds its own framing), so we stay clear of the edge.
 */
const QUEUE_MESSAGE_HEADROOM_BYTES = 4000;

/**
 * Whether `body` can be sent as one queue message: the UTF-8 length of its JSON, plus
 * QUEUE_MESSAGE_HEADROOM_BYTES, is at most MAX_QUEUE_MESSAGE_BYTES. A body JSON cannot represent
 * (a BigInt, a cycle) throws, as sending it would.
 */
export function fitsQueueMessage(body: unknown): boolean {
  const json = JSON.stringify(body) ?? "null";
  return new TextEncoder().encode(json).byteLength + QUEUE_MESSAGE_HEADROOM_BYTES <= MAX_QUEUE_MESSAGE_BYTES;
}

/** Splits queue messages into `sendBatch` calls that respect the count and size limits. */
export function sendBatches<T>(bodies: T[]): T[][] {
  const batches: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const body of bodies) {
    const size = JSON.stringify(body).length + 100;
    if (current.length > 0 && (current.length === BATCH_MESSAGES || bytes + size > BATCH_BYTES)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(body);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}
