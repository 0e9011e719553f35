// Vitest global setup for the workers project: a VAPID key pair for the run and a stand-in push
// service (in Node) that expects it, and the third-party data read from ../shared. Tests inside
// workerd reach the service over HTTP and the data through bindings (vitest.config.ts).
import { webcrypto } from "node:crypto";
import type { TestProject } from "vitest/node";
import { DavOrigin } from "./dav-origin";
import { FcmService } from "./fcm-service";
import { HmsService } from "./hms-service";
import { PushService } from "./push-service";
import { startRadicale } from "./radicale";
import { interopServers, readFiles, seed002, specXml, stopIfMissing } from "./shared";

declare module "vitest" {
  export interface ProvidedContext {
    pushServiceUrl: string;
    vapidPublicKey: string;
    vapidPrivateKey: string;
    fcmServiceUrl: string;
    fcmTokenUrl: string;
    fcmServiceAccount: string;
    hmsServiceUrl: string;
    hmsTokenUrl: string;
    hmsAppId: string;
    hmsClientSecret: string;
    specSamples: Record<string, string>;
    interopBodies: Record<string, string>;
    seed002: string;
    davOriginUrl: string;
    radicaleUrl: string;
  }
}

export default async function setup(project: TestProject) {
  // first, so that a missing ../shared folder stops the run before anything starts
  stopIfMissing(() => {
    project.provide("specSamples", readFiles(specXml(), /\.xml$/));
    project.provide("interopBodies", readFiles(interopServers(), /\.xml$/));
    project.provide("seed002", seed002());
  });
  const pair = await webcrypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
  const publicKey = Buffer.from(await webcrypto.subtle.exportKey("raw", pair.publicKey)).toString("base64url");
  const { d } = await webcrypto.subtle.exportKey("jwk", pair.privateKey);
  const service = await new PushService({ vapidPublicKey: publicKey }).start();
  const fcm = await new FcmService().start();
  const hms = await new HmsService().start();
  project.provide("hmsServiceUrl", hms.url);
  project.provide("hmsTokenUrl", hms.tokenUrl);
  project.provide("hmsAppId", hms.appId);
  project.provide("hmsClientSecret", hms.clientSecret);
  const davOrigin = await new DavOrigin().start();
  project.provide("davOriginUrl", davOrigin.url);
  const radicale = await startRadicale();
  project.provide("radicaleUrl", radicale.url);
  project.provide("fcmServiceUrl", fcm.url);
  project.provide("fcmTokenUrl", fcm.tokenUrl);
  project.provide("fcmServiceAccount", fcm.serviceAccount());
  project.provide("pushServiceUrl", service.url);
  project.provide("vapidPublicKey", publicKey);
  project.provide("vapidPrivateKey", d!);
  return async () => {
    await Promise.all([service.stop(), fcm.stop(), hms.stop(), davOrigin.stop(), radicale.stop()]);
  };
}
