// The rendered agent's health server listens on the pod IP only (issue 15, sibling of #6): on the
// host network 0.0.0.0 is every address of the node. Kubelet expands $(VAR) in args from the
// container's env; here the "pod IP" is 127.0.0.1 (or ::1), and 127.0.0.2 stands for the node's
// other addresses.
import { get } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { agentContainer } from "../../lib/render/agent.ts";
import { newToken } from "../../lib/p2p/token.ts";
import { freePort, killAll, runEntangle } from "../helpers/agents.ts";

afterEach(killAll);

/** What kubelet does with $(NAME) in args: the value of NAME from the container's env. */
function expand(args: string[], env: Record<string, string>): string[] {
  return args.map((a) => a.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (_m, name: string) => env[name] ?? `$(${name})`));
}

function status(host: string, port: number): Promise<number | string> {
  return new Promise((resolve) => {
    const req = get({ host, port, path: "/healthz", timeout: 2_000 }, (res) => (res.resume(), resolve(res.statusCode ?? 0)));
    req.once("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    req.once("timeout", () => req.destroy(new Error("timeout")));
  });
}

describe("rendered --health-listen", () => {
  it.each([
    ["IPv4", "127.0.0.1", "127.0.0.2"],
    ["IPv6", "::1", "127.0.0.1"],
  ])("%s pod IP: probes on the pod IP answer, other addresses do not", async (_name, podIp, other) => {
    const healthPort = await freePort();
    const c = agentContainer(
      { mode: "expose", service: "s", address: "127.0.0.1:9", secretRef: "tok", healthPort, readiness: true },
      { image: "x", peers: [] },
    );
    // the pod IP comes from the downward API, nothing else can supply it
    const podIpEnv = c.env!.filter((e) => e.valueFrom?.fieldRef?.fieldPath === "status.podIP").map((e) => e.name);
    expect(podIpEnv).toHaveLength(1);
    const args = expand(c.args!, { [podIpEnv[0]]: podIp });
    const agent = runEntangle([...args, "--p2p-listen", "127.0.0.1:0"], { ENTANGLE_NETWORK_TOKEN: newToken() });
    await agent.waitMsg("health endpoint listening");
    expect(await status(podIp, healthPort)).toBe(200);
    expect(await status(other, healthPort)).toBe("ECONNREFUSED");
  });
});
