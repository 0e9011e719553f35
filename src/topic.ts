/** The one topic rule: what text may name a topic, checked the same way by every route and by grants. */
import { MAX_TOPIC_LENGTH } from "./config";

/**
 * A topic is at most this many Unicode code points. Code points, not UTF-16 units: a limit in
 * UTF-16 units would let 256 ASCII characters in but refuse 129 emoji, and users name things in
 * every script. It is the length discovery advertises, so it is that constant.
 */
export const MAX_TOPIC_CODE_POINTS = MAX_TOPIC_LENGTH;

/**
 * Why `value` is not a topic, or null when it is one.
 *
 * A topic is opaque to the director and kept byte-exact: never trimmed, never normalised, so what
 * a tenant notifies is what its users subscribed to. Refused are only what cannot travel or would
 * mislead: lone surrogates (not well-formed UTF-16, so not UTF-8 either, and `TextEncoder` would
 * silently turn them into U+FFFD, making two topics one), C0 controls and DEL (CR/LF split headers
 * and log lines, NUL truncates C strings), and C1 controls (U+0085 is a line break to some parsers,
 * U+009B a terminal's CSI). Everything else (spaces at the ends, emoji, RTL and zero-width marks,
 * U+2028) is a valid topic.
 */
export function topicProblem(value: unknown): string | null {
  if (typeof value !== "string") return "must be a string";
  if (value === "") return "must not be empty";
  let codePoints = 0;
  // Iterating a string walks code points; a lone surrogate comes out as a one-unit string.
  for (const char of value) {
    const code = char.codePointAt(0)!;
    if (code >= 0xd800 && code <= 0xdfff) {
      return `must be well-formed UTF-16: lone surrogate U+${hex(code)} at code point ${codePoints}`;
    }
    if (code <= 0x1f || (code >= 0x7f && code <= 0x9f)) {
      return `must not contain control character U+${hex(code)} (at code point ${codePoints})`;
    }
    codePoints++;
  }
  if (codePoints > MAX_TOPIC_CODE_POINTS) {
    return `must be at most ${MAX_TOPIC_CODE_POINTS} Unicode code points (got ${codePoints})`;
  }
  return null;
}

/** Whether `value` is a topic (see topicProblem for the rule). */
export function isTopic(value: unknown): value is string {
  return topicProblem(value) === null;
}

const hex = (code: number) => code.toString(16).toUpperCase().padStart(4, "0");
