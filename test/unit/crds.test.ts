import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { crdsYaml, entanglementCrd, manifestsCrd } from "../../lib/crds/definitions.ts";
import { setCondition } from "../../lib/crds/conditions.ts";
import { seedObjects } from "../helpers/seed.ts";

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe("CRDs", () => {
  it("crds.yaml is generated from definitions.ts (run node lib/crds/write-yaml.ts)", () => {
    const file = readFileSync(new URL("../../lib/crds/crds.yaml", import.meta.url), "utf8");
    expect(file.replace(/^#.*\n/, "")).toBe(crdsYaml());
  });

  it("every spec field of the seed examples is in the schema", () => {
    const props = (crd: Any) => Object.keys(crd.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties);
    const names = ["outbound-entanglement", "inbound-entanglement", "inbound-entanglement-cluster-b", "control-manifests"];
    const objs = names.flatMap((n) => seedObjects(n)).filter((o) => o.kind === "Entanglement" || o.kind === "Manifests");
    expect(objs).toHaveLength(4);
    for (const o of objs) {
      const crd = o.kind === "Entanglement" ? entanglementCrd : manifestsCrd;
      expect(o.apiVersion).toBe(`${crd.spec.group}/v1alpha1`);
      for (const k of Object.keys(o.spec as object)) expect(props(crd)).toContain(k);
    }
  });

  it("status subresource and printer columns", () => {
    for (const crd of [entanglementCrd, manifestsCrd] as Any[]) {
      expect(crd.spec.versions[0].subresources).toEqual({ status: {} });
      expect(crd.spec.versions[0].additionalPrinterColumns.map((c: Any) => c.name)).toContain("Ready");
    }
  });
});

describe("setCondition", () => {
  it("keeps lastTransitionTime while the status stays the same", () => {
    const t1 = new Date("2026-01-01T00:00:00Z");
    const t2 = new Date("2026-01-02T00:00:00Z");
    const a = setCondition(undefined, { type: "Ready", status: "False", reason: "X", message: "m" }, t1);
    const b = setCondition(a, { type: "Ready", status: "False", reason: "Y", message: "n" }, t2);
    expect(b[0]).toMatchObject({ reason: "Y", lastTransitionTime: "2026-01-01T00:00:00Z" });
    const c = setCondition(b, { type: "Ready", status: "True", reason: "Z", message: "o" }, t2);
    expect(c).toHaveLength(1);
    expect(c[0].lastTransitionTime).toBe("2026-01-02T00:00:00Z");
  });
});
