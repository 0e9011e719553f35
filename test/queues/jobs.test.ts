// Queue message contracts: which bodies fit one Cloudflare Queues message, and how bodies are
// split into sendBatch calls.
import { describe, expect, it } from "vitest";
import { fitsQueueMessage, MAX_QUEUE_MESSAGE_BYTES, sendBatches } from "../../src/queues/jobs";

describe("fitsQueueMessage", () => {
  it("is conservative below 128,000 bytes of JSON", () => {
    expect(MAX_QUEUE_MESSAGE_BYTES).toBe(128_000);
    expect(fitsQueueMessage({ topic: "t", props: ["{DAV:}displayname"] })).toBe(true);
    expect(fitsQueueMessage("x".repeat(100_000))).toBe(true);
    // JSON adds the two quotes; the limit itself leaves no room for the queue's framing
    expect(fitsQueueMessage("x".repeat(MAX_QUEUE_MESSAGE_BYTES - 2))).toBe(false);
    expect(fitsQueueMessage("x".repeat(MAX_QUEUE_MESSAGE_BYTES))).toBe(false);
  });

  it("counts UTF-8 bytes, not characters", () => {
    // 50,000 characters of 3 bytes each: 150,000 bytes
    expect(fitsQueueMessage("€".repeat(50_000))).toBe(false);
    expect(fitsQueueMessage("x".repeat(50_000))).toBe(true);
  });

  it("refuses the 226 KB of property names that once wedged a topic", () => {
    const props = Array.from({ length: 4000 }, (_, i) => `{urn:example:props}property-number-${i}-${"x".repeat(20)}`);
    expect(new TextEncoder().encode(JSON.stringify(props)).byteLength).toBeGreaterThan(226_000);
    expect(fitsQueueMessage({ tenantId: "t", change: { topic: "t", propertyUpdate: { props, depth: 0 } } })).toBe(false);
  });
});

describe("sendBatches", () => {
  it("keeps each batch within 100 messages", () => {
    const batches = sendBatches(Array.from({ length: 250 }, (_, i) => ({ i })));
    expect(batches.map((b) => b.length)).toEqual([100, 100, 50]);
  });
});
