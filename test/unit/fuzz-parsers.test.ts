// Property-based tests (fast-check) of every parser that takes user input: network tokens (both
// formats), addresses and ports, Manifests entries and YAML, the sidecar's pod labels and
// annotations. Each property: only the intended error class, never another exception, and
// bounded time. Run counts keep the whole file to about a second; FUZZ_RUNS=N runs more.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { TokenError, deriveKeys, newToken, parseToken } from "../../lib/p2p/token.ts";
import { AddrError, formatHostPort, parseHostPort, parsePort as cliPort, toMultiaddr, toPeerMultiaddr } from "../../lib/p2p/addr.ts";
import { normalizeHost } from "../../lib/render/agent.ts";
import { portNumber as specPort } from "../../lib/hostport.ts";
import { parseYaml, parseYamlDocuments, YamlError } from "../../lib/yaml.ts";
import { parseEntries } from "../../lib/remote/manifests.ts";
import { PREFIX, parseSidecarRequest, renderSidecar } from "../../lib/render/sidecar.ts";
import { serviceNameProblem } from "../../lib/p2p/service-name.ts";

const RUNS = Number(process.env.FUZZ_RUNS ?? 150);
const runs = (scale = 1) => ({ numRuns: Math.max(10, Math.round(RUNS * scale)) });

