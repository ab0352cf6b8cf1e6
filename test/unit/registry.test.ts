// hack/registry.ts: reference mapping (pure) and real HTTP against a small OCI layout in a temp dir.
import { createHash } from "node:crypto";
import { mkdtempSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { matchRef, parseArgs, parseIndex, parseRoute, splitRef, startRegistry } from "../../hack/registry.ts";

const REFS = ["docker.io/library/busybox:1.28", "quay.io/kairos/kubectl:latest", "ghcr.io/entangle-ts/entangle:0.1.0"];

describe("request paths and references", () => {
  it("parses the three routes and rejects everything else", () => {
    const digest = "sha256:" + "a".repeat(64);
    expect(parseRoute("/v2/")).toEqual({ kind: "base" });
    expect(parseRoute("/v2/library/busybox/manifests/1.28")).toEqual({ kind: "manifest", name: "library/busybox", reference: "1.28" });
    expect(parseRoute(`/v2/a/b/manifests/${digest}`)).toEqual({ kind: "manifest", name: "a/b", reference: digest });
    expect(parseRoute(`/v2/a/blobs/${digest}`)).toEqual({ kind: "blob", name: "a", digest });
    expect(parseRoute("/v2/a/blobs/latest")).toBeNull();
    expect(parseRoute("/v2/a/blobs/sha256:..%2F..%2Fetc")).toBeNull();
    expect(parseRoute("/v2/../etc/manifests/x")).toBeNull();
    expect(parseRoute("/v2/Upper/manifests/x")).toBeNull();
    expect(parseRoute("/v2/a/tags/list")).toBeNull();
    expect(parseRoute("/")).toBeNull();
  });

  it("splits full references", () => {
    expect(splitRef("docker.io/library/busybox:1.28")).toEqual({ host: "docker.io", name: "library/busybox", tag: "1.28" });
    expect(splitRef("localhost:5000/a:b")).toEqual({ host: "localhost:5000", name: "a", tag: "b" });
    expect(splitRef("busybox:1.28")).toBeNull();
    expect(splitRef("docker.io/library/busybox")).toBeNull();
  });

  it("maps (ns, name, tag) back to the full reference", () => {
    expect(matchRef(REFS, "library/busybox", "1.28", "docker.io")).toBe("docker.io/library/busybox:1.28");
    expect(matchRef(REFS, "kairos/kubectl", "latest", "quay.io")).toBe("quay.io/kairos/kubectl:latest");
    expect(matchRef(REFS, "library/busybox", "1.28", "quay.io")).toBeNull();
    expect(matchRef(REFS, "library/busybox", "1.29", "docker.io")).toBeNull();
    // Without ns: by repository path or full name, never ambiguous.
    expect(matchRef(REFS, "library/busybox", "1.28")).toBe("docker.io/library/busybox:1.28");
    expect(matchRef(REFS, "docker.io/library/busybox", "1.28")).toBe("docker.io/library/busybox:1.28");
    expect(matchRef([...REFS, "quay.io/library/busybox:1.28"], "library/busybox", "1.28")).toBeNull();
  });

  it("reads index.json entries and skips malformed ones", () => {
    const good = { mediaType: "m", digest: "sha256:" + "b".repeat(64), size: 3, annotations: { "io.containerd.image.name": REFS[0] } };
    const layout = parseIndex(JSON.stringify({ manifests: [good, { ...good, digest: "md5:x" }, null, { ...good, size: -1 }] }));
    expect([...layout.images.keys()]).toEqual([REFS[0]]);
    expect(layout.manifests.size).toBe(1);
    expect(() => parseIndex("{}")).toThrow(/manifests/);
  });

  it("parses its command line", () => {
    expect(parseArgs(["--listen", "127.0.0.1:5000", "--layout", "/x"])).toEqual({ host: "127.0.0.1", port: 5000, layout: "/x" });
    expect(parseArgs(["--listen", "127.0.0.1"])).toMatch(/--listen/);
    expect(parseArgs(["--listen", "127.0.0.1:1", "--bogus", "1"])).toMatch(/unexpected/);
  });
});

// --- real HTTP ------------------------------------------------------------------------------------

const MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json";
let dir: string;
let server: Server;
let base: string;

function sha(data: string | Buffer): string {
  return "sha256:" + createHash("sha256").update(data).digest("hex");
}
function putBlob(data: string | Buffer): { digest: string; size: number } {
  const digest = sha(data);
  writeFileSync(join(dir, "blobs", "sha256", digest.slice(7)), data);
  return { digest, size: Buffer.byteLength(data) };
}
/** An image with one layer; returns its manifest descriptor as an index entry. */
function addImage(ref: string, layer: Buffer) {
  const l = putBlob(layer);
  const config = putBlob(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [l.digest] } }));
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: MANIFEST_TYPE,
    config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", ...l }],
  });
  return { mediaType: MANIFEST_TYPE, ...putBlob(manifest), annotations: { "io.containerd.image.name": ref }, manifest, layer: l };
}
/** Replaces index.json atomically, as hack/images.sh does. */
function writeIndex(entries: object[]): void {
  writeFileSync(join(dir, "index.json.tmp"), JSON.stringify({ schemaVersion: 2, manifests: entries }));
  renameSync(join(dir, "index.json.tmp"), join(dir, "index.json"));
}

