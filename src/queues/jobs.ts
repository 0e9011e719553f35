/** Queue message bodies and the limits that size them (Cloudflare Queues, Workers). */
import type { PushMessage } from "../transports/transport";
import type { FcmTarget } from "../transports/fcm";
import type { WebPushTarget } from "../transports/web-push";

/** One recipient of a delivery job; which kind the job's `transport` says. */
export type DeliveryTarget = WebPushTarget | FcmTarget;

export const FANOUT_QUEUE = "push-fanout";
export const DELIVERIES_QUEUE = "push-deliveries";
export const DEAD_LETTER_QUEUE = "push-dead-letters";

/** A chunk of one message's recipients for the `deliveries` consumer. */
export interface DeliveryJob {
  tenantId: string;
  message: PushMessage;
  /** Absent: Web Push. */
  transport?: "web_push" | "fcm";
  targets: DeliveryTarget[];
  /** 1 for the first try; a retried chunk holds only the targets that failed. */
  attempt: number;
  /** Sign with this VAPID key (its public half) rather than the current one: key-rotation messages. */
  signWith?: string;
}

/** On the fanout queue: tell every Web Push subscription the VAPID key changes, then switch. */
export interface VapidRotationJob {
  kind: "vapid-rotation";
  /** vapid_keys row of the new key */
  keyId: number;
  /** the key the subscriptions were made with, which signs the rotation messages; null: none */
  oldPublicKey: string | null;
  /** keyset cursor over subscriptions.id */
  after: number;
}

/** What lands in the dead-letter queue when a chunk's retries are used up. */
export interface DeadLetter extends DeliveryJob {
  reasons: Record<number, string>;
}

/** Delivery tries per target before it goes to the dead-letter queue. */
export const MAX_DELIVERY_ATTEMPTS = 5;
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
