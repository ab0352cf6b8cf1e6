// Module settings from its environment (Pepr passes the module's env through).
import { Log } from "pepr";
import { toMultiaddr, toPeerMultiaddr } from "./p2p/addr.ts";
import { LOG_LEVELS, normalizeLogLevel } from "./render/agent.ts";
import { chooseBootstrap, FORBID_ENV } from "./p2p/bootstrap.ts";

export interface ModuleConfig {
  /** agent image for rendered Deployments and sidecars */
  image: string;
  imagePullPolicy?: string;
  /** relays/rendezvous peers every agent dials (HOST:PORT or multiaddr) */
  peers: string[];
  /** where the module's own libp2p node (remote manifests) listens */
  p2pListen: string[];
  /** ENTANGLE_AGENT_LOG_LEVEL: every agent's ENTANGLE_LOG_LEVEL (a sidecar's log_level wins) */
  logLevel?: string;
  /** ENTANGLE_BOOTSTRAP: every agent's --bootstrap (multiaddrs with /p2p/ID, or "none"); unset: the agents' default */
  bootstrap?: string[];
  /** ENTANGLE_FORBID_PUBLIC_BOOTSTRAP set: every agent gets it too (tests, demos: never the public DHT peers) */
  forbidPublicBootstrap?: boolean;
}

export const DEFAULT_AGENT_IMAGE = "ghcr.io/entangle-ts/entangle:0.1.0";
const DEFAULT_P2P_LISTEN = "0.0.0.0:0";

export function splitList(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** The entries `check` accepts, and one line per entry it refuses. */
function validEntries(values: string[], check: (v: string) => unknown): { ok: string[]; problems: string[] } {
  const ok: string[] = [];
  const problems: string[] = [];
  for (const v of values) {
    try {
      check(v);
      ok.push(v);
    } catch (err) {
      problems.push(`${(err as Error).message}: entry ignored`);
    }
  }
  return { ok, problems };
}

/**
 * Settings plus what was wrong with them. A bad ENTANGLE_PEERS entry is dropped, not copied:
 * every rendered agent gets the module's peers as --peer and would exit 2 on it, forever.
 * The module still starts (its admission webhook fails closed: refusing to start would block
 * every pod creation); the problems are logged loudly instead.
 */
export function parseModuleConfig(env: NodeJS.ProcessEnv): { config: ModuleConfig; problems: string[] } {
  const peers = validEntries(splitList(env.ENTANGLE_PEERS), (p) => toPeerMultiaddr(p, "ENTANGLE_PEERS"));
  // a level the agent does not know would make every agent exit: dropped (agents log at info)
  const rawLevel = env.ENTANGLE_AGENT_LOG_LEVEL?.trim() || undefined;
  const logLevel = normalizeLogLevel(rawLevel);
  const levelProblems = rawLevel && !logLevel ? [`ENTANGLE_AGENT_LOG_LEVEL ${JSON.stringify(rawLevel)} is not one of ${LOG_LEVELS.join(", ")}: ignored`] : [];
  const listen = validEntries(splitList(env.ENTANGLE_P2P_LISTEN || DEFAULT_P2P_LISTEN), (a) => toMultiaddr(a, "ENTANGLE_P2P_LISTEN"));
  const bootstrap = validEntries(splitList(env.ENTANGLE_BOOTSTRAP), (b) => chooseBootstrap([], { ENTANGLE_BOOTSTRAP: b }));
  const forbid = env[FORBID_ENV]?.trim();
  return {
    config: {
      image: env.ENTANGLE_AGENT_IMAGE?.trim() || DEFAULT_AGENT_IMAGE,
      imagePullPolicy: env.ENTANGLE_AGENT_PULL_POLICY?.trim() || undefined,
      peers: peers.ok,
      p2pListen: listen.ok.length > 0 ? listen.ok : [DEFAULT_P2P_LISTEN],
      logLevel,
      ...(bootstrap.ok.length > 0 ? { bootstrap: bootstrap.ok } : {}),
      ...(forbid && forbid !== "0" ? { forbidPublicBootstrap: true } : {}),
    },
    problems: [...peers.problems, ...listen.problems, ...levelProblems, ...bootstrap.problems],
  };
}

const reported = new Set<string>();

/** The module's settings; each problem is logged at error level once per process. */
export function moduleConfig(env: NodeJS.ProcessEnv = process.env): ModuleConfig {
  const { config, problems } = parseModuleConfig(env);
  for (const problem of problems) {
    if (reported.has(problem)) continue;
    reported.add(problem);
    Log.error({ problem }, `entangle module setting refused: ${problem}`);
  }
  return config;
}
