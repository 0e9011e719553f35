/**
 * Socket quotas and the frame flood guard (issue 12): what a slot is, which limit a new one would
 * pass, and a hub's side of them (taking and giving back slots, answering the limiter's re-check,
 * spending a socket's frame allowance in its attachment).
 */
import { env } from "cloudflare:workers";
import { errorFields, log } from "../log";
import { spendFrame, type FrameAllowance } from "./bucket";
import { limitMessage, limitsOf, type Limits } from "./limits";
import type { tenantLimiter } from "./tenant-limiter";
import type { TenantRow } from "../store/tenants";

/** The two limits a socket counts against. */
export type SocketLimits = Pick<Limits, "sockets" | "sockets_per_user">;

/** The socket limits in force for a tenant, read by the Worker and handed to the hub with the upgrade. */
export function socketLimitsOf(env: Env, tenant: TenantRow): SocketLimits {
  const limits = limitsOf(env, tenant);
  return { sockets: limits.sockets, sockets_per_user: limits.sockets_per_user };
}

/**
 * The hub that holds a socket: its kind and its Durable Object id. The limiter sits below the hubs
 * (it never imports them), so it reaches a hub by id, not by how the hubs name themselves.
 */
export interface SocketHome {
  kind: "topic" | "connection";
  hub: string;
}

/** One open WebSocket, as the tenant's limiter counts it. */
export interface SocketSlot {
  /** Random per socket (picked by the Worker): releases name it, so they are idempotent. */
  id: string;
  /** The grant's `sub`, or null for the notify token (which counts toward the tenant only). */
  owner: string | null;
  home: SocketHome;
}

export type SlotRefusal = { limit: keyof SocketLimits; max: number };

export type SlotGrant = { ok: true } | ({ ok: false } & SlotRefusal);

/**
 * Which limit one more socket would pass, given the sockets open now (`user`: the owner's, null
 * for the notify token), or null when it fits. The user's limit is named first, as with
 * registrations: it is the one the user can do something about.
 */
export function slotRefusal(open: { tenant: number; user: number | null }, limits: SocketLimits): SlotRefusal | null {
  if (open.user !== null && open.user >= limits.sockets_per_user) return { limit: "sockets_per_user", max: limits.sockets_per_user };
  if (open.tenant >= limits.sockets) return { limit: "sockets", max: limits.sockets };
  return null;
}

/**
 * The answer to an upgrade beyond a socket limit, before any 101: the JSON `app.onError` makes of
 * `quotaExceeded` (hubs answer the Worker with a Response, never an ApiError). `limit` is one of
 * the tenant's limits, or a hub's own cap (`sockets_per_topic`, `notify_token_sockets_per_topic`).
 */
export function quotaRefusal(limit: string, max: number, message: string): Response {
  return Response.json({ error: { code: "quota_exceeded", message, limit, max } }, { status: 429 });
}

export const slotQuotaRefusal = (refusal: SlotRefusal) => quotaRefusal(refusal.limit, refusal.max, limitMessage(refusal.limit, refusal.max));

/** A slot a socket holds in its tenant's limiter. */
export interface HeldSlot {
  id: string;
  tenantId: string;
}

/** What a socket's attachment holds of its slot and frames, in both hubs (absent on sockets opened before issue 12). */
export interface SocketQuota {
  slot?: HeldSlot;
  /** Its frame allowance: in the attachment, so hibernation cannot reset it. */
  frames?: FrameAllowance;
}

const quotaOf = (ws: WebSocket) => (ws.deserializeAttachment() as SocketQuota | null) ?? {};

/**
 * A hub's side of the socket slots. A slot is taken before the socket is accepted, so between
 * the two the socket is `opening`: the limiter's re-check must count it as open, or a handshake
 * in flight would lose its slot to a concurrent one.
 */
export class HubSockets {
  /** Socket id → owner, for the handshakes between taking a slot and accepting (or refusing) the socket. */
  readonly opening = new Map<string, string | null>();

  /** `limiter`: the stub of a tenant's limiter (`tenantLimiter`, passed in: the limiter module imports this one). */
  constructor(
    private readonly ctx: DurableObjectState,
    private readonly kind: SocketHome["kind"],
    private readonly limiter: (tenantId: string) => ReturnType<typeof tenantLimiter>,
  ) {}

  /**
   * Takes a slot for socket `id`, which must be `opening` already (and stays so until the caller
   * accepts or refuses it). `replaces`: the slot of a socket this one takes over (the connection-ID
   * flow's reconnect), given back in the same step when the new one is granted.
   */
  take(tenantId: string, id: string, owner: string | null, limits: SocketLimits, replaces: string | null = null): Promise<SlotGrant> {
    const slot: SocketSlot = { id, owner, home: { kind: this.kind, hub: this.ctx.id.toString() } };
    return this.limiter(tenantId).acquireSocket(slot, limits, replaces);
  }

  /**
   * Gives back the slots of sockets that ended (closed by either side, or failed). Never throws:
   * a slot left behind is found by the limiter's re-check.
   */
  release(sockets: Iterable<WebSocket>): Promise<void> {
    const slots = [...sockets].flatMap((ws) => quotaOf(ws).slot ?? []);
    return this.releaseSlots(slots);
  }

  /** Gives back these slots: one call per tenant. */
  async releaseSlots(slots: HeldSlot[]): Promise<void> {
    const byTenant = Map.groupBy(slots, (slot) => slot.tenantId);
    await Promise.all(
      [...byTenant].map(([tenantId, held]) =>
        this.limiter(tenantId)
          .releaseSockets(held.map((slot) => slot.id))
          .catch((error: unknown) => log(env, "error", "socket_release_failed", { tenant: tenantId, sockets: held.length, ...errorFields(error) })),
      ),
    );
  }

  /** The limiter's re-check: which of these sockets are open here, or being opened. */
  openIds(ids: string[]): string[] {
    const open = new Set(this.opening.keys());
    for (const ws of this.ctx.getWebSockets()) {
      const slot = ws.readyState === WebSocket.OPEN ? quotaOf(ws).slot : undefined;
      if (slot !== undefined) open.add(slot.id);
    }
    return ids.filter((id) => open.has(id));
  }

  /**
   * Spends one of the socket's frames, written back to its attachment; false when its allowance
   * is used up (the caller closes it with CLOSE.tooManyFrames). `ping` never gets here: the runtime
   * answers it without waking the hub.
   */
  spendFrame(ws: WebSocket, burst: number, perSecond: number): boolean {
    const state = quotaOf(ws);
    const spent = spendFrame(state.frames, burst, perSecond, Date.now());
    ws.serializeAttachment({ ...state, frames: spent.allowance });
    return spent.ok;
  }
}
