// The registration URL, built and parsed in one place: absolute on PUBLIC_BASE_URL or the request's
// origin, and read back from Push-Dont-Notify values, ignoring what is not one of ours.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { isRegistrationId, registrationIdsOf, registrationUrl } from "../../src/registering";

const ID = "3fQ9x2AbCdEfGhIjKlMnOp";

describe("registration URL", () => {
  it("is built on PUBLIC_BASE_URL (path and all) or the request's origin", () => {
    expect(registrationUrl(env, "https://director.test/subscribe?x=1", ID)).toBe(`https://director.test/v1/registrations/${ID}`);
    expect(registrationUrl({ ...env, PUBLIC_BASE_URL: "https://push.example.org/director/" }, "http://internal/v1/register", ID)).toBe(
      `https://push.example.org/director/v1/registrations/${ID}`,
    );
  });

  it("is parsed back to its id; other values are ignored, duplicates once", () => {
    const built = registrationUrl(env, "https://director.test/", ID);
    expect(registrationIdsOf([built, ` ${built} `, `https://push.example.org/director/v1/registrations/${ID}`])).toEqual([ID]);
    expect(registrationIdsOf(["https://elsewhere.example/v1/registrations/short", `${built}/more`, `${built}?x`, "*", ""])).toEqual([]);
  });

  it("ids are 22 base64url characters (128 bits)", () => {
    expect(isRegistrationId(ID)).toBe(true);
    for (const text of ["", `${ID}x`, ID.slice(1), `${ID.slice(1)}=`, `${ID.slice(1)}/`]) expect(isRegistrationId(text), text).toBe(false);
  });
});
