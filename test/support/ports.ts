// A free TCP port on loopback for a server a test starts (the director, Radicale). The port is let
// go before the server binds it, so a caller retries when another process took it meanwhile.
import { createServer } from "node:net";

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
