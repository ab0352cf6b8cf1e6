// RemoteSnapshot: a resync lists each remote kind and namespace once, shared by all its CRs,
// instead of a GET per object (issue 11).
import { describe, expect, it } from "vitest";
import type { KubernetesObject, KubernetesObjectApi } from "@kubernetes/client-node";
import { RemoteSnapshot } from "../../lib/remote/snapshot.ts";

const clientA = {} as KubernetesObjectApi;
const clientB = {} as KubernetesObjectApi;
const cm = (name: string, namespace?: string): KubernetesObject =>
  ({ metadata: { name, namespace, uid: `uid-${name}` }, data: { v: name } }) as KubernetesObject;
const ref = (name: string, namespace: string | null = "app", kind = "ConfigMap") => ({
  index: 0,
  apiVersion: "v1",
  kind,
  namespace: namespace ?? undefined,
  name,
  state: "Applied" as const,
});

function lister(items: Record<string, KubernetesObject[] | Error>) {
  const calls: string[] = [];
  const list = async (client: KubernetesObjectApi, apiVersion: string, kind: string, namespace: string | undefined) => {
    calls.push(`${client === clientA ? "A" : "B"} ${apiVersion}/${kind}/${namespace ?? ""}`);
    const answer = items[`${kind}/${namespace ?? ""}`] ?? [];
    if (answer instanceof Error) throw answer;
    return answer;
  };
  return { calls, list };
}

describe("RemoteSnapshot", () => {
  it("lists a kind and namespace once per client, concurrent finds included, and gives items their apiVersion and kind", async () => {
    const { calls, list } = lister({ "ConfigMap/app": [cm("a", "app"), cm("b", "app")] });
    const snapshot = new RemoteSnapshot(list);
    const [a, b, missing] = await Promise.all([snapshot.find(clientA, ref("a")), snapshot.find(clientA, ref("b")), snapshot.find(clientA, ref("c"))]);
    expect(a).toMatchObject({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a", namespace: "app" }, data: { v: "a" } });
    expect(b?.metadata?.name).toBe("b");
    expect(missing).toBeUndefined();
    await snapshot.find(clientB, ref("a"));
    await snapshot.find(clientA, ref("a", "other"));
    await snapshot.find(clientA, ref("a"));
    expect(calls).toEqual(["A v1/ConfigMap/app", "B v1/ConfigMap/app", "A v1/ConfigMap/other"]);
  });

  it("matches the namespace: an object of the same name elsewhere is not it; cluster-scoped objects have none", async () => {
    const { list } = lister({ "ConfigMap/": [cm("a", "elsewhere")], "Namespace/": [cm("ns1")] });
    const snapshot = new RemoteSnapshot(list);
    expect(await snapshot.find(clientA, ref("a", null))).toBeUndefined();
    expect(await snapshot.find(clientA, ref("ns1", null, "Namespace"))).toMatchObject({ kind: "Namespace", metadata: { name: "ns1" } });
  });

  it("a list that fails (no list permission) finds nothing, once: the caller reads each object itself", async () => {
    const { calls, list } = lister({ "Secret/app": Object.assign(new Error("forbidden"), { code: 403 }) });
    const snapshot = new RemoteSnapshot(list);
    expect(await snapshot.find(clientA, ref("s", "app", "Secret"))).toBeUndefined();
    expect(await snapshot.find(clientA, ref("t", "app", "Secret"))).toBeUndefined();
    expect(calls).toEqual(["A v1/Secret/app"]);
  });

  it("a record without a name or kind is never looked up", async () => {
    const { calls, list } = lister({});
    const snapshot = new RemoteSnapshot(list);
    expect(await snapshot.find(clientA, { index: 0, state: "Failed" })).toBeUndefined();
    expect(calls).toEqual([]);
  });
});
