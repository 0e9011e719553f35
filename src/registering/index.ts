/**
 * Registering, the one home below the routes (STYLE.md): choosing a push service, `subscriptionOf`,
 * the expiry rule, `actorOf`, register and unregister, the registration URL and the test push. The
 * JSON API, the early draft's aliases and push-register all call it; no route needs another.
 */
export { expiresAt } from "./expiry";
export { actorOf, register, unregister, unsubscribe, type RegisterResult, type Registering } from "./register";
export {
  chooseService,
  enabledServices,
  NoUsableService,
  PUSH_SERVICES,
  pushServicesSchema,
  pushServicesToForgetSchema,
  servicePreference,
  type PushServices,
  type PushServicesToForget,
  type ServiceEntry,
} from "./services";
export { entryOfXml, InvalidSubscription, subscriptionOf } from "./subscription";
export { NotTestable, testPush, TestPushRateLimited, type TestPushResult } from "./test-push";
export { isRegistrationId, REGISTRATIONS_PATH, registrationIdsOf, registrationUrl } from "./url";
export { registrationJson } from "./view";
