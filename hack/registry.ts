// A tiny read-only OCI distribution registry over an OCI image layout (what hack/images.sh
// writes to <IMAGES_DIR>/oci). The local clusters' containerd uses it as the mirror of every
// registry host, so `imagePullPolicy: Always` pulls the locally built images and nothing leaves
// the machine; an image the layout does not hold is a fast 404.
//
//   node_modules/.bin/node hack/registry.ts --listen 127.0.0.1:5000 --layout <IMAGES_DIR>/oci
//
// Prints `REGISTRY=<host>:<port>` on stdout once listening (port 0 picks a free one), one line
// per request on stderr. Serves GET/HEAD of /v2/, /v2/<name>/manifests/<tag|digest> and
// /v2/<name>/blobs/<digest>; every other request gets an OCI error. It never writes anything.
// containerd adds `?ns=<registry host>` when it uses a mirror: `/v2/library/busybox/manifests/1.28
// ?ns=docker.io` is the image `docker.io/library/busybox:1.28`. index.json is re-read when it
// changes (images are rebuilt while clusters run).
import { createReadStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

/** Limits: index.json and manifests are small; anything larger is refused, never buffered. */
const MAX_INDEX_BYTES = 4 << 20;
const MAX_MANIFEST_BYTES = 4 << 20;
const MAX_CONNECTIONS = 64;

// ------------------------------------------------------------------------------------------------
// Pure parts: request paths, reference mapping, index parsing
// ------------------------------------------------------------------------------------------------

/** Repository name and tag grammar of the OCI distribution spec. */
const NAME_RE = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;
/** A registry host as containerd passes it in ?ns= (host, optional port). */
const HOST_RE = /^[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]{1,5})?$/;

export type Route = { kind: "base" } | { kind: "manifest"; name: string; reference: string } | { kind: "blob"; name: string; digest: string };

/** Maps a request path (without query) to what it asks for; null for anything else. */
export function parseRoute(pathname: string): Route | null {
  if (pathname === "/v2/" || pathname === "/v2") return { kind: "base" };
  const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(pathname);
  if (!m) return null;
  const [, name, what, ref] = m;
  if (!NAME_RE.test(name) || name.length > 255) return null;
  if (what === "blobs") return DIGEST_RE.test(ref) ? { kind: "blob", name, digest: ref } : null;
  return TAG_RE.test(ref) || DIGEST_RE.test(ref) ? { kind: "manifest", name, reference: ref } : null;
}

/** Splits a full reference `host/path:tag` into its parts; null when it is not one. */
export function splitRef(ref: string): { host: string; name: string; tag: string } | null {
  const slash = ref.indexOf("/");
  const colon = ref.lastIndexOf(":");
  if (slash <= 0 || colon < slash) return null;
  const host = ref.slice(0, slash);
  const name = ref.slice(slash + 1, colon);
  const tag = ref.slice(colon + 1);
  if (!HOST_RE.test(host) || !NAME_RE.test(name) || !TAG_RE.test(tag)) return null;
  return { host, name, tag };
}

/**
 * Which image of `refs` a request for (ns, name, tag) means. With ns (containerd as a mirror),
 * exactly `ns/name:tag`; without ns, the one image whose repository path is `name` (or whose full
 * name is, e.g. `docker.io/library/busybox`) with that tag. Ambiguous or unknown: null.
 */
export function matchRef(refs: Iterable<string>, name: string, tag: string, ns?: string): string | null {
  const found: string[] = [];
  for (const ref of refs) {
    const parts = splitRef(ref);
    if (!parts || parts.tag !== tag) continue;
    if (ns !== undefined ? parts.host === ns && parts.name === name : parts.name === name || `${parts.host}/${parts.name}` === name) {
      found.push(ref);
    }
  }
  return found.length === 1 ? found[0] : null;
}

export type Descriptor = { mediaType: string; digest: string; size: number };
export type Layout = { images: Map<string, Descriptor>; manifests: Map<string, Descriptor> };

/** The images of an OCI layout's index.json, by io.containerd.image.name; entries without one are skipped. */
export function parseIndex(text: string): Layout {
  const index = JSON.parse(text) as { manifests?: unknown };
  if (!Array.isArray(index.manifests)) throw new Error("index.json has no manifests array");
  const images = new Map<string, Descriptor>();
  const manifests = new Map<string, Descriptor>();
  for (const entry of index.manifests as Record<string, unknown>[]) {
    const { mediaType, digest, size } = entry ?? {};
    const name = (entry?.annotations as Record<string, unknown> | undefined)?.["io.containerd.image.name"];
    if (typeof mediaType !== "string" || typeof digest !== "string" || !DIGEST_RE.test(digest)) continue;
    if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0 || size > MAX_MANIFEST_BYTES) continue;
    const descriptor = { mediaType, digest, size };
    manifests.set(digest, descriptor);
    if (typeof name === "string" && splitRef(name)) images.set(name, descriptor);
  }
  return { images, manifests };
}

/** An OCI distribution error body. */
export function errorBody(code: string, message: string): string {
  return JSON.stringify({ errors: [{ code, message }] });
}

// ------------------------------------------------------------------------------------------------
// I/O: the layout on disk and the HTTP server
// ------------------------------------------------------------------------------------------------

