/**
 * The seam between registering and the connection-ID flow: opening a connection, who holds it,
 * and attaching or detaching a topic to it (the TopicHub then sends that topic's frames to the
 * connection).
 */
import { socketLimitsOf } from "../limits/socket-slots";
import { deleteConnectionRegistrations } from "../store/connections";
import type { Trigger } from "../store/registrations";
import type { Principal } from "../types";
import { connectionConnectUrl } from "./connection-hub";
import { connectionHub, topicHub } from "./topic-hub";

/** The form of every connection id this director hands out: a random (version 4) UUID. */
const CONNECTION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Whether a connection of this id could exist; any other form is unknown without asking a hub. */
const mayExist = (connectionId: string) => CONNECTION_ID.test(connectionId);

/**
 * Hands an authorised upgrade to the connection's hub: a new connection (`connectionId` null; its
 * id is picked here) or a reconnect to one within its grace. Answers the hub's 101, or its 4xx
 * (404 unknown or grace over, 403 `connection_not_yours`, 401 credential revoked meanwhile, 429
 * `quota_exceeded`: no socket slot left for the user or the tenant).
 */
export async function openConnection(env: Env, principal: Principal, connectionId: string | null, protocol: string | null): Promise<Response> {
  if (connectionId !== null && !mayExist(connectionId)) {
    return Response.json({ error: { code: "not_found", message: "no such connection (unknown, or its reconnect grace is over)" } }, { status: 404 });
  }
  const id = connectionId ?? crypto.randomUUID();
  const hub = connectionHub(env, principal.tenant.id, id);
  const connect = connectionConnectUrl({
    tenantId: principal.tenant.id,
    connectionId: id,
    resume: connectionId !== null,
    owner: principal.kind === "grant" ? principal.sub : null,
    expiresAt: principal.kind === "grant" ? principal.expiresAt : null,
    credential: await principal.credential(),
    protocol,
    socket: crypto.randomUUID(),
    limits: socketLimitsOf(env, principal.tenant),
  });
  return hub.fetch(connect, { headers: { Upgrade: "websocket" } });
}

/** Who opened connection `connectionId` of the tenant (a grant's `sub`, or null for the tenant's token); null when unknown or its grace is over. */
export async function connectionOwner(env: Env, tenantId: string, connectionId: string): Promise<{ owner: string | null } | null> {
  if (!mayExist(connectionId)) return null;
  return connectionHub(env, tenantId, connectionId).owner();
}

/**
 * After the D1 registration is written: the topic's frames go to the connection from the next
 * flush on. The connection notes the topic first, so the first frame finds it; a connection that
 * ended meanwhile gets nothing attached, and its registrations (this one too) leave D1.
 */
export async function attachConnection(
  env: Env,
  tenantId: string,
  topic: string,
  connectionId: string,
  registration: { id: string; trigger: Trigger; expiresAt: number },
): Promise<void> {
  const live = mayExist(connectionId) && (await connectionHub(env, tenantId, connectionId).attach(topic, registration.expiresAt));
  if (!live) {
    await deleteConnectionRegistrations(env.DB, tenantId, connectionId);
    return;
  }
  await topicHub(env, tenantId, topic).attach({
    tenantId,
    connectionId,
    registrationId: registration.id,
    trigger: registration.trigger,
    expiresAt: registration.expiresAt,
  });
}

/** After the D1 registration is deleted: no more frames of the topic for the connection. */
export async function detachConnection(env: Env, tenantId: string, topic: string, connectionId: string): Promise<void> {
  await topicHub(env, tenantId, topic).detach(connectionId);
  if (mayExist(connectionId)) await connectionHub(env, tenantId, connectionId).detach(topic);
}
