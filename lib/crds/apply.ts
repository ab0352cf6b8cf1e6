// The module applies its own CRDs at start (server-side apply: idempotent, and upgrades them).
import { K8s, kind, Log } from "pepr";
import { crds } from "./definitions.ts";

export async function ensureCrds(timeoutMs = 30_000): Promise<void> {
  for (const crd of crds) {
    await K8s(kind.CustomResourceDefinition).Apply(crd as kind.CustomResourceDefinition, { force: true });
  }
  const deadline = Date.now() + timeoutMs;
  for (const crd of crds) {
    for (;;) {
      const got = await K8s(kind.CustomResourceDefinition).Get(crd.metadata.name);
      if (got.status?.conditions?.some((c) => c.type === "Established" && c.status === "True")) break;
      if (Date.now() > deadline) throw new Error(`CRD ${crd.metadata.name} not established after ${timeoutMs / 1000} s`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  Log.info({ crds: crds.map((c) => c.metadata.name) }, "CRDs applied");
}
