/** Which registrations a change concerns, and what their push message says (pure functions). */
import type { Change } from "../hub/change";
import type { RecipientRow } from "../store/registrations";

/** What one recipient is told: the triggers it asked for that this change fired. */
export interface Variant {
  content: boolean;
  property: boolean;
}

function propsOverlap(wanted: string | null, changed: string[] | null): boolean {
  if (wanted === null || changed === null) return true; // "any property", or not said which changed
  const names = JSON.parse(wanted) as string[];
  return names.length === 0 || names.some((name) => changed.includes(name));
}

/**
 * The variant of the message a registration gets, or null when the change does not concern it:
 * its (downgraded) depth must cover the change's distance and its trigger type match; the
 * tenant's Push-Dont-Notify list spares it.
 */
/** What deciding reads of a registration: a fan-out row, or a connection's attachment in its TopicHub. */
export type Triggered = Pick<RecipientRow, "id" | "content_update_depth" | "property_update_depth" | "property_update_props">;

export function variantFor(registration: Triggered, change: Change, spared: ReadonlySet<string>): Variant | null {
  if (spared.has(registration.id)) return null;
  const content =
    change.contentUpdate !== null &&
    registration.content_update_depth !== null &&
    registration.content_update_depth >= change.contentUpdate.depth;
  const property =
    change.propertyUpdate !== null &&
    registration.property_update_depth !== null &&
    registration.property_update_depth >= change.propertyUpdate.depth &&
    propsOverlap(registration.property_update_props, change.propertyUpdate.props);
  return content || property ? { content, property } : null;
}
