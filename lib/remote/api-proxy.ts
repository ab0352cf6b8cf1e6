// `entangle agent api-proxy`: a local HTTP proxy to a Kubernetes API server, which the agent
// then exposes on the network like any target. It authenticates with the kubeconfig's (or the
// pod's service account's) credentials, so callers on the network need no credentials of this
// cluster: holding the network token is the credential, as with the seed's `kubectl proxy`.
// Client-supplied Authorization and Impersonate-* headers are dropped; optional impersonation
// narrows what the network may do.
import { Agent as HttpAgent, createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest, type RequestOptions } from "node:https";
import { KubeConfig } from "@kubernetes/client-node";

export interface ApiProxyOptions {
  /** kubeconfig path; default: in-cluster service account */
  kubeconfig?: string;
  impersonateUser?: string;
  impersonateGroups?: string[];
}

export interface ApiProxy {
  server: Server;
  port: number;
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer", "host", "authorization"]);

export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromCluster();
  if (!kc.getCurrentCluster()) throw new Error(path ? `kubeconfig ${path} has no current cluster` : "not running in a cluster and no --kubeconfig given");
  return kc;
}

export async function startApiProxy(opts: ApiProxyOptions): Promise<ApiProxy> {
  const kc = loadKubeConfig(opts.kubeconfig);
  const upstream = new URL(kc.getCurrentCluster()!.server);
  const base: RequestOptions = {};
  await kc.applyToHTTPSOptions(base);
  // one keep-alive agent (TLS settings from the kubeconfig's): the kubeconfig builds a new agent
  // per call, so each request was a new connection and TLS handshake to the API server
  const tls = (base.agent as { options?: object } | undefined)?.options ?? {};
  base.agent =
    upstream.protocol === "https:" ? new HttpsAgent({ ...tls, keepAlive: true, maxSockets: 64 }) : new HttpAgent({ keepAlive: true, maxSockets: 64 });

  const forward = async (req: IncomingMessage, res: ServerResponse) => {
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (v === undefined || HOP_BY_HOP.has(k) || k.startsWith("impersonate-")) continue;
      headers[k] = v;
    }
    if (opts.impersonateUser) headers["impersonate-user"] = opts.impersonateUser;
    if (opts.impersonateGroups?.length) headers["impersonate-group"] = opts.impersonateGroups;
    // token-based auth (service accounts) may rotate: ask the kubeconfig each time
    const auth: RequestOptions = { headers: {} };
    await kc.applyToHTTPSOptions(auth);
    Object.assign(headers, auth.headers ?? {});
    delete auth.agent; // base's keep-alive agent carries the request
    const send = upstream.protocol === "https:" ? httpsRequest : httpRequest;
    const up = send(
      {
        ...base,
        ...auth,
        protocol: upstream.protocol,
        hostname: upstream.hostname,
        port: upstream.port || (upstream.protocol === "https:" ? 443 : 80),
        method: req.method,
        path: joinPath(upstream.pathname, req.url ?? "/"),
        headers,
      },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, filterHeaders(upRes.headers));
        res.flushHeaders(); // watches stream: send headers at once
        upRes.pipe(res);
      },
    );
    up.on("error", (err) => {
      if (!res.headersSent) res.writeHead(502, { "content-type": "application/json" });
      res.end(
        JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", reason: "BadGateway", code: 502, message: `entangle api-proxy: ${err.message}` }),
      );
    });
    res.on("close", () => up.destroy());
    req.pipe(up);
  };

  const server = createServer((req, res) => {
    forward(req, res).catch((err: Error) => {
      res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", code: 500, message: `entangle api-proxy: ${err.message}` }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  const agent = base.agent as HttpAgent;
  return { server, port, close: () => new Promise<void>((r) => (agent.destroy(), server.close(() => r()))) };
}

function joinPath(prefix: string, path: string): string {
  return prefix === "/" || prefix === "" ? path : prefix.replace(/\/$/, "") + path;
}

function filterHeaders(h: IncomingMessage["headers"]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}
