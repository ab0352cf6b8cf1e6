// Module settings from its environment (Pepr passes the module's env through).
export interface ModuleConfig {
  /** agent image for rendered Deployments and sidecars */
  image: string;
  imagePullPolicy?: string;
  /** relays/rendezvous peers every agent dials (HOST:PORT or multiaddr) */
  peers: string[];
  /** where the module's own libp2p node (remote manifests) listens */
  p2pListen: string[];
}

export const DEFAULT_AGENT_IMAGE = "ghcr.io/entangle-ts/entangle:0.1.0";

export function splitList(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

export function moduleConfig(env: NodeJS.ProcessEnv = process.env): ModuleConfig {
  return {
    image: env.ENTANGLE_AGENT_IMAGE?.trim() || DEFAULT_AGENT_IMAGE,
    imagePullPolicy: env.ENTANGLE_AGENT_PULL_POLICY?.trim() || undefined,
    peers: splitList(env.ENTANGLE_PEERS),
    p2pListen: splitList(env.ENTANGLE_P2P_LISTEN || "0.0.0.0:0"),
  };
}
