// The frame flood guard (issue 12): a socket may send WS_FRAME_BURST frames (20) at once, then
// WS_FRAMES_PER_SECOND (1); beyond, it is closed 1008 "too many frames". `ping` is free.
import { evictDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { topicHub } from "../../src/hub/topic-hub";
import { tenantLimiter } from "../../src/limits/tenant-limiter";
import { bearer, createTenant, grant, type TestTenant } from "../helpers";
import { Client, upgrade } from "../socket-client";

const BURST = 20;

async function topicSocket(tenant: TestTenant, topic = "f"): Promise<Client> {
  const client = await upgrade(`/v1/ws?topic=${topic}`, bearer(await grant(tenant, { topics: [topic] }, { sub: "flooder" })));
  await client.next(1);
  return client;
}

/** Sends `n` frames back to back. */
const flood = (client: Client, n: number) => {
  for (let i = 0; i < n; i++) client.ws.send(`{"type":"subscribe","n":${i}}`);
};

const errorFrames = (client: Client) => client.frames.filter((f) => f.type === "error").length;

/** Resolves once the tenant holds no socket slot; fails after 2 s (a socket that ends frees its slot within 2 s). */
async function slotsFreed(tenant: TestTenant): Promise<void> {
  const deadline = Date.now() + 2000;
  while ((await tenantLimiter(env, tenant.id).openSockets()) > 0) {
    if (Date.now() > deadline) throw new Error("a slot still taken 2 s on");
    await scheduler.wait(20);
  }
}

describe("frame flood", () => {
  it("answers a burst of WS_FRAME_BURST frames, then closes the socket 1008 within a second and frees its slot", async () => {
    const tenant = await createTenant();
    const client = await topicSocket(tenant);
    const start = Date.now();
    flood(client, BURST + 5);
    expect(await client.closed).toEqual({ code: 1008, reason: "too many frames" });
    expect(Date.now() - start).toBeLessThan(1000);
    expect(errorFrames(client)).toBe(BURST);
    expect(client.frames.find((f) => f.type === "error")).toMatchObject({ code: "unexpected_frame" });
    await slotsFreed(tenant);
  });

  it("never counts ping, which the runtime answers", async () => {
    const tenant = await createTenant();
    const client = await topicSocket(tenant);
    for (let i = 0; i < 3 * BURST; i++) client.ws.send("ping");
    expect((await client.messages(1 + 3 * BURST)).slice(1).every((m) => m === "pong")).toBe(true);
    flood(client, BURST);
    await client.next(1 + BURST);
    client.ws.send("ping");
    expect((await client.messages(2 + 4 * BURST)).at(-1)).toBe("pong");
    flood(client, 1);
    expect(await client.closed).toEqual({ code: 1008, reason: "too many frames" });
  });

  it("keeps the allowance in the socket's attachment: hibernation does not reset it", async () => {
    const tenant = await createTenant();
    const client = await topicSocket(tenant, "hibernating");
    const start = Date.now();
    flood(client, 15);
    await client.next(1 + 15);
    await evictDurableObject(topicHub(env, tenant.id, "hibernating"), { webSockets: "hibernate" });
    flood(client, 10);
    expect(await client.closed).toEqual({ code: 1008, reason: "too many frames" });
    // 5 left of the burst, and what refilled meanwhile (1 a second); a reset allowance would take all 10
    const refilled = Math.floor((Date.now() - start) / 1000);
    expect(errorFrames(client) - 15).toBeGreaterThanOrEqual(5);
    expect(errorFrames(client) - 15).toBeLessThanOrEqual(5 + refilled);
  });

  it("closes a connection's socket 1008 too: its grace begins, and the connection reconnects", async () => {
    const tenant = await createTenant();
    const token = await grant(tenant, {}, { sub: "flooder" });
    const client = await upgrade("/v1/ws", bearer(token));
    const [{ connection_id: id }] = await client.next(1);
    flood(client, BURST + 1);
    expect(await client.closed).toEqual({ code: 1008, reason: "too many frames" });
    expect(errorFrames(client)).toBe(BURST);
    await slotsFreed(tenant);
    const back = await upgrade(`/v1/ws?connection_id=${id}`, bearer(token));
    expect((await back.next(1))[0]).toEqual({ type: "hello", connection_id: id, topics: [] });
    // a new socket, a new allowance
    flood(back, BURST);
    await back.next(1 + BURST);
    expect(errorFrames(back)).toBe(BURST);
  });
});
