/**
 * D1 access for FCM topic messaging (issue 16 item 4): a *group* is a topic's live FCM
 * registrations with identical triggers; one larger than FCM_TOPIC_THRESHOLD has an FCM topic
 * (`fcm_topics`), its members are the registrations whose `fcm_topic` names it, and members that
 * left wait in `fcm_topic_leaving` (written by triggers, migrations/0014) to be removed.
 */
import { encodeBase64url } from "../crypto/base64url";
import type { RecipientRow } from "./registrations";

/** What makes a group: a registration's triggers. */
export type Triggers = Pick<RecipientRow, "content_update_depth" | "property_update_depth" | "property_update_props">;

/** A group's triggers as one key (the `fcm_topics.triggers` column, and a fan-out job's map key). */
export const triggersKey = (t: Triggers): string => JSON.stringify([t.content_update_depth, t.property_update_depth, t.property_update_props]);

/** A new FCM topic name: `pd-` and 22 random base64url characters (128 bits), never derived from tenant or topic. */
export const newFcmTopicName = (): string => `pd-${encodeBase64url(crypto.getRandomValues(new Uint8Array(16)))}`;

/** One group of a topic: its triggers and how many live FCM registrations it has. */
export type GroupCount = Triggers & { members: number };

/** The same triggers, in SQL (NULL matches NULL): parameters ?3, ?4, ?5 after tenant ?1 and topic ?2. */
const SAME_TRIGGERS = "r.content_update_depth IS ?3 AND r.property_update_depth IS ?4 AND r.property_update_props IS ?5";
const triggerValues = (t: Triggers) => [t.content_update_depth, t.property_update_depth, t.property_update_props] as const;

/** Parameters: tenant, topic, now, threshold. The unary `+` keeps SQLite on registrations_by_topic. */
export const LARGE_FCM_GROUPS = `SELECT r.content_update_depth, r.property_update_depth, r.property_update_props, COUNT(*) AS members
  FROM registrations r JOIN subscriptions s ON s.id = r.subscription_id
  WHERE r.tenant_id = ? AND r.topic = ? AND +r.expires_at > ? AND s.transport = 'fcm'
  GROUP BY r.content_update_depth, r.property_update_depth, r.property_update_props HAVING COUNT(*) > ?`;

/** The topic's FCM groups with more than `threshold` live registrations, by registrations_by_topic. */
export async function largeFcmGroups(db: D1Database, tenantId: string, topic: string, now: number, threshold: number): Promise<GroupCount[]> {
  const { results } = await db.prepare(LARGE_FCM_GROUPS).bind(tenantId, topic, now, threshold).all<GroupCount>();
  return results;
}

/** The triggers of the FCM registrations among `ids` (a Push-Dont-Notify list) on this topic. */
export async function triggersOfFcmRegistrations(db: D1Database, tenantId: string, topic: string, ids: string[]): Promise<Triggers[]> {
  if (ids.length === 0) return [];
  const { results } = await db
    .prepare(
      `SELECT r.content_update_depth, r.property_update_depth, r.property_update_props
       FROM registrations r JOIN subscriptions s ON s.id = r.subscription_id
       WHERE r.id IN (SELECT value FROM json_each(?3)) AND r.tenant_id = ?1 AND r.topic = ?2 AND s.transport = 'fcm'`,
    )
    .bind(tenantId, topic, JSON.stringify(ids))
    .all<Triggers>();
  return results;
}

/** The group's FCM topic name: the one it has, else a new one (two fan-outs at once agree on the first written). */
export async function fcmTopicOf(db: D1Database, tenantId: string, topic: string, triggers: Triggers, now: number): Promise<string> {
  const key = triggersKey(triggers);
  const [, found] = await db.batch<{ name: string }>([
    db
      .prepare("INSERT INTO fcm_topics (name, tenant_id, topic, triggers, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant_id, topic, triggers) DO NOTHING")
      .bind(newFcmTopicName(), tenantId, topic, key, now),
    db.prepare("SELECT name FROM fcm_topics WHERE tenant_id = ? AND topic = ? AND triggers = ?").bind(tenantId, topic, key),
  ]);
  return found.results[0].name;
}

/** A token to add to or remove from an FCM topic, sealed as its subscription holds it. */
export interface Member {
  /** The registration; null for one that left (it may be gone). */
  registrationId: string | null;
  subscriptionId: number;
  tenantId: string;
  tokenDigest: string;
  sealedToken: string;
}

type MemberRow = { registration_id: string | null; subscription_id: number; tenant_id: string; token_digest: string; sealed_token: string };
const member = (row: MemberRow): Member => ({
  registrationId: row.registration_id,
  subscriptionId: row.subscription_id,
  tenantId: row.tenant_id,
  tokenDigest: row.token_digest,
  sealedToken: row.sealed_token,
});

