/**
 * FCM topic messaging in the fan-out (issue 16 item 4). A *group* is a topic's live FCM
 * registrations with identical triggers. For a change that concerns a group larger than
 * FCM_TOPIC_THRESHOLD, the job that starts the fan-out: removes from the group's FCM topic the
 * members that left or expired; adds the members not yet in it (batchAdd); and queues **one**
 * FCM message to the topic instead of one per member. Tokens whose add failed get their own
 * message this time; tokens FCM does not know are deleted. A group at or below the threshold
 * stays per token and is never added.
 *
 * Never a topic message when:
 * - the change's Push-Dont-Notify names a member (the draft: the server MUST NOT notify those; a
 *   topic message would reach them), so that change goes per token;
 * - a removal could not be made (an ex-member would hear it), so the group goes per token until
 *   it can.
 */
import { readConfig } from "../config";
import { nowSeconds } from "../expiry";
import { lazyKeyringOf } from "../crypto/sealed";
import type { FanoutJob } from "../hub/topic-hub";
import { errorFields, log } from "../log";
import {
  existingFcmTopics,
  fcmTopicOf,
  joiningMembers,
  largeFcmGroups,
  markJoined,
  topicsWithLeaving,
  triggersKey,
  triggersOfFcmRegistrations,
  type GroupCount,
} from "../store/fcm-topics";
import type { RecipientRow } from "../store/registrations";
import { recordOutcomes } from "../store/subscriptions";
import { serviceAccountOf, type QueuedFcmTopicTarget } from "../transports/fcm";
import { MEMBERSHIP_BATCH, membership, openMembers, removeLeaving } from "../transports/fcm-topics";
import type { PushMessage } from "../transports/transport";
import type { DeliveryJob } from "./jobs";
import { variantFor, type Variant } from "./recipients";

/** Members added per fan-out job at most (each batchAdd is one subrequest of the invocation's 1000). */
export const JOINS_PER_JOB = 10 * MEMBERSHIP_BATCH;

/** What the fan-out does with FCM topics for one change. */
export interface TopicPlan {
  /** Groups sent one topic message: triggers key → FCM topic name (their members get no message of their own). */
  viaTopic: Map<string, string>;
  /** Registrations added in this job (the page rows read before say they are not members yet). */
  joined: Set<string>;
  /** Registrations whose token FCM does not know: deleted, sent nothing. */
  gone: Set<string>;
  /** The topic messages to queue. */
  jobs: DeliveryJob[];
}

const NONE = (): TopicPlan => ({ viaTopic: new Map(), joined: new Set(), gone: new Set(), jobs: [] });

/** A continuation job's plan: the groups its first job sent by topic, nothing more to do. */
export const resumedPlan = (job: FanoutJob): TopicPlan => ({ ...NONE(), viaTopic: new Map(Object.entries(job.fcmTopics ?? {})) });

/** Whether a recipient row is reached by a topic message (or was gone), and gets no message of its own. */
export function reachedByTopic(plan: TopicPlan, row: Pick<RecipientRow, "id" | "transport" | "fcm_topic"> & Parameters<typeof triggersKey>[0]): boolean {
  if (plan.gone.has(row.id)) return true;
  if (row.transport !== "fcm" || plan.viaTopic.size === 0) return false;
  const name = plan.viaTopic.get(triggersKey(row));
  return name !== undefined && (row.fcm_topic === name || plan.joined.has(row.id));
}

/**
 * The groups of a topic larger than `threshold`: counted from the rows when they are all of the
 * topic's (a first page that was not full), else by one D1 query.
 */
async function largeGroups(env: Env, job: FanoutJob, rows: RecipientRow[], complete: boolean, now: number, threshold: number): Promise<GroupCount[]> {
  if (!complete) return largeFcmGroups(env.DB, job.tenantId, job.change.topic, now, threshold);
  const counts = new Map<string, GroupCount>();
  for (const row of rows) {
    if (row.transport !== "fcm") continue;
    const key = triggersKey(row);
    const known = counts.get(key);
    if (known === undefined) counts.set(key, { content_update_depth: row.content_update_depth, property_update_depth: row.property_update_depth, property_update_props: row.property_update_props, members: 1 });
    else known.members++;
  }
  return [...counts.values()].filter((group) => group.members > threshold);
}