describe("registry over HTTP", () => {
  const layer = Buffer.alloc(3 << 20, 7); // larger than one stream chunk
  let busybox: ReturnType<typeof addImage>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "registry-test-"));
    mkdirSync(join(dir, "blobs", "sha256"), { recursive: true });
    busybox = addImage(REFS[0], layer);
    writeIndex([busybox]);
    server = await startRegistry(dir, "127.0.0.1", 0);
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => {
    server?.close();
    server?.closeAllConnections();
    rmSync(dir, { recursive: true, force: true });
  });

  it("answers /v2/", async () => {
    const res = await fetch(`${base}/v2/`);
    expect(res.status).toBe(200);
  });

  it("serves a manifest by tag (as containerd asks a mirror) and by digest", async () => {
    const res = await fetch(`${base}/v2/library/busybox/manifests/1.28?ns=docker.io`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe(MANIFEST_TYPE);
    expect(res.headers.get("docker-content-digest")).toBe(busybox.digest);
    expect(res.headers.get("content-length")).toBe(String(busybox.size));
    expect(await res.text()).toBe(busybox.manifest);

    const byDigest = await fetch(`${base}/v2/library/busybox/manifests/${busybox.digest}?ns=docker.io`);
    expect(await byDigest.text()).toBe(busybox.manifest);

    const head = await fetch(`${base}/v2/library/busybox/manifests/1.28`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("docker-content-digest")).toBe(busybox.digest);
  });

  it("streams blobs with their digest", async () => {
    const res = await fetch(`${base}/v2/library/busybox/blobs/${busybox.layer.digest}?ns=docker.io`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-length")).toBe(String(layer.length));
    expect(sha(Buffer.from(await res.arrayBuffer()))).toBe(busybox.layer.digest);
    const head = await fetch(`${base}/v2/library/busybox/blobs/${busybox.layer.digest}`, { method: "HEAD" });
    expect(head.headers.get("content-length")).toBe(String(layer.length));
  });

  it("answers unknown images, blobs, paths and writes with OCI errors", async () => {
    const cases: [string, RequestInit, number, string][] = [
      ["/v2/library/busybox/manifests/1.28?ns=ghcr.io", {}, 404, "MANIFEST_UNKNOWN"],
      ["/v2/library/alpine/manifests/3?ns=docker.io", {}, 404, "MANIFEST_UNKNOWN"],
      [`/v2/library/busybox/manifests/sha256:${"0".repeat(64)}`, {}, 404, "MANIFEST_UNKNOWN"],
      [`/v2/library/busybox/blobs/sha256:${"0".repeat(64)}`, {}, 404, "BLOB_UNKNOWN"],
      ["/v2/library/busybox/blobs/sha256:..%2F..%2Findex.json", {}, 404, "NAME_INVALID"],
      ["/v2/_catalog", {}, 404, "NAME_INVALID"],
      ["/v2/library/busybox/manifests/1.28", { method: "PUT", body: "x" }, 405, "UNSUPPORTED"],
    ];
    for (const [path, init, status, code] of cases) {
      const res = await fetch(base + path, init);
      expect([path, res.status]).toEqual([path, status]);
      expect((await res.json()).errors[0].code).toBe(code);
    }
  });

  it("sees images added to index.json while it runs", async () => {
    const kubectl = addImage(REFS[1], Buffer.from("kubectl layer"));
    expect((await fetch(`${base}/v2/kairos/kubectl/manifests/latest?ns=quay.io`)).status).toBe(404);
    writeIndex([busybox, kubectl]);
    const res = await fetch(`${base}/v2/kairos/kubectl/manifests/latest?ns=quay.io`);
    expect(res.status).toBe(200);
    expect(res.headers.get("docker-content-digest")).toBe(kubectl.digest);
  });
});
