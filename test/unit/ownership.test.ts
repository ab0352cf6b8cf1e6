import { describe, expect, it } from "vitest";
import { notOurs } from "../../lib/k8s/ownership.ts";

describe("notOurs", () => {
  const svc = (ownerReferences?: object[]) => ({ metadata: { name: "web", namespace: "default", ...(ownerReferences ? { ownerReferences } : {}) } });
  it("absent or owned by this CR: ours to apply", () => {
    expect(notOurs(undefined, "u1", "Service")).toBeUndefined();
    expect(notOurs(svc([{ uid: "u1", kind: "Entanglement", name: "web", controller: true }]), "u1", "Service")).toBeUndefined();
  });
  it("a user's object, or another owner's, is refused with a reason naming it", () => {
    expect(notOurs(svc(), "u1", "Service")).toBe(
      "Service default/web already exists and it was not created by this Entanglement: left untouched (delete or rename it, or rename the Entanglement)",
    );
    expect(notOurs(svc([{ uid: "u2", kind: "Entanglement", name: "old", controller: true }]), "u1", "Service")).toMatch(/belongs to Entanglement old/);
    expect(notOurs(svc(), undefined, "Service")).toMatch(/already exists/);
  });
});

describe("notOurs, the reason's wording", () => {
  it("names the kind, namespace and name, and the controlling owner only", () => {
    const refs = [
      { uid: "u3", kind: "ReplicaSet", name: "rs", controller: false },
      { uid: "u2", kind: "Entanglement", name: "old", controller: true },
    ];
    expect(notOurs({ metadata: { name: "web", namespace: "ns", ownerReferences: refs } }, "u1", "Deployment")).toBe(
      "Deployment ns/web already exists and it belongs to Entanglement old: left untouched (delete or rename it, or rename the Entanglement)",
    );
    // owned (not controlled) by this CR still counts as ours
    expect(notOurs({ metadata: { name: "web", ownerReferences: [{ uid: "u1", controller: false }] } }, "u1", "Service")).toBeUndefined();
    // cluster-scoped: no namespace prefix
    expect(notOurs({ metadata: { name: "x" } }, "u1", "ClusterRole")).toMatch(/^ClusterRole x already exists and it was not created/);
    // no uid given: an object with an owner whose uid is missing is not ours
    expect(notOurs({ metadata: { name: "x", ownerReferences: [{ kind: "Entanglement", name: "e" }] } }, undefined, "Service")).toMatch(
      /^Service x already exists and it was not created by this Entanglement/,
    );
  });
});

describe("notOurs, an object without metadata", () => {
  it("is not ours, and the reason still reads", () => {
    expect(notOurs({ kind: "Service" }, "u1", "Service")).toBe(
      "Service undefined already exists and it was not created by this Entanglement: left untouched (delete or rename it, or rename the Entanglement)",
    );
  });
});
