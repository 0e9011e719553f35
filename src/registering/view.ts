/** A registration as the JSON API shows it (the 201 answer, GET, lists): one shape everywhere. */
import { depthToJson } from "../depth";
import { imfFixdate } from "../expiry";
import type { RegistrationRow } from "../store/registrations";
import { serviceOf, serviceStoredAs } from "../transports";
import { registrationUrl } from "./url";

/** The subscription's identifier under the name of its kind, as its push service shows it. */
function identifierJson(row: RegistrationRow): Record<string, string> {
  return row.transport === "websocket" ? { connection_id: row.identifier } : serviceOf(row.transport).view(row);
}

/**
 * The subscription's delivery state (issue 11), Unix seconds: the answer to "why no push?".
 * `last_failure` is the latest failure (null before any), kept after a success for the record;
 * `consecutive_failures` and `failing_since` say whether it still fails. WebSocket registrations
 * are not delivered by the queues, so theirs stays empty.
 */
function deliveryJson(row: RegistrationRow) {
  return {
    last_success_at: row.last_success_at,
    last_failure:
      row.last_failure_at === null ? null : { at: row.last_failure_at, status: row.last_failure_status, reason: row.last_failure_reason },
    consecutive_failures: row.consecutive_failures,
    next_attempt_at: row.next_attempt_at,
    failing_since: row.failing_since,
  };
}

export function registrationJson(env: Env, requestUrl: string, row: RegistrationRow) {
  return {
    id: row.id,
    url: registrationUrl(env, requestUrl, row.id),
    topic: row.topic,
    // the push service the client chose: unified_push stays unified_push, though it is Web Push
    transport: row.service,
    ...identifierJson(row),
    // true only with RFC 8291 keys: keyless UnifiedPush, FCM and WebSocket messages are not encrypted by us
    encrypted: row.encrypted === 1,
    // Web Push (unified_push too): the VAPID key that signs it for good; null on rows from before keys were bound
    ...(serviceStoredAs(row.transport)?.vapid === true ? { vapid_public_key: row.vapid_public_key } : {}),
    client_id: row.client_id,
    owner: row.owner,
    trigger: {
      content_update: row.content_update_depth === null ? null : { depth: depthToJson(row.content_update_depth) },
      property_update:
        row.property_update_depth === null
          ? null
          : {
              depth: depthToJson(row.property_update_depth),
              props: row.property_update_props === null ? null : (JSON.parse(row.property_update_props) as string[]),
            },
    },
    expires: imfFixdate(row.expires_at),
    expires_at: row.expires_at,
    created_at: row.created_at,
    updated_at: row.updated_at,
    delivery: deliveryJson(row),
  };
}
