// The managed side of the Manifests suites (test/e2e): a second control plane named
// `<control>-managed` and a relay on loopback that holds no token.
import { runEntangle } from "./agents.ts";
import { run } from "./k8s.ts";

export async function managedClusterAndRelay(control: string): Promise<{ managed: string; relayAddr: string }> {
  const up = await run("bash", ["hack/cluster.sh", "up", `${control}-managed`], { timeoutMs: 600_000 });
  if (up.code !== 0) throw new Error(up.stderr);
  const managed = up.stdout
    .trim()
    .split("\n")
    .pop()!
    .replace(/^KUBECONFIG=/, "");
  const relay = runEntangle(["agent", "relay", "--p2p-listen", "127.0.0.1:0"]);
  const relayAddr = ((await relay.waitMsg("agent started")).addrs as string[])[0];
  return { managed, relayAddr };
}
