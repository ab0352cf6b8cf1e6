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
