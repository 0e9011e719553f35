// What the local stand-ins (push service, OAuth + FCM) share: an HTTP server on a free loopback
// port, and waiting for a condition that is re-checked after every request they answer.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export abstract class StandIn {
  private server: Server | null = null;
  private readonly waiters = new Set<() => void>();
  readonly errors: string[] = [];
  url = "";

  protected abstract handle(req: IncomingMessage, body: Buffer, res: ServerResponse): Promise<void>;

  async start(): Promise<this> {
    this.server = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      try {
        await this.handle(req, Buffer.concat(chunks), res);
      } catch (error) {
        this.errors.push(`handler: ${(error as Error).message}`);
        if (!res.headersSent) res.writeHead(500).end();
      } finally {
        for (const waiter of [...this.waiters]) waiter();
      }
    });
    this.server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** Resolves as soon as `done()` holds, re-checked after every request this stand-in answers. */
  waitUntil(done: () => boolean, timeoutMs = 30_000): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`${this.constructor.name}: condition not met within ${timeoutMs} ms (errors: ${this.errors.join("; ")})`));
      }, timeoutMs);
      const check = () => {
        if (!done()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      this.waiters.add(check);
    });
  }
}
