// The remote API client of the Manifests controller against local HTTP servers (loopback only):
// a request the remote never answers is aborted (its socket closed) and said as a timeout, and
// which failures count as "unreachable". TunnelPool keeps one client per tunnel and drops it
// with the idle tunnel.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { kubeClient, readRemote } from "../../lib/remote/client.ts";
import { remoteMessage, unreachable } from "../../lib/remote/outcome.ts";
import { TunnelPool, type Tunnel } from "../../lib/remote/tunnels.ts";

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => (s.closeAllConnections(), s.close(r)));
});

async function api(handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<number> {
  const server = createServer(handle);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return (server.address() as { port: number }).port;
}

const cm = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "x", namespace: "default" } };
const v1 = JSON.stringify({
  kind: "APIResourceList",
  groupVersion: "v1",
  resources: [{ name: "configmaps", kind: "ConfigMap", namespaced: true, verbs: ["get"] }],
});

function json(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { "content-type": "application/json" }).end(body);
}

async function failure(p: Promise<unknown>): Promise<Error & { code?: unknown }> {
  return p.then(
    () => expect.unreachable("should have failed"),
    (err: Error) => err,
  );
}

describe("remote API client", () => {
  it("aborts a request the remote never answers: closed after the timeout, said as such, unreachable", async () => {
    let closed = 0;
    const port = await api((req, res) => {
      if (req.url === "/api/v1") return json(res, 200, v1);
      req.socket.on("close", () => closed++); // never answered
    });
    const started = Date.now();
    const err = await failure(readRemote(kubeClient(port, 300), cm));
    expect(err.message).toBe("read ConfigMap x: remote API did not answer within 0.3 s");
    expect(err.code).toBe("ETIMEDOUT");
    expect(unreachable(err)).toBe(true);
    expect(Date.now() - started).toBeLessThan(5_000);
    await expect.poll(() => closed, { timeout: 5_000 }).toBe(1); // the request itself was cut
  });

  it("a refused connection and a reset are unreachable", async () => {
    const gone = await api(() => {});
    await new Promise((r) => servers.pop()!.close(r));
    expect(unreachable(await failure(readRemote(kubeClient(gone), cm)))).toBe(true);
    const reset = await api((req) => req.socket.destroy());
    expect(unreachable(await failure(readRemote(kubeClient(reset), cm)))).toBe(true);
  });

  it("an HTTP refusal is not unreachable and keeps the remote's message; a missing object reads as undefined", async () => {
    const port = await api((req, res) => {
      if (req.url === "/api/v1") return json(res, 200, v1);
      if (req.url?.endsWith("/configmaps/gone")) return json(res, 404, JSON.stringify({ kind: "Status", code: 404, reason: "NotFound", message: "gone" }));
      json(res, 403, JSON.stringify({ kind: "Status", code: 403, message: "configmaps is forbidden" }));
    });
    const err = await failure(readRemote(kubeClient(port), cm));
    expect(unreachable(err)).toBe(false);
    expect(remoteMessage(err)).toBe("configmaps is forbidden");
    expect(await readRemote(kubeClient(port), { ...cm, metadata: { ...cm.metadata, name: "gone" } })).toBeUndefined();
  });

  it("an answer that does not parse is that object's failure, not a lost remote", async () => {
    const port = await api((req, res) => json(res, 200, req.url === "/api/v1" ? v1 : "{not json"));
    const err = await failure(readRemote(kubeClient(port), cm));
    expect(err.message).not.toMatch(/resource metadata/); // the kind was found: the read's own answer failed
    expect(unreachable(err)).toBe(false);
  });
});

describe("TunnelPool", () => {
  function fakeTunnels() {
    const started: string[] = [];
    const stopped: number[] = [];
    let next = 40_000;
    let fail = false;
    const start = async (token: string, service: string): Promise<Tunnel> => {
      started.push(`${token}/${service}`);
      if (fail) throw new Error("no peers");
      const port = next++;
      return { port, stop: async () => void stopped.push(port) };
    };
    return { started, stopped, start, failNext: (f: boolean) => (fail = f) };
  }

  it("one tunnel and one client per (token, service), built on its port", async () => {
    const t = fakeTunnels();
    const pool = new TunnelPool(t.start, (port, service) => ({ port, service }), 1_000);
    const a = await pool.get("tok", "svc");
    expect(a).toEqual({ port: 40_000, service: "svc" });
    expect(await pool.get("tok", "svc")).toBe(a);
    expect(await pool.get("tok", "other")).toEqual({ port: 40_001, service: "other" });
    expect(await pool.get("tok2", "svc")).toEqual({ port: 40_002, service: "svc" });
    expect(t.started).toEqual(["tok/svc", "tok/other", "tok2/svc"]);
    expect(pool.size).toBe(3);
  });

  it("an idle tunnel is stopped and its client dropped; a used one is kept", async () => {
    const t = fakeTunnels();
    const pool = new TunnelPool(t.start, (port) => ({ port }), 1_000);
    // both were last used at t0 or later (not Date.now() after the awaits: on a loaded host
    // a millisecond passes between them, and 999 ms became 1,000)
    const t0 = Date.now();
    const old = await pool.get("tok", "idle");
    await pool.get("tok", "busy");
    await pool.sweep(t0 + 999);
    expect([pool.size, t.stopped]).toEqual([2, []]);
    await pool.sweep(Date.now() + 1_000);
    expect([pool.size, t.stopped]).toEqual([0, [40_000, 40_001]]);
    const again = await pool.get("tok", "idle");
    expect(again).not.toBe(old);
    expect(again).toEqual({ port: 40_002 });
    expect(pool.size).toBe(1);
  });

  it("a failed start is forgotten: the next call starts again", async () => {
    const t = fakeTunnels();
    const pool = new TunnelPool(t.start, (port) => port, 1_000);
    t.failNext(true);
    await expect(pool.get("tok", "svc")).rejects.toThrow("no peers");
    await expect.poll(() => pool.size).toBe(0);
    await pool.sweep(Date.now() + 5_000); // nothing to stop, nothing thrown
    t.failNext(false);
    expect(await pool.get("tok", "svc")).toBe(40_000);
    expect(t.started).toEqual(["tok/svc", "tok/svc"]);
  });
});