/** f(x) returns, or throws an instance of `allowed`; anything else fails the property. */
function onlyThrows<T>(allowed: new (...a: never[]) => Error, f: () => T): T | undefined {
  try {
    return f();
  } catch (err) {
    if (!(err instanceof allowed)) throw new Error(`expected ${allowed.name}, got ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
    expect((err as Error).message).not.toContain("\n");
    return undefined;
  }
}

/** Any text, including lone surrogates and control characters. */
const anyText = fc.oneof(fc.string(), fc.string({ unit: "binary" }), fc.string({ unit: "grapheme" }));

// ---- tokens ---------------------------------------------------------------------------------

/** YAML-ish text from fragments that exercise the parser: anchors, aliases, tags, flow, merge keys. */
const yamlish = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        "otp:",
        "  dht:",
        "  crypto:",
        "    key: ",
        "room: ",
        "rendezvous: ",
        "mdns: ",
        "&a ",
        "*a",
        "<<: *a",
        "!!binary ",
        "!!js/function ",
        "!custom ",
        "? ",
        "- ",
        "[",
        "]",
        "{",
        "}",
        ", ",
        ": ",
        "---",
        "...",
        "%YAML 1.1",
        "|",
        ">-",
        '"',
        "'",
        "#",
        "\t",
        "\n",
        "  ",
        "~",
        "null",
        "0x1F",
        "1e400",
      ),
      fc.string({ maxLength: 12 }),
    ),
    { maxLength: 40 },
  )
  .map((parts) => parts.join(""));

const small = fc.anything({ maxDepth: 2, maxKeys: 3, size: "xsmall" });
const edgevpnDoc = fc.record(
  {
    otp: fc.record({ dht: fc.record({ key: small, interval: fc.integer() }), crypto: fc.record({ key: small, length: fc.integer() }) }, { requiredKeys: [] }),
    room: small,
    rendezvous: small,
    mdns: small,
    max_message_size: fc.integer(),
  },
  { requiredKeys: [] },
);

describe("network tokens (fuzzed)", () => {
  it("any text: a token, or TokenError with one line", () => {
    fc.assert(
      fc.property(anyText, (s) => {
        const t = onlyThrows(TokenError, () => parseToken(s));
        if (t !== undefined) expect(t.secret.length).toBeGreaterThan(0);
      }),
      runs(),
    );
  });

  it("entangle1. with any body (random bytes, any JSON): a token with >= 256 bits and string peers, or TokenError", () => {
    const body = fc.oneof(
      fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString("base64url")),
      fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? "").toString("base64url")),
      fc
        .record(
          {
            k: fc.oneof(
              fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString("base64url")),
              fc.jsonValue(),
            ),
            p: fc.jsonValue(),
          },
          { requiredKeys: [] },
        )
        .map((v) => Buffer.from(JSON.stringify(v)).toString("base64url")),
      anyText,
    );
    fc.assert(
      fc.property(body, (b) => {
        const t = onlyThrows(TokenError, () => parseToken("entangle1." + b));
        if (t === undefined) return;
        expect(t.format).toBe("entangle");
        expect(t.secret.length).toBeGreaterThanOrEqual(32);
        expect(t.peers.every((p) => typeof p === "string")).toBe(true);
      }),
      runs(),
    );
  });

  it("any 32-64 byte key and any peers round-trip, whatever whitespace surrounds the token", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 64 }), fc.array(fc.string()), fc.constantFrom("", " ", "\n", "\t "), (key, peers, ws) => {
        const text =
          "entangle1." +
          Buffer.from(
            JSON.stringify(peers.length > 0 ? { k: Buffer.from(key).toString("base64url"), p: peers } : { k: Buffer.from(key).toString("base64url") }),
          ).toString("base64url");
        const t = parseToken(ws + text + ws);
        expect(t.secret).toEqual(Buffer.from(key));
        expect(t.peers).toEqual(peers);
      }),
      runs(0.3),
    );
    expect(parseToken(newToken(["a:1"])).peers).toEqual(["a:1"]);
  });

  it("edgevpn base64 YAML, fragments or documents with any field types: a token or TokenError, in milliseconds", () => {
    const yamlText = fc.oneof(
      yamlish,
      edgevpnDoc.map((d) => JSON.stringify(d)),
      fc.string({ unit: "binary", maxLength: 200 }),
    );
    fc.assert(
      fc.property(yamlText, fc.constantFrom("base64", "base64url"), (text, enc) => {
        const t0 = performance.now();
        const t = onlyThrows(TokenError, () => parseToken(Buffer.from(text).toString(enc as BufferEncoding)));
        expect(performance.now() - t0).toBeLessThan(2_000); // an alias bomb took seconds; this machine may be loaded
        if (t !== undefined) expect(t.format).toBe("edgevpn");
      }),
      runs(),
    );
  });

  it("edgevpn: every secret field is bound: changing one changes the network's fingerprint", () => {
    const key = fc.stringMatching(/^[A-Za-z0-9+/]{1,43}$/);
    fc.assert(
      fc.property(fc.tuple(key, key, key, key, key), fc.nat(4), key, (fields, which, other) => {
        fc.pre(fields[which] !== other);
        const doc = (f: string[]) =>
          Buffer.from(`otp:\n  dht:\n    key: "${f[1]}"\n  crypto:\n    key: "${f[0]}"\nroom: "${f[2]}"\nrendezvous: "${f[3]}"\nmdns: "${f[4]}"\n`).toString(
            "base64",
          );
        const changed = [...fields];
        changed[which] = other;
        const a = onlyThrows(TokenError, () => parseToken(doc(fields)));
        const b = onlyThrows(TokenError, () => parseToken(doc(changed)));
        fc.pre(a !== undefined && b !== undefined);
        expect(deriveKeys(a!).fingerprint).not.toBe(deriveKeys(b!).fingerprint);
      }),
      runs(0.3),
    );
  });
});

// ---- addresses and ports ------------------------------------------------------------------

const hostish = fc.oneof(
  fc.ipV4(),
  fc.ipV6(),
  fc.ipV6().map((h) => `[${h}]`),
  fc.domain(),
  fc.constantFrom("localhost", "", " ", "::", "[::]", "[]", "a..b", "-a", "a-", "0x7f.1", "1.2.3.4.5", "%", "a/b", "a:b"),
  fc.string({ maxLength: 20 }),
);
const portish = fc.oneof(
  fc.integer({ min: -10, max: 70_000 }).map(String),
  fc.constantFrom("0", "00080", "65535", "65536", "99999", "123456", "1e3", "0x50", " 80", "80 ", "+80", "-1", "８０", "٨٠", ""),
  fc.string({ maxLength: 6 }),
);

describe("addresses and ports (fuzzed)", () => {
  it("CLI ports: 1-65535 or AddrError; the renderer's portNumber agrees on every string", () => {
    fc.assert(
      fc.property(fc.oneof(portish, anyText), (s) => {
        const cli = onlyThrows(AddrError, () => cliPort(s));
        const spec = specPort(s);
        expect(spec).toBe(cli);
        if (cli !== undefined) expect(Number.isInteger(cli) && cli >= 1 && cli <= 65535).toBe(true);
      }),
      runs(),
    );
    fc.assert(
      fc.property(fc.anything(), (v) => {
        const p = specPort(v);
        expect(p === undefined || (Number.isInteger(p) && p >= 1 && p <= 65535)).toBe(true);
      }),
      runs(0.3),
    );
  });

  it("HOST:PORT, [v6]:PORT and multiaddrs: a value or AddrError; what parses formats back to itself", () => {
    const addr = fc.oneof(
      fc.tuple(hostish, portish).map(([h, p]) => `${h}:${p}`),
      fc
        .array(
          fc.oneof(
            fc.constantFrom(
              "ip4",
              "ip6",
              "dns",
              "dns4",
              "dnsaddr",
              "tcp",
              "udp",
              "p2p",
              "p2p-circuit",
              "quic-v1",
              "unix",
              "127.0.0.1",
              "::1",
              "0",
              "4001",
              "12D3KooW",
              "QmXyz",
              "",
            ),
            fc.string({ maxLength: 8 }),
          ),
          { maxLength: 8 },
        )
        .map((parts) => "/" + parts.join("/")),
      anyText,
    );
    fc.assert(
      fc.property(addr, fc.boolean(), (s, zero) => {
        const hp = onlyThrows(AddrError, () => parseHostPort(s, "address", zero));
        if (hp !== undefined) {
          expect(hp.port === 0 ? zero : hp.port >= 1 && hp.port <= 65535).toBe(true);
          expect(parseHostPort(formatHostPort(hp), "address", zero)).toEqual(hp);
        }
        onlyThrows(AddrError, () => toMultiaddr(s));
        const peer = onlyThrows(AddrError, () => toPeerMultiaddr(s));
        if (peer !== undefined) expect(peer.getComponents().find((c) => c.name === "tcp")?.value).not.toBe("0");
      }),
      runs(),
    );
  });

  it("a host with a '/' or a space is refused, not spliced into the multiaddr (it was: a stack trace and exit 1)", () => {
    for (const bad of ["a/b:1", "evil/p2p/12D3KooWAbc:4001", "a b:1"]) {
      expect(() => toPeerMultiaddr(bad, "--peer")).toThrow(AddrError);
      expect(() => toMultiaddr(bad, "--peer")).toThrow(/^--peer: .* is not a host name or an IP address$/);
    }
  });

  it("every host the renderers accept, with any valid port, is accepted by the agent's CLI (no crash-looping agent)", () => {
    fc.assert(
      fc.property(hostish, fc.integer({ min: 1, max: 65535 }), (raw, port) => {
        const host = normalizeHost(raw);
        if (host === undefined) return;
        const address = formatHostPort({ host, port });
        expect(parseHostPort(address, "--target")).toEqual({ host, port });
        expect(() => toMultiaddr(address)).not.toThrow();
      }),
      runs(),
    );
  });
});

// ---- YAML and Manifests entries -----------------------------------------------------------

const k8sYamlish = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        "apiVersion: v1\n",
        "kind: ConfigMap\n",
        "kind: List\n",
        "items:\n",
        "- ",
        "metadata:\n",
        "  name: x\n",
        "  namespace: ",
        "metadata: &m\n",
        "  self: *m\n",
        "data: *m\n",
        "&d ",
        "*d",
        "---\n",
        "[",
        "]",
        "{",
        "}",
        ": ",
        "!!binary ",
        "!!set ",
        "? ",
        "<<: *m\n",
        "\t",
        "  ",
        "\n",
        "'",
        '"',
      ),
      fc.string({ maxLength: 10 }),
    ),
    { maxLength: 40 },
  )
  .map((parts) => parts.join(""));

describe("YAML and Manifests entries (fuzzed)", () => {
  it("any text: a value or YamlError with one line, and the value is JSON (no cycles)", () => {
    fc.assert(
      fc.property(fc.oneof(k8sYamlish, anyText), (text) => {
        const one = onlyThrows(YamlError, () => parseYaml(text, { maxBytes: 64 * 1024 }));
        if (one !== undefined) expect(() => JSON.stringify(one)).not.toThrow();
        const all = onlyThrows(YamlError, () => parseYamlDocuments(text, { maxBytes: 64 * 1024 }));
        if (all !== undefined) expect(() => JSON.stringify(all)).not.toThrow();
      }),
      runs(),
    );
  });

  it("Manifests entries never throw: each entry gives objects (apiVersion, kind, metadata.name) or a reason", () => {
    const entry = fc.oneof(
      k8sYamlish,
      anyText,
      fc.jsonValue().map((v) => JSON.stringify(v)),
    );
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 4 }), (entries) => {
        const parsed = parseEntries(entries);
        expect(parsed).toHaveLength(entries.length);
        parsed.forEach((p, i) => {
          expect(p.index).toBe(i);
          expect(p.objects.length + p.errors.length).toBeGreaterThan(0);
          for (const o of p.objects) {
            expect([typeof o.apiVersion, typeof o.kind, typeof o.metadata.name]).toEqual(["string", "string", "string"]);
            expect(o.metadata.namespace === undefined || typeof o.metadata.namespace === "string").toBe(true);
            // what the controller will send to the remote API server
            expect(() => JSON.stringify(o)).not.toThrow();
          }
        });
      }),
      runs(),
    );
  });

  it("an object that contains itself through an alias is a bad entry, not an object that cannot be sent", () => {
    const [self] = parseEntries(["apiVersion: v1\nkind: ConfigMap\nmetadata: &m\n  name: x\n  self: *m\n"]);
    expect(self).toMatchObject({ objects: [], errors: [expect.stringMatching(/^invalid YAML: .*(alias|cycle)/)] });
    expect(() => parseYaml("a: &x [*x]", { maxBytes: 1000 })).toThrow(YamlError);
    // shared (not recursive) aliases stay fine
    expect(parseYaml("x: &x {a: 1}\ny: [*x, *x]\n", { maxBytes: 1000 })).toEqual({ x: { a: 1 }, y: [{ a: 1 }, { a: 1 }] });
  });
});

// ---- pod labels and annotations -----------------------------------------------------------

const settingKey = fc.oneof(
  fc.constantFrom(
    "name",
    "service",
    "target_port",
    "direction",
    "host",
    "nethost",
    "health_port",
    "log_level",
    "injected",
    "not-injected",
    "env.FOO",
    "env.ENTANGLE_NETWORK_TOKEN",
    "env.EDGEVPNTOKEN",
    "env.1BAD",
    "env.",
    "typo",
  ),
  fc.string({ maxLength: 10 }).map((s) => "env." + s),
  fc.string({ maxLength: 10 }),
);
const settingValue = fc.oneof(
  portish,
  hostish,
  fc.constantFrom("entangle", "connect", "true", "false", "TRUE", "debug", "warning", "sec-ret", "my.secret", "Upper", "", " ", "\u0000", "a".repeat(300)),
  anyText,
);
const settingsMap = fc.dictionary(
  fc.oneof(
    settingKey.map((k) => PREFIX + k),
    fc.string({ maxLength: 12 }),
  ),
  settingValue,
  { maxKeys: 10 },
);
const ports = fc.array(fc.record({ containerPort: fc.integer({ min: 1, max: 65535 }) }), { maxLength: 3 });

describe("pod labels and annotations (fuzzed)", () => {
  it("never throw: none, incomplete with a message, or a request the agent's CLI accepts", () => {
    fc.assert(
      fc.property(settingsMap, settingsMap, ports, (labels, annotations, declared) => {
        const pod = { metadata: { labels, annotations }, spec: { containers: [{ name: "app", ports: declared }] } };
        const parsed = parseSidecarRequest(pod);
        const asks = [...Object.keys(labels), ...Object.keys(annotations)].some(
          (k) => k.startsWith(PREFIX) && k !== PREFIX + "injected" && k !== PREFIX + "not-injected",
        );
        expect(parsed.kind === "none").toBe(!asks);
        if (parsed.kind === "incomplete") {
          expect(parsed.message).toMatch(/^entangle sidecar not injected: /);
          expect(parsed.missing.length + parsed.invalid.length).toBeGreaterThan(0);
        }
        if (parsed.kind !== "ok") return;
        const r = parsed.request;
        // what the agent does with these args at start: none of them may make it exit
        expect(serviceNameProblem(r.service)).toBeUndefined();
        const addr = parseHostPort(r.address, r.mode === "expose" ? "--target" : "--listen");
        expect(r.healthPort).not.toBe(addr.port);
        expect(declared.map((p) => p.containerPort)).not.toContain(r.healthPort);
        const c = renderSidecar(r, { image: "entangle:test", peers: [] });
        expect(c.args).toContain(r.address);
        expect(c.env?.filter((e) => e.name === "ENTANGLE_NETWORK_TOKEN" || e.name === "EDGEVPNTOKEN")).toHaveLength(1);
      }),
      runs(),
    );
  });
});