/**
 * Decides and prepares a change's FCM topic messages, before anything else of its fan-out is
 * queued: `rows` is the first page of the topic's recipients, `complete` whether it holds them all.
 */
export async function planFcmTopics(
  env: Env,
  job: FanoutJob,
  rows: RecipientRow[],
  complete: boolean,
  now: number,
  deadline: number,
  messageOf: (variant: Variant) => PushMessage,
): Promise<TopicPlan> {
  const plan = NONE();
  const { change, tenantId } = job;
  const threshold = readConfig(env).fcmTopicThreshold;
  if (threshold <= 0 || change.dontNotify === "*") return plan;
  const dontNotify = change.dontNotify;
  const account = serviceAccountOf(env);
  if (account === null) return plan;
  const groups = (await largeGroups(env, job, rows, complete, now, threshold)).flatMap((group) => {
    const variant = variantFor({ id: "", ...group }, change, new Set());
    return variant === null ? [] : [{ group, variant }];
  });
  if (groups.length === 0) return plan;
  // a Push-Dont-Notify list naming a member keeps that group's change per token
  const spared = new Set((await triggersOfFcmRegistrations(env.DB, tenantId, change.topic, dontNotify)).map(triggersKey));
  // the secrets key, derived once and only when a token must be opened
  const keyring = lazyKeyringOf(env);
  for (const { group, variant } of groups) {
    const key = triggersKey(group);
    if (spared.has(key)) continue;
    const name = await fcmTopicOf(env.DB, tenantId, change.topic, group, now);
    if (!(await removeLeaving(env, account, keyring, name, now)).complete) {
      log(env, "warn", "fcm_topic_per_token", { tenant: tenantId, reason: "a member that left is still in the FCM topic" });
      continue;
    }
    const candidates = await joiningMembers(env.DB, tenantId, change.topic, group, now, JOINS_PER_JOB);
    const joining = await openMembers(env, keyring, candidates);
    const results = await membership(env, account, "batchAdd", name, joining.map((j) => j.token));
    const added = joining.filter((_, i) => results[i] === "ok").map((j) => j.member);
    const gone = joining.filter((_, i) => results[i] === "gone").map((j) => j.member);
    await markJoined(env.DB, name, added.map((m) => m.registrationId!));
    if (gone.length > 0) await recordOutcomes(env.DB, { delivered: [], gone: gone.map((m) => m.subscriptionId), failed: [] }, now);
    for (const m of added) plan.joined.add(m.registrationId!);
    for (const m of gone) plan.gone.add(m.registrationId!);
    // members before this job: the group less those that were not yet (a capped read leaves some out)
    const before = candidates.length < JOINS_PER_JOB ? group.members - candidates.length : 0;
    if (before + added.length === 0) continue;
    plan.viaTopic.set(key, name);
    plan.jobs.push({
      tenantId,
      message: messageOf(variant),
      transport: "fcm",
      targets: [{ subscriptionId: 0, tenantId, fcmTopic: name }],
      attempt: 1,
      deadline,
    });
  }
  return plan;
}

/**
 * The hourly cron's share: the topics with members that left (at most `limit` topics), each one's
 * removed as before a topic message; how many members are out.
 */
export async function removePendingLeaving(env: Env, limit: number): Promise<number> {
  const account = serviceAccountOf(env);
  if (account === null) return 0;
  const names = await topicsWithLeaving(env.DB, limit);
  if (names.length === 0) return 0;
  const keyring = lazyKeyringOf(env);
  let removed = 0;
  for (const name of names) {
    try {
      removed += (await removeLeaving(env, account, keyring, name, nowSeconds())).removed;
    } catch (error) {
      log(env, "error", "fcm_topic_leaving_failed", errorFields(error));
    }
  }
  return removed;
}

/**
 * The FCM topic targets among a dead letter's (`listed`: how many there were), those whose topic
 * still exists (`live`): retried as they are, the sender removing the members that left first.
 */
export async function liveTopicTargets(env: Env, targets: unknown[]): Promise<{ listed: number; live: QueuedFcmTopicTarget[] }> {
  const topics = targets.filter((t): t is QueuedFcmTopicTarget => typeof t === "object" && t !== null && typeof (t as { fcmTopic?: unknown }).fcmTopic === "string");
  const existing = await existingFcmTopics(env.DB, topics.map((t) => t.fcmTopic));
  return { listed: topics.length, live: topics.filter((t) => existing.has(t.fcmTopic)) };
}
