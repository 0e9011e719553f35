// The choice among the push services a body names (pure, given the env): preference order,
// usability (FCM configured, REQUIRE_ENCRYPTION for keyless UnifiedPush), and the refusals.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { chooseService, enabledServices, NoUsableService, pushServicesSchema, pushServicesToForgetSchema, servicePreference, type PushServices } from "../../src/registering";

const keys = { p256dh: "BKey", auth: "auth" };
const all: PushServices = {
  web_push: { endpoint: "https://push.example.net/1", keys },
  unified_push: { endpoint: "https://up.example.net/1" },
  fcm: { registration_token: "token" },
  websocket: { connection_id: "8b7c2f0e" },
};
const over = (vars: Partial<Env>): Env => ({ ...env, ...vars });
const chosen = (vars: Partial<Env>, services: PushServices) => chooseService(over(vars), services).service;

describe("servicePreference", () => {
  it("puts PUSH_SERVICE_PREFERENCE's names first, the rest after in the default order, unknown names nowhere", () => {
    // hms, added after the default PUSH_SERVICE_PREFERENCE was set, ranks last unless named
    expect(servicePreference(over({}))).toEqual(["web_push", "unified_push", "fcm", "websocket", "hms"]);
    expect(servicePreference(over({ PUSH_SERVICE_PREFERENCE: " websocket , fcm,apns,fcm" }))).toEqual(["websocket", "fcm", "web_push", "unified_push", "hms"]);
    expect(servicePreference(over({ PUSH_SERVICE_PREFERENCE: "hms,fcm" }))).toEqual(["hms", "fcm", "web_push", "unified_push", "websocket"]);
    expect(enabledServices(over({ PUSH_SERVICE_PREFERENCE: "fcm,websocket", FCM_SERVICE_ACCOUNT: "" }))).toEqual(["websocket", "web_push", "unified_push"]);
  });
});

