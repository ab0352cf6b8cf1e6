// lib/remote/fallback.ts and lib/render/service-ref.ts edges the mutation run found untested:
// scalars and lists in covers/mergeInto, forbidden() on nothing, Services without a spec or with
// port entries lacking a number.
import { describe, expect, it } from "vitest";
import { covers, forbidden, mergeInto } from "../../lib/remote/fallback.ts";

describe("mergeInto: only arrays merge with arrays, only mappings with mappings", () => {
  it("a string or a mapping with numeric keys under a declared value is replaced, not merged", () => {
    expect(mergeInto("x", { a: 1 })).toEqual({ a: 1 });
    expect(mergeInto({ 0: { x: 1 }, length: 1 }, [{ a: 1 }])).toEqual([{ a: 1 }]);
    expect(mergeInto(null, { a: 1 })).toEqual({ a: 1 });
  });
});
import { resolveServiceRef } from "../../lib/render/service-ref.ts";

describe("covers", () => {
  it("a null field is one we do not care about; a string is no mapping even where its properties match", () => {
    expect(covers({}, { a: null })).toBe(true);
    expect(covers({ a: 1 }, { a: null, b: 2 })).toBe(false);
    expect(covers("abc", { length: 3 })).toBe(false);
    expect(covers(null, { a: 1 })).toBe(false);
  });

  it("mappings: each wanted key, recursively; extra live keys are fine", () => {
    expect(covers({ a: 1, b: 2 }, { a: 1 })).toBe(true);
    expect(covers({ a: "x" }, { a: "y" })).toBe(false);
    expect(covers({ a: { b: 1, c: 2 } }, { a: { b: 1 } })).toBe(true);
    expect(covers("ab", { 0: "a" })).toBe(false);
  });
  it("lists: same length, every element", () => {
    expect(covers([1, 2], [1, 2])).toBe(true);
    expect(covers([1, 2], [1, 3])).toBe(false);
    expect(covers([1, 2], [1])).toBe(false);
    expect(covers("ab", ["a", "b"])).toBe(false);
  });
});

describe("mergeInto", () => {
  it("a mapping laid over a non-mapping replaces it", () => {
    expect(mergeInto("x", { a: 1 })).toEqual({ a: 1 });
    expect(mergeInto([1], { a: 1 })).toEqual({ a: 1 });
  });
  it("lists merge element by element only when both are lists of the same length", () => {
    expect(mergeInto([{ b: 1 }], [{ a: 1 }])).toEqual([{ b: 1, a: 1 }]);
    expect(mergeInto([{ b: 1 }, { c: 1 }], [{ a: 1 }])).toEqual([{ a: 1 }]);
    expect(mergeInto({ 0: { b: 2 } }, [{ a: 1 }])).toEqual([{ a: 1 }]);
  });
});

describe("forbidden", () => {
  it("403 as code or status; nothing is not forbidden", () => {
    expect(forbidden({ code: 403 })).toBe(true);
    expect(forbidden({ status: 403 })).toBe(true);
    expect(forbidden({ code: 404, status: 500 })).toBe(false);
    expect(forbidden(undefined)).toBe(false);
    expect(forbidden(null)).toBe(false);
  });
});

describe("resolveServiceRef edges", () => {
  const ref = { name: "web", namespace: "ns" };
  it("a Service without a spec declares no port, and serves none", () => {
    expect(resolveServiceRef(ref, {})).toEqual({
      ok: false,
      reason: "ServicePortAmbiguous",
      message: "spec.serviceRef: Service ns/web declares no port; set spec.port",
    });
    expect(resolveServiceRef({ ...ref, port: 80 }, {})).toEqual({
      ok: false,
      reason: "ServicePortNotFound",
      message: "spec.serviceRef: Service ns/web has no port 80 (it serves no port); set spec.port to one of them",
    });
  });
  it("port entries without a number do not count", () => {
    expect(resolveServiceRef(ref, { spec: { ports: [{ name: "broken" }, { name: "http", port: 8080 }] } })).toEqual({
      ok: true,
      host: "web.ns.svc.cluster.local",
      port: 8080,
    });
  });
});
