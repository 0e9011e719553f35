/** A WebSocket test client inside workerd: every frame it got, and promises for the next ones and the close. */
import { exports } from "cloudflare:workers";
import { ORIGIN } from "./helpers";

export type Frame = Record<string, any>;

export class Client {
  readonly frames: Frame[] = [];
  private waiters: (() => void)[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly raw: string[] = [];

  constructor(readonly ws: WebSocket) {
    ws.accept();
    ws.addEventListener("message", (event) => {
      const data = event.data as string;
      this.raw.push(data);
      if (data.startsWith("{")) this.frames.push(JSON.parse(data));
      for (const waiter of this.waiters.splice(0)) waiter();
    });
    this.closed = new Promise((resolve) => ws.addEventListener("close", (event) => resolve({ code: event.code, reason: event.reason })));
  }

  /** Resolves once `count` messages have arrived. */
  async messages(count: number): Promise<string[]> {
    while (this.raw.length < count) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return this.raw;
  }

  async next(count: number): Promise<Frame[]> {
    while (this.frames.length < count) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return this.frames;
  }

  /** Closes from the client's side and waits for the closing handshake. */
  async close(): Promise<void> {
    this.ws.close(1000, "bye");
    await this.closed;
  }
}

/** A WebSocket handshake to the Worker under test. */
export function open(path: string, headers: Record<string, string> = {}): Promise<Response> {
  return exports.default.fetch(new Request(`${ORIGIN}${path}`, { headers: { Upgrade: "websocket", ...headers } }));
}

/** Opens a socket, or throws with the refusal. */
export async function upgrade(path: string, headers: Record<string, string> = {}): Promise<Client> {
  const response = await open(path, headers);
  if (response.status !== 101) throw new Error(`upgrade answered ${response.status}: ${await response.text()}`);
  return new Client(response.webSocket!);
}