describe("chooseService", () => {
  it("takes the first usable named service in order of preference", () => {
    expect(chosen({}, all)).toBe("web_push");
    expect(chosen({ PUSH_SERVICE_PREFERENCE: "websocket" }, all)).toBe("websocket");
    expect(chosen({ PUSH_SERVICE_PREFERENCE: "fcm" }, { web_push: all.web_push, fcm: all.fcm })).toBe("fcm");
    expect(chosen({ PUSH_SERVICE_PREFERENCE: "fcm", FCM_SERVICE_ACCOUNT: "" }, { web_push: all.web_push, fcm: all.fcm })).toBe("web_push");
    expect(chosen({ PUSH_SERVICE_PREFERENCE: "unified_push", REQUIRE_ENCRYPTION: "true" }, all)).toBe("web_push");
    expect(chosen({ REQUIRE_ENCRYPTION: "true" }, { unified_push: { ...all.unified_push!, keys } })).toBe("unified_push");
  });

  it("hands on the chosen entry as it was named", () => {
    expect(chooseService(over({}), { unified_push: all.unified_push })).toEqual({
      service: "unified_push",
      endpoint: "https://up.example.net/1",
      keys: null,
      contentEncoding: null,
    });
    // no platform named: an Android app's token
    expect(chooseService(over({}), { fcm: all.fcm })).toEqual({ service: "fcm", registrationToken: "token", platform: "android" });
    expect(chooseService(over({}), { fcm: { registration_token: "token", platform: "ios" } })).toEqual({ service: "fcm", registrationToken: "token", platform: "ios" });
    expect(chooseService(over({}), { websocket: all.websocket })).toEqual({ service: "websocket", connectionId: "8b7c2f0e" });
  });

  it("refuses when none named is usable: encryption_required for keyless alone, else transport_unavailable", () => {
    const refusal = (vars: Partial<Env>, services: PushServices) => {
      try {
        chooseService(over(vars), services);
      } catch (error) {
        if (error instanceof NoUsableService) return [error.code, error.message];
        throw error;
      }
      return null;
    };
    expect(refusal({ REQUIRE_ENCRYPTION: "true" }, { unified_push: all.unified_push })?.[0]).toBe("encryption_required");
    expect(refusal({ FCM_SERVICE_ACCOUNT: "" }, { fcm: all.fcm })).toEqual([
      "transport_unavailable",
      "none of the push services named (fcm) is usable on this director; usable: web_push, unified_push, websocket",
    ]);
    expect(refusal({ FCM_SERVICE_ACCOUNT: "", REQUIRE_ENCRYPTION: "true" }, { fcm: all.fcm, unified_push: all.unified_push })?.[0]).toBe("transport_unavailable");
  });

  it("never registers apns or apn: ignored beside a usable service, else refused with the way an iOS app registers", () => {
    const refusal = (vars: Partial<Env>, services: PushServices) => {
      try {
        chooseService(over(vars), services);
      } catch (error) {
        if (error instanceof NoUsableService) return [error.code, error.message];
        throw error;
      }
      return null;
    };
    expect(chosen({}, { apns: { device_token: "a1" }, fcm: all.fcm })).toBe("fcm");
    expect(chosen({}, { apn: "a1", websocket: all.websocket })).toBe("websocket");
    const how = 'an iOS app registers its FCM token as "fcm": {"registration_token": "…", "platform": "ios"}';
    expect(refusal({}, { apns: { device_token: "a1" } })).toEqual([
      "transport_unavailable",
      `apns is not registered here: APNs needs HTTP/2, which a Worker's outbound fetch does not speak; ${how}; usable: web_push, unified_push, fcm, websocket`,
    ]);
    expect(refusal({}, { apn: "a1" })?.[1]).toMatch(/^apn is not registered here: /);
    // beside keyless UnifiedPush while encryption is required, the apns answer still comes first
    expect(refusal({ REQUIRE_ENCRYPTION: "true" }, { apns: {}, unified_push: all.unified_push })).toEqual([
      "transport_unavailable",
      `apns is not registered here: APNs needs HTTP/2, which a Worker's outbound fetch does not speak; ${how}; ` +
        "none of the push services named (unified_push) is usable on this director; usable: web_push, unified_push (with keys), fcm, websocket",
    ]);
  });
});

describe("pushServicesSchema", () => {
  it("checks every entry named, and wants one at least", () => {
    expect(pushServicesSchema.safeParse(all).success).toBe(true);
    expect(pushServicesSchema.safeParse({}).success).toBe(false);
    expect(pushServicesSchema.safeParse({ web_push: { endpoint: "https://x/1" } }).success).toBe(false);
    expect(pushServicesSchema.safeParse({ ...all, fcm: { registration_token: "" } }).success).toBe(false);
    // any text names a connection: one we do not know is a 404 later, not a 400 here
    expect(pushServicesSchema.safeParse({ websocket: { connection_id: "" } }).success).toBe(true);
  });

  it("takes an FCM platform of android or ios only, and keeps apns and apn (whatever they hold) for the refusal", () => {
    for (const platform of ["android", "ios"]) expect(pushServicesSchema.safeParse({ fcm: { registration_token: "t", platform } }).success).toBe(true);
    for (const platform of ["iOS", "", "apns", null, 1, ["ios"]]) {
      const result = pushServicesSchema.safeParse({ fcm: { registration_token: "t", platform } });
      expect(result.error?.issues.map((issue) => [issue.path.join("."), issue.message])).toEqual([["fcm.platform", 'must be "android" or "ios"']]);
    }
    expect(pushServicesToForgetSchema.safeParse({ fcm: { registration_token: "t", platform: "ios" } }).success).toBe(true);
    expect(pushServicesSchema.parse({ apns: { device_token: "a1" } })).toEqual({ apns: { device_token: "a1" } });
    expect(pushServicesSchema.parse({ apn: null })).toEqual({ apn: null });
    // other names are still dropped, and a body of nothing else names no service
    expect(pushServicesSchema.safeParse({ carrier_pigeon: {} }).success).toBe(false);
  });
});
