// The expiry rule, one for JSON and XML: absent or already past is no wish (the maximum), later
// than the maximum is clamped, unreadable is a 400.
import { describe, expect, it } from "vitest";
import { ApiError } from "../../src/errors";
import { expiresAt } from "../../src/registering";

const NOW = 1_800_000_000;
const MAX = 7 * 86_400;

describe("expiresAt", () => {
  it("grants what was asked within the maximum; nothing or a past time means the maximum", () => {
    expect(expiresAt(null, NOW, MAX)).toBe(NOW + MAX);
    expect(expiresAt(NOW + 3600, NOW, MAX)).toBe(NOW + 3600);
    expect(expiresAt(NOW + 3600.9, NOW, MAX)).toBe(NOW + 3600);
    expect(expiresAt(NOW + 90 * 86_400, NOW, MAX)).toBe(NOW + MAX);
    for (const past of [NOW, NOW - 1, 1698165940, 0, -5, "Wed, 20 Dec 2023 10:03:31 GMT"]) expect(expiresAt(past, NOW, MAX), String(past)).toBe(NOW + MAX);
    expect(expiresAt(new Date((NOW + 86_400) * 1000).toUTCString(), NOW, MAX)).toBe(NOW + 86_400);
  });

  it("refuses what it cannot read with 400 invalid_request", () => {
    for (const wish of ["next tuesday", "", Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => expiresAt(wish, NOW, MAX)).toThrow(ApiError);
      try {
        expiresAt(wish, NOW, MAX);
      } catch (error) {
        expect((error as ApiError).status).toBe(400);
        expect((error as ApiError).code).toBe("invalid_request");
      }
    }
  });
});
