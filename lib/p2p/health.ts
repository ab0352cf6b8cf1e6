// GET /healthz (process alive), /readyz (mode-specific readiness), /metrics (Prometheus text).
import { createServer, type Server } from "node:http";
import type { Registry } from "prom-client";
import type { HostPort } from "./addr.ts";

export interface Readiness {
  ready(): Promise<{ ok: boolean; reason: string }>;
}

export async function startHealthServer(at: HostPort, readiness: Readiness, registry: Registry): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const reply = (code: number, body: string, type = "text/plain") => {
      res.writeHead(code, { "content-type": type });
      res.end(body);
    };
    if (req.method !== "GET") return reply(405, "method not allowed\n");
    if (path === "/healthz") return reply(200, "ok\n");
    if (path === "/readyz") {
      readiness.ready().then(
        (r) => reply(r.ok ? 200 : 503, `${r.reason}\n`),
        (err: Error) => reply(503, `${err.message}\n`),
      );
      return;
    }
    if (path === "/metrics") {
      registry.metrics().then(
        (text) => reply(200, text, registry.contentType),
        (err: Error) => reply(500, err.message),
      );
      return;
    }
    reply(404, "not found\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(at.port, at.host, () => resolve());
  });
  return server;
}
