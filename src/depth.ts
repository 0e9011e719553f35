/** `{DAV:}depth` as the director keeps it: 0, 1, or 2 for "infinity" (so "covers" is `>=`). */
export type Depth = 0 | 1 | 2;

/** The depth as clients write it: 0, 1 or "infinity". */
export const depthToJson = (depth: Depth): 0 | 1 | "infinity" => (depth === 2 ? "infinity" : depth);
