/** The one topic rule (src/topic.ts), and the zod schema the routes build from it. */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { isTopic, MAX_TOPIC_CODE_POINTS, topicProblem } from "../src/topic";
import { parseWith, topicSchema } from "../src/validation";
import type { ApiError } from "../src/errors";

const emoji = (n: number) => "😀".repeat(n);

const valid: [string, string][] = [
  ["a plain name", "topic-1"],
  ["one character", "a"],
  ["256 ASCII characters", "a".repeat(256)],
  ["128 emoji (256 UTF-16 units)", emoji(128)],
  ["256 emoji (512 UTF-16 units)", emoji(256)],
  ["spaces at both ends", " d-padded "],
  ["only a space", " "],
  ["LINE SEPARATOR U+2028", "a\u2028b"],
  ["RTL mark and Hebrew", "\u200f\u05d0"],
  ["zero-width joiner", "a\u200db"],
  ["U+00A0 right after the C1 block", "a\u00a0b"],
  ["a surrogate pair", "\ud83d\ude00"],
  ["a URL-ish name", "/calendars/alice/home/?x=1&y=2"],
];

const invalid: [string, unknown, RegExp][] = [
  ["empty", "", /empty/],
  ["257 ASCII characters", "a".repeat(257), /at most 256 Unicode code points \(got 257\)/],
  ["257 emoji", emoji(257), /got 257/],
  ["NUL", "a\u0000b", /control character U\+0000/],
  ["CR LF", "a\r\nb", /control character U\+000D/],
  ["TAB", "a\tb", /U\+0009/],
  ["U+001F", "a\u001fb", /U\+001F/],
  ["DEL", "a\u007fb", /U\+007F/],
  ["C1 U+0080", "a\u0080b", /U\+0080/],
  ["C1 NEXT LINE U+0085", "a\u0085b", /U\+0085/],
  ["C1 CSI U+009B", "a\u009bb", /U\+009B/],
  ["C1 U+009F", "a\u009fb", /U\+009F/],
  ["lone high surrogate", "\ud800x", /lone surrogate U\+D800/],
  ["lone low surrogate", "x\udc00", /lone surrogate U\+DC00/],
  ["high surrogate at the end", "abc\ud83d", /lone surrogate/],
  ["a number", 7, /must be a string/],
  ["null", null, /must be a string/],
  ["an array", ["a"], /must be a string/],
];

describe("topicProblem", () => {
  it.each(valid)("accepts %s", (_, topic) => {
    expect(topicProblem(topic)).toBeNull();
    expect(isTopic(topic)).toBe(true);
  });

  it.each(invalid)("refuses %s", (_, value, reason) => {
    expect(topicProblem(value)).toMatch(reason);
    expect(isTopic(value)).toBe(false);
  });

  it("counts code points, not UTF-16 units", () => {
    expect(MAX_TOPIC_CODE_POINTS).toBe(256);
    expect(topicProblem("a".repeat(255) + "😀")).toBeNull();
    expect(topicProblem("a".repeat(256) + "😀")).toMatch(/got 257/);
  });
});

describe("topicSchema", () => {
  it("keeps a valid topic byte-exact, never trimmed or normalised", () => {
    for (const topic of [" d-padded ", "e\u0301", "\u00e9", "\u200f\u05d0", "a\u2028b", emoji(256)]) {
      expect(parseWith(topicSchema, topic)).toBe(topic);
    }
  });

  it("answers 400 naming the field and the problem", () => {
    const body = z.object({ topic: topicSchema });
    const refusal = (topic: string) => {
      try {
        parseWith(body, { topic });
      } catch (error) {
        return error as ApiError;
      }
      throw new Error(`accepted ${JSON.stringify(topic)}`);
    };
    for (const [topic, reason] of [["", /must not be empty/], ["a\u0085b", /U\+0085/], ["\ud800x", /lone surrogate/], ["a".repeat(257), /at most 256/]] as const) {
      const error = refusal(topic);
      expect(error.status).toBe(400);
      expect(error.code).toBe("invalid_request");
      expect(error.message).toMatch(new RegExp(`^topic: .*${reason.source}`));
    }
  });
});