/** Parameters: name, limit. By the table's primary key (name, subscription_id). */
export const LEFT_MEMBERS = "SELECT NULL AS registration_id, subscription_id, tenant_id, token_digest, sealed_token FROM fcm_topic_leaving WHERE name = ? LIMIT ?";
/** Parameters: name, now, limit. By registrations_by_fcm_topic. */
export const EXPIRED_MEMBERS = `SELECT r.id AS registration_id, s.id AS subscription_id, s.tenant_id, s.identifier AS token_digest, s.sealed_token
  FROM registrations r JOIN subscriptions s ON s.id = r.subscription_id
  WHERE r.fcm_topic = ? AND r.expires_at <= ? AND s.sealed_token IS NOT NULL LIMIT ?`;

/**
 * Who must be out of the topic before its next message (at most `limit` of each): members that
 * left, and members whose registration expired (still in the table until the cron purges it).
 */
export async function leavingMembers(db: D1Database, name: string, now: number, limit: number): Promise<{ left: Member[]; expired: Member[] }> {
  const [left, expired] = await db.batch<MemberRow>([db.prepare(LEFT_MEMBERS).bind(name, limit), db.prepare(EXPIRED_MEMBERS).bind(name, now, limit)]);
  return { left: left.results.map(member), expired: expired.results.map(member) };
}

/** Records members removed from the topic: their leaving rows deleted, expired registrations no longer members. */
export async function settleLeaving(db: D1Database, name: string, left: number[], expired: string[]): Promise<void> {
  const statements: D1PreparedStatement[] = [];
  if (left.length > 0) {
    statements.push(db.prepare("DELETE FROM fcm_topic_leaving WHERE name = ? AND subscription_id IN (SELECT value FROM json_each(?))").bind(name, JSON.stringify(left)));
  }
  if (expired.length > 0) {
    statements.push(db.prepare("UPDATE registrations SET fcm_topic = NULL WHERE fcm_topic = ? AND id IN (SELECT value FROM json_each(?))").bind(name, JSON.stringify(expired)));
  }
  if (statements.length > 0) await db.batch(statements);
}

/** Parameters: tenant, topic, the three triggers, now, limit. By registrations_by_topic, in id order. */
export const JOINING_MEMBERS = `SELECT r.id AS registration_id, s.id AS subscription_id, s.tenant_id, s.identifier AS token_digest, s.sealed_token
  FROM registrations r JOIN subscriptions s ON s.id = r.subscription_id
  WHERE r.tenant_id = ?1 AND r.topic = ?2 AND ${SAME_TRIGGERS} AND +r.expires_at > ?6 AND r.fcm_topic IS NULL
    AND s.transport = 'fcm' AND s.sealed_token IS NOT NULL
  ORDER BY r.id LIMIT ?7`;

/** The group's live registrations not yet in its topic, at most `limit`, by registrations_by_topic. */
export async function joiningMembers(db: D1Database, tenantId: string, topic: string, triggers: Triggers, now: number, limit: number): Promise<Member[]> {
  const { results } = await db
    .prepare(JOINING_MEMBERS)
    .bind(tenantId, topic, ...triggerValues(triggers), now, limit)
    .all<MemberRow>();
  return results.map(member);
}

/** Records registrations added to the topic (batchAdd answered `{}` for their tokens). */
export async function markJoined(db: D1Database, name: string, registrationIds: string[]): Promise<void> {
  if (registrationIds.length === 0) return;
  await db.prepare("UPDATE registrations SET fcm_topic = ? WHERE fcm_topic IS NULL AND id IN (SELECT value FROM json_each(?))").bind(name, JSON.stringify(registrationIds)).run();
}

/** Topics with members that left, at most `limit` (the hourly cron removes them, so none waits for a next message). */
export async function topicsWithLeaving(db: D1Database, limit: number): Promise<string[]> {
  const { results } = await db.prepare("SELECT DISTINCT name FROM fcm_topic_leaving ORDER BY name LIMIT ?").bind(limit).all<{ name: string }>();
  return results.map((row) => row.name);
}

/** Which of these FCM topic names still exist (a topic goes with its tenant). */
export async function existingFcmTopics(db: D1Database, names: string[]): Promise<Set<string>> {
  if (names.length === 0) return new Set();
  const { results } = await db.prepare("SELECT name FROM fcm_topics WHERE name IN (SELECT value FROM json_each(?))").bind(JSON.stringify(names)).all<{ name: string }>();
  return new Set(results.map((r) => r.name));
}
