import { describe, expect, it } from "vitest";
import { parseYaml, parseYamlDocuments, YamlError } from "../../lib/yaml.ts";
import { parseToken } from "../../lib/p2p/token.ts";
import { parseEntries } from "../../lib/remote/manifests.ts";

// npm run mutation runs instrumented code on a shared machine: time bounds scale there
const SLOW = Number(process.env.ENTANGLE_TEST_TIME_SCALE ?? 1);

/** The issue's bomb: &l0 a list of ten strings, &l1 ten *l0, ... room: *l7 (10^8 strings once expanded). */
function aliasBomb(prefix: string, key = "room"): string {
  const lines = [prefix, `l0: &l0 [${Array.from({ length: 10 }, (_, i) => `"s${i}"`).join(", ")}]`];
  for (let i = 1; i <= 7; i++)
    lines.push(
      `l${i}: &l${i} [${Array(10)
        .fill(`*l${i - 1}`)
        .join(", ")}]`,
    );
  lines.push(`${key}: *l7`);
  return lines.join("\n") + "\n";
}

function timed<T>(f: () => T): { ms: number; result?: T; error?: Error } {
  const t0 = performance.now();
  try {
    const result = f();
    return { ms: performance.now() - t0, result };
  } catch (error) {
    return { ms: performance.now() - t0, error: error as Error };
  }
}

describe("bounded YAML", () => {
  it("refuses an alias bomb quickly, with a clear message", () => {
    const r = timed(() => parseYaml(aliasBomb("a: 1"), { maxBytes: 65_536 }));
    expect(r.error).toBeInstanceOf(YamlError);
    expect(r.error!.message).toMatch(/too many aliases/);
    expect(r.ms).toBeLessThan(500 * SLOW);
  });
  it("refuses text over the size bound and reports the parser's first line otherwise", () => {
    expect(() => parseYaml("a: " + "x".repeat(100), { maxBytes: 50 })).toThrow(/too large \(103 bytes, at most 50\)/);
    expect(() => parseYamlDocuments("kind: [unclosed", { maxBytes: 1000 })).toThrow(YamlError);
  });
  it("refuses deep nesting before the parser recurses (5,000 levels of '- ' aborted the process)", () => {
    expect(() => parseYaml("- ".repeat(5_000) + "x", { maxBytes: 1_000_000 })).toThrow(/nested or indented too deeply/);
    expect(() => parseYaml("[".repeat(5_000) + "]".repeat(5_000), { maxBytes: 1_000_000 })).toThrow(/nested too deeply/);
    const block = Array.from({ length: 5_000 }, (_, i) => " ".repeat(i) + `k${i}:`).join("\n");
    expect(() => parseYaml(block, { maxBytes: 100_000_000 })).toThrow(/nested or indented too deeply/);
    expect(parseYaml("- ".repeat(50) + "x", { maxBytes: 1000 })).toBeDefined();
  });
  it("keeps ordinary documents as before: multi-document, dates as strings, a few aliases allowed", () => {
    expect(parseYamlDocuments("a: 1\n---\nb: 2001-12-14\n---\n", { maxBytes: 1000 })).toEqual([{ a: 1 }, { b: "2001-12-14" }, null]);
    expect(parseYamlDocuments("x: &x {a: 1}\ny: *x\n", { maxBytes: 1000 })).toEqual([{ x: { a: 1 }, y: { a: 1 } }]);
  });
});

describe("alias bombs where users hand us YAML", () => {
  it("an edgevpn token with the bomb is refused in milliseconds", () => {
    const token = Buffer.from(aliasBomb("otp: {dht: {key: a}, crypto: {key: b}}")).toString("base64");
    const r = timed(() => parseToken(token));
    expect(r.error?.message).toMatch(/network token is malformed: .*too many aliases/);
    expect(r.ms).toBeLessThan(500 * SLOW);
  });
  it("a Manifests entry with the bomb fails alone as a bad entry", () => {
    const bomb = aliasBomb("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: boom}", "data");
    const r = timed(() => parseEntries([bomb, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fine}\n"]));
    expect(r.ms).toBeLessThan(500 * SLOW);
    expect(r.result![0]).toMatchObject({ index: 0, objects: [], errors: [expect.stringMatching(/^invalid YAML: .*too many aliases/)] });
    expect(r.result![1]).toMatchObject({ index: 1, objects: [{ metadata: { name: "fine" } }], errors: [] });
  });
});
