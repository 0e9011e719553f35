/** Fitting requested triggers to what the tenant supports (draft: Content/Property Updates). */
import type { Depth, Trigger } from "./store/registrations";
import type { SupportedTriggers } from "./xml/properties";

export interface Requested {
  contentUpdate: { depth: Depth | null } | null;
  propertyUpdate: { depth: Depth | null; props: string[] | null } | null;
}

/**
 * An unsupported trigger is ignored; a deeper one than supported falls back to the supported
 * depth (the draft's Example 2: infinity → 1). An unreadable depth is ignored like an unsupported
 * trigger. Returns null when nothing is left: the draft's 403 no-supported-trigger.
 */
export function downgradeTriggers(requested: Requested, supported: SupportedTriggers): Trigger | null {
  const fit = (depth: Depth | null | undefined, max: Depth | null): Depth | null =>
    depth === null || depth === undefined || max === null ? null : depth > max ? max : depth;
  const contentUpdate = requested.contentUpdate === null ? null : fit(requested.contentUpdate.depth, supported.contentUpdate);
  const propertyUpdate = requested.propertyUpdate === null ? null : fit(requested.propertyUpdate.depth, supported.propertyUpdate);
  if (contentUpdate === null && propertyUpdate === null) return null;
  const props = propertyUpdate === null ? null : requested.propertyUpdate!.props;
  return { contentUpdate, propertyUpdate, props: props === null || props.length === 0 ? null : props };
}
