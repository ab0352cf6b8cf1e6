import { describe, expect, it } from "vitest";
import { covers, fallbackWrite, forbidden, mergeInto, refusedMessage, unreadableMessage } from "../../lib/remote/fallback.ts";

// the seed's Pod as declared, and as the API server keeps it (defaults and admission added)
const desired = {
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "test", namespace: "default", annotations: { "entangle-proxy.kairos.io/owner": "default/hello" } },
  spec: { containers: [{ name: "test", image: "busybox", command: ["sh", "-c", "sleep 3600"] }] },
};
const live = {
  apiVersion: "v1",
  kind: "Pod",
  metadata: { ...desired.metadata, uid: "u1", resourceVersion: "42", managedFields: [{ manager: "entangle-proxy" }] },
  spec: {
    containers: [
      { ...desired.spec.containers[0], terminationMessagePath: "/dev/termination-log", volumeMounts: [{ name: "kube-api-access", mountPath: "/var/run" }] },
    ],
    volumes: [{ name: "kube-api-access" }],
    restartPolicy: "Always",
  },
  status: { phase: "Pending" },
};

describe("fallback when server-side apply is forbidden", () => {
  it("creates what is absent", () => {
    expect(fallbackWrite(desired, undefined)).toEqual({ verb: "create", body: desired });
  });

  it("writes nothing when the live object already holds every declared field (server defaults ignored)", () => {
    expect(covers(live, desired)).toBe(true);
    expect(fallbackWrite(desired, live)).toEqual({ verb: "none" });
  });

  it("updates a changed object: our fields over the live one, its resourceVersion and server-set fields kept", () => {
    const changed = { ...desired, spec: { containers: [{ ...desired.spec.containers[0], image: "busybox:2" }] } };
    const write = fallbackWrite(changed, live);
    expect(write.verb).toBe("update");
    const body = (write as unknown as { body: typeof live }).body;
    expect(body.metadata.resourceVersion).toBe("42");
    expect(body.metadata.annotations["entangle-proxy.kairos.io/owner"]).toBe("default/hello");
    expect(body.metadata).not.toHaveProperty("managedFields");
    expect(body.spec.containers[0]).toMatchObject({ image: "busybox:2", terminationMessagePath: "/dev/termination-log" });
    expect(body.spec.containers[0].volumeMounts).toEqual(live.spec.containers[0].volumeMounts);
    expect(body.spec.volumes).toEqual(live.spec.volumes);
    expect(live.spec.containers[0].image).toBe("busybox"); // the live copy is not modified
  });

  it("a hand-edited value or a missing owner annotation is not covered: restored by an update", () => {
    const edited = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a", resourceVersion: "7" }, data: { value: "edited" } };
    const wanted = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a", annotations: { owner: "x" } }, data: { value: "wanted" } };
    expect(covers(edited, wanted)).toBe(false);
    expect(mergeInto(edited, wanted)).toEqual({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "a", resourceVersion: "7", annotations: { owner: "x" } },
      data: { value: "wanted" },
    });
  });

  it("lists of another length are replaced, and then not covered", () => {
    expect(covers({ a: [1, 2] }, { a: [1] })).toBe(false);
    expect(mergeInto({ a: [{ x: 1 }, { y: 2 }] }, { a: [{ z: 3 }] })).toEqual({ a: [{ z: 3 }] });
    expect(mergeInto({ a: [{ x: 1 }] }, { a: [{ z: 3 }] })).toEqual({ a: [{ x: 1, z: 3 }] });
  });

  it("recognizes a 403 from either client, and says what to grant", () => {
    expect(forbidden({ code: 403 })).toBe(true);
    expect(forbidden({ status: 403 })).toBe(true);
    expect(forbidden({ code: 404 })).toBe(false);
    expect(forbidden(new Error("socket hang up"))).toBe(false);
    expect(refusedMessage("Pod", "no patch", "create", "no create")).toBe(
      "server-side apply (patch) was refused (no patch) and so was the fallback create (no create); the remote cluster's RBAC must allow patch, or create and update, on Pod",
    );
  });
});

describe("an object the remote refuses to read", () => {
  it("says whether it exists (not ours to judge) or what RBAC to grant", () => {
    expect(unreadableMessage("ConfigMap", "get forbidden", "already exists", true)).toBe(
      "ConfigMap exists in the remote cluster, which refuses to let us read it (get forbidden): cannot tell whether it is ours, left untouched",
    );
    expect(unreadableMessage("ConfigMap", "get forbidden", "create forbidden", false)).toMatch(
      /refused to read \(get forbidden\) and to create \(create forbidden\) this ConfigMap; its RBAC must allow get with patch, or get, create and update, on ConfigMap$/,
    );
  });
});
