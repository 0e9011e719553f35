// Benchmark worker: prepares Web Push requests (RFC 8291 encryption + RFC 8292 VAPID header) with
// the director's own code inside workerd. POST /prepare?n=N with a JSON array of targets.
import { vapidSigner } from "../src/crypto/vapid";
import { prepareWebPush, type WebPushTarget } from "../src/transports/web-push";

interface BenchEnv {
  VAPID_PUBLIC_KEY: string;
  VAPID_PRIVATE_KEY: string;
}

const message = {
  xml:
    '<?xml version="1.0" encoding="utf-8"?><push-message xmlns="https://bitfire.at/webdav-push" xmlns:D="DAV:">' +
    "<topic>O7M1nQ7cKkKTKsoS_j6Z3w</topic><content-update><D:sync-token>http://example.com/sync/10</D:sync-token></content-update></push-message>",
  ttl: 86_400,
  urgency: "normal" as const,
  topic: "O7M1nQ7cKkKTKsoS_j6Z3wO7M1nQ7cKkKT",
};

export default {
  async fetch(request: Request, env: BenchEnv): Promise<Response> {
    const n = Number(new URL(request.url).searchParams.get("n") ?? "0");
    const targets = (await request.json()) as WebPushTarget[];
    const signer = vapidSigner({ publicKey: env.VAPID_PUBLIC_KEY, privateKey: env.VAPID_PRIVATE_KEY, subject: "mailto:bench@example.org" });
    let bytes = 0;
    for (let i = 0; i < n; i++) {
      const prepared = await prepareWebPush(targets[i % targets.length], message, signer);
      bytes += prepared.body.byteLength + prepared.headers.Authorization.length;
    }
    return Response.json({ n, bytes });
  },
};