/** Reads index.json again only when its inode, size or mtime changed (it is replaced by rename). */
function layoutReader(dir: string): () => Promise<Layout> {
  let seen = "";
  let cached: Layout = { images: new Map(), manifests: new Map() };
  return async () => {
    const file = join(dir, "index.json");
    const st = await stat(file).catch(() => null);
    if (!st) return (cached = { images: new Map(), manifests: new Map() });
    const version = `${st.ino}:${st.size}:${st.mtimeMs}`;
    if (version === seen) return cached;
    if (st.size > MAX_INDEX_BYTES) throw new Error(`index.json is larger than ${MAX_INDEX_BYTES} bytes`);
    cached = parseIndex(await readFile(file, "utf8"));
    seen = version;
    return cached;
  };
}

function blobPath(dir: string, digest: string): string {
  return join(dir, "blobs", "sha256", digest.slice("sha256:".length)); // digest checked by DIGEST_RE
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  const body = errorBody(code, message);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
  res.end(res.req.method === "HEAD" ? undefined : body);
}

async function handle(dir: string, readLayout: () => Promise<Layout>, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== "GET" && req.method !== "HEAD") {
    return sendError(res, 405, "UNSUPPORTED", "this registry is read-only");
  }
  const url = new URL(req.url ?? "/", "http://registry.invalid");
  const route = parseRoute(url.pathname);
  if (!route) return sendError(res, 404, "NAME_INVALID", `unknown path ${url.pathname}`);
  const head = req.method === "HEAD";
  if (route.kind === "base") {
    res.writeHead(200, { "Content-Type": "application/json", "Content-Length": 2, "Docker-Distribution-API-Version": "registry/2.0" });
    res.end(head ? undefined : "{}");
    return;
  }

  const layout = await readLayout();
  if (route.kind === "manifest") {
    const ns = url.searchParams.get("ns") ?? undefined;
    if (ns !== undefined && !HOST_RE.test(ns)) return sendError(res, 404, "NAME_INVALID", `invalid ns ${ns}`);
    let descriptor: Descriptor | undefined;
    if (DIGEST_RE.test(route.reference)) {
      descriptor = layout.manifests.get(route.reference);
    } else {
      const ref = matchRef(layout.images.keys(), route.name, route.reference, ns);
      descriptor = ref ? layout.images.get(ref) : undefined;
    }
    const what = `${ns ? ns + "/" : ""}${route.name}:${route.reference}`;
    if (!descriptor) return sendError(res, 404, "MANIFEST_UNKNOWN", `${what} is not built locally (hack/images.sh build)`);
    const body = await readFile(blobPath(dir, descriptor.digest)).catch(() => null);
    if (!body || body.length !== descriptor.size) return sendError(res, 404, "MANIFEST_UNKNOWN", `${what}: manifest blob missing`);
    res.writeHead(200, { "Content-Type": descriptor.mediaType, "Content-Length": body.length, "Docker-Content-Digest": descriptor.digest });
    res.end(head ? undefined : body);
    return;
  }

  const file = blobPath(dir, route.digest);
  const st = await stat(file).catch(() => null);
  if (!st?.isFile()) return sendError(res, 404, "BLOB_UNKNOWN", `blob ${route.digest} unknown`);
  res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": st.size, "Docker-Content-Digest": route.digest });
  if (head) return void res.end();
  const stream = createReadStream(file); // streamed with backpressure: never held in memory
  stream.on("error", () => res.destroy());
  stream.pipe(res);
}

/** Starts the registry; resolves once listening. */
export function startRegistry(layoutDir: string, host: string, port: number, log: (line: string) => void = () => {}): Promise<Server> {
  const readLayout = layoutReader(layoutDir);
  const server = createServer({ requestTimeout: 30_000, headersTimeout: 10_000, keepAliveTimeout: 5_000 }, (req, res) => {
    res.on("finish", () => log(`${req.method} ${req.url} ${res.statusCode}`));
    handle(layoutDir, readLayout, req, res).catch((err: Error) => {
      if (!res.headersSent) sendError(res, 500, "UNKNOWN", err.message);
      else res.destroy();
    });
  });
  server.maxConnections = MAX_CONNECTIONS;
  server.maxRequestsPerSocket = 1000;
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}

/** `--listen HOST:PORT --layout DIR` -> its parts, or an error message. */
export function parseArgs(argv: string[]): { host: string; port: number; layout: string } | string {
  const opts = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) {
    if (!["--listen", "--layout"].includes(argv[i]) || argv[i + 1] === undefined) return `unexpected argument ${argv[i]}`;
    opts.set(argv[i], argv[i + 1]);
  }
  const listen = /^(.+):([0-9]{1,5})$/.exec(opts.get("--listen") ?? "");
  const layout = opts.get("--layout");
  if (!listen || Number(listen[2]) > 65535) return "--listen HOST:PORT is required";
  if (!layout) return "--layout DIR is required";
  return { host: listen[1], port: Number(listen[2]), layout };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (typeof args === "string") {
    process.stderr.write(`registry: ${args}\nusage: registry.ts --listen HOST:PORT --layout DIR\n`);
    process.exit(2);
  }
  const st = await stat(join(args.layout, "index.json")).catch(() => null);
  if (!st) process.stderr.write(`registry: warning: ${args.layout}/index.json missing (every pull fails until it exists)\n`);
  const server = await startRegistry(args.layout, args.host, args.port, (line) => process.stderr.write(`registry: ${line}\n`)).catch((err: Error) => {
    process.stderr.write(`registry: cannot listen on ${args.host}:${args.port}: ${err.message}\n`);
    process.exit(1);
  });
  const { port } = server.address() as { port: number };
  process.stdout.write(`REGISTRY=${args.host}:${port}\n`);
  const stop = () => server.close(() => process.exit(0)) && server.closeAllConnections();
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
