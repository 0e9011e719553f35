/** `{DAV:}depth` as the director keeps it: 0, 1, or 2 for "infinity" (so "covers" is `>=`). */
export type Depth = 0 | 1 | 2;
