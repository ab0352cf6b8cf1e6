// lib/yaml.ts at its edges: the column and flow bounds exactly at their limits, what counts as an
// indentation indicator, closing brackets, the messages of parse errors, self-containing values,
// the alias limit passed through, and no warnings printed for user input.
import { afterEach, describe, expect, it, vi } from "vitest";
import { parseYaml, parseYamlDocuments, YamlError } from "../../lib/yaml.ts";

const L = { maxBytes: 100_000 };
const DEEP_BLOCK = "YAML is nested or indented too deeply (more than 256 columns)";
const DEEP_FLOW = "YAML is nested too deeply (more than 128 levels of [ or {)";

function refusal(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(YamlError);
    return (e as Error).message;
  }
  throw new Error("accepted");
}

describe("size", () => {
  it("exactly maxBytes is accepted, one more byte is not", () => {
    expect(parseYaml("a: 1234", { maxBytes: 7 })).toEqual({ a: 1234 });
    expect(refusal(() => parseYaml("a: 12345", { maxBytes: 7 }))).toBe("YAML is too large (8 bytes, at most 7)");
    expect(refusal(() => parseYamlDocuments("a: é", { maxBytes: 4 }))).toBe("YAML is too large (5 bytes, at most 4)");
  });
});

describe("block nesting: the column where a line's content starts", () => {
  it("256 columns are accepted, 257 are not", () => {
    expect(parseYaml(" ".repeat(256) + "x", L)).toBe("x");
    expect(refusal(() => parseYaml(" ".repeat(257) + "x", L))).toBe(DEEP_BLOCK);
    expect(parseYaml("- ".repeat(128) + "x", L)).toBeDefined();
    expect(refusal(() => parseYaml("- ".repeat(129) + "x", L))).toBe(DEEP_BLOCK);
  });
  it('"-", "?" and ":" count only as indicators: followed by a blank or ending the line', () => {
    // "-x" is a scalar, not an indicator: its column is 256
    expect(parseYaml(" ".repeat(256) + "-x", L)).toBe("-x");
    // a "-" ending the line is an indicator: 257
    expect(refusal(() => parseYaml("- ".repeat(128) + "-", L))).toBe(DEEP_BLOCK);
    expect(refusal(() => parseYaml("? ".repeat(129) + "x", L))).toBe(DEEP_BLOCK);
    // words separated by blanks are content from column 3 on, however long the line
    expect(parseYaml("k: " + "a ".repeat(200), L)).toEqual({ k: "a ".repeat(200).trim() });
  });
});

describe("flow nesting: [ and {", () => {
  it("128 levels are accepted, 129 are not, for either bracket", () => {
    expect(parseYaml("[".repeat(128) + "]".repeat(128), L)).toBeDefined();
    expect(refusal(() => parseYaml("[".repeat(129) + "]".repeat(129), L))).toBe(DEEP_FLOW);
    expect(refusal(() => parseYaml("{".repeat(129), L))).toBe(DEEP_FLOW);
    expect(refusal(() => parseYamlDocuments("a: " + "{".repeat(129), L))).toBe(DEEP_FLOW);
  });
  it("closing brackets lower the depth, never below zero", () => {
    expect(parseYaml("[" + "[], ".repeat(200) + "[]]", L)).toHaveLength(201);
    expect(parseYaml("[" + "{}, ".repeat(200) + "{}]", L)).toHaveLength(201);
    expect(Object.keys(parseYaml("{" + Array.from({ length: 200 }, (_, i) => `k${i}: {}`).join(", ") + "}", L) as object)).toHaveLength(200);
    // ten stray closers first do not buy ten more levels
    expect(refusal(() => parseYaml("# " + "]".repeat(10) + "}".repeat(10) + "\n" + "[".repeat(129), L))).toBe(DEEP_FLOW);
  });
});

describe("what is refused, and the words", () => {
  it("a parse error: the parser's first line only", () => {
    expect(refusal(() => parseYaml("a: [", L))).toBe("Flow sequence in block collection must be sufficiently indented and end with a ]");
    expect(refusal(() => parseYaml("a: b: c", L))).toBe("Nested mappings are not allowed in compact mappings");
    expect(refusal(() => parseYamlDocuments("a: 1\n---\nb: [", L))).toBe("Flow sequence in block collection must be sufficiently indented and end with a ]");
  });
  it("a value that contains itself, in one document or several", () => {
    const msg = "YAML has an alias inside its own anchor (a value that contains itself)";
    expect(refusal(() => parseYaml("a: &m {self: *m}", L))).toBe(msg);
    expect(refusal(() => parseYaml("a: &m [1, [2, *m]]", L))).toBe(msg);
    expect(refusal(() => parseYamlDocuments("x: 1\n---\na: &m {self: *m}", L))).toBe(msg);
    // the same value twice (not inside itself) is fine
    expect(parseYaml("x: &x {a: [1]}\ny: *x\nz: [*x, *x]", L)).toEqual({ x: { a: [1] }, y: { a: [1] }, z: [{ a: [1] }, { a: [1] }] });
  });
  it("the alias limit is the caller's, else 100", () => {
    const three = "x: &x [1]\ny: *x\nz: *x\nw: *x\n";
    const aliasMsg = "YAML uses too many aliases (an alias expansion bomb?)";
    expect(refusal(() => parseYaml(three, { ...L, maxAliasCount: 1 }))).toBe(aliasMsg);
    expect(refusal(() => parseYamlDocuments(three, { ...L, maxAliasCount: 1 }))).toBe(aliasMsg);
    expect(parseYaml(three, { ...L, maxAliasCount: 10 })).toMatchObject({ w: [1] });
    expect(parseYaml(three, L)).toMatchObject({ w: [1] });
    expect(parseYamlDocuments(three, L)).toEqual([{ x: [1], y: [1], z: [1], w: [1] }]);
  });
});

describe("user input prints nothing", () => {
  afterEach(() => vi.restoreAllMocks());
  it("unknown tags are kept as plain values without a warning", () => {
    const warn = vi.spyOn(process, "emitWarning").mockImplementation(() => {});
    const cwarn = vi.spyOn(console, "warn").mockImplementation(() => {});
    expect(parseYaml("a: !custom x\nb: !!set {c}", L)).toEqual({ a: "x", b: expect.anything() });
    expect(parseYamlDocuments("a: !custom x", L)).toEqual([{ a: "x" }]);
    expect(warn).not.toHaveBeenCalled();
    expect(cwarn).not.toHaveBeenCalled();
  });
});
