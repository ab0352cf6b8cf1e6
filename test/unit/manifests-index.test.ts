// ManifestsIndex: what the other Manifests declare, kept from watch events and lists instead of a
// list of every CR per deletion (issue 11).
import { describe, expect, it } from "vitest";
import { ManifestsIndex } from "../../lib/controller/manifests-index.ts";
import type { Manifests } from "../../lib/crds/index.ts";

const cm = (name: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n  namespace: app\n`;
function cr(name: string, version: number, objects: string[], extra: { uid?: string; deleting?: boolean; service?: string } = {}): Manifests {
  return {
    metadata: {
      name,
      namespace: "ns",
      uid: extra.uid ?? `uid-${name}`,
      resourceVersion: String(version),
      ...(extra.deleting ? { deletionTimestamp: new Date() } : {}),
    },
    spec: { serviceUUID: extra.service ?? "svc", secretRef: "token", manifests: objects.map(cm) },
  } as Manifests;
}
const names = (keys: Set<string>) => [...keys].map((k) => k.split("/").pop()).sort();

describe("ManifestsIndex", () => {
  it("answers what the other live CRs of the same service declare", () => {
    const index = new ManifestsIndex();
    expect(index.complete).toBe(false);
    index.replace([cr("a", 10, ["x", "y"]), cr("b", 11, ["y", "z"]), cr("c", 12, ["w"], { service: "other" }), cr("d", 13, ["v"], { deleting: true })], "20");
    expect(index.complete).toBe(true);
    expect(names(index.declaredByOthers(cr("a", 10, []), "svc"))).toEqual(["y", "z"]);
    expect(names(index.declaredByOthers(cr("b", 11, []), "svc"))).toEqual(["x", "y"]);
  });

  it("follows events: a newer one replaces, an older one is ignored, a deletion forgets", () => {
    const index = new ManifestsIndex();
    index.replace([cr("a", 10, ["x"]), cr("b", 11, ["y"])], "20");
    index.observe(cr("b", 21, ["y2"]));
    index.observe(cr("b", 15, ["old"]));
    expect(names(index.declaredByOthers(cr("a", 10, []), "svc"))).toEqual(["y2"]);
    index.observe(cr("b", 22, ["y2"], { deleting: true }));
    expect(names(index.declaredByOthers(cr("a", 10, []), "svc"))).toEqual([]);
    index.observe(cr("b", 23, ["y3"], { uid: "recreated" }));
    index.forget(cr("b", 22, [])); // the old one's DELETED event, late: not the recreated CR
    expect(names(index.declaredByOthers(cr("a", 10, []), "svc"))).toEqual(["y3"]);
    index.forget(cr("b", 24, [], { uid: "recreated" }));
    expect(names(index.declaredByOthers(cr("a", 10, []), "svc"))).toEqual([]);
  });

  it("a list drops what it lacks, except what an event newer than the list brought", () => {
    const index = new ManifestsIndex();
    index.replace([cr("a", 10, ["x"]), cr("b", 11, ["y"])], "20");
    index.observe(cr("new", 31, ["n"]));
    // a list taken at 30: b is gone, "new" (31) came after it
    index.replace([cr("a", 10, ["x"])], "30");
    expect(names(index.declaredByOthers(cr("a", 10, []), "svc"))).toEqual(["n"]);
    // a list at 40 without "new": gone too
    index.replace([cr("a", 10, ["x"])], "40");
    expect(names(index.declaredByOthers(cr("a", 10, []), "svc"))).toEqual([]);
  });
});
