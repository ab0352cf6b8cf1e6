// The `entangle` command line. Bad input gets one clear line on stderr and exit code 2.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { AddrError, parseHostPort, toAnnounceMultiaddr, toMultiaddr, toPeerMultiaddr } from "../p2p/addr.ts";
import { TokenError, inspectToken, newToken, parseToken, type NetworkToken } from "../p2p/token.ts";
import { Agent, type Role } from "../p2p/agent.ts";
import { serviceNameProblem } from "../p2p/service-name.ts";
import { createLogger } from "../p2p/log.ts";
import { chooseBootstrap, PublicBootstrapForbidden } from "../p2p/bootstrap.ts";

export class UsageError extends Error {}

const collect = (value: string, prev: string[]) => [...prev, value];

function commonFlags(cmd: Command): Command {
  return cmd
    .option("--p2p-listen <addr>", "libp2p listen address, HOST:PORT or multiaddr (repeatable)", collect, [])
    .option(
      "--p2p-announce <addr>",
      "also announce this address, HOST:PORT or multiaddr, e.g. a port forward's public one; a public address makes a member relay for members (repeatable)",
      collect,
      [],
    )
    .option("--peer <addr>", "peer to dial, HOST:PORT or multiaddr; no peer id needed (repeatable)", collect, [])
    .option("--mdns", "discover peers with mDNS on the local network", false)
    .option("--no-mdns", "disable mDNS (default)")
    .option("--no-direct", "no direct listener: reachable only through relays")
    .option(
      "--bootstrap <addr>",
      "DHT bootstrap peer, multiaddr with /p2p/ID (repeatable, or comma-separated; 'none': no DHT). Default: $ENTANGLE_BOOTSTRAP, else the public libp2p bootstrap peers",
      collect,
      [],
    )
    .option("--health-listen <addr>", "serve GET /healthz, /readyz, /metrics on HOST:PORT")
    .option("--token-file <path>", "read the network token from this file (after $ENTANGLE_NETWORK_TOKEN, $EDGEVPNTOKEN)");
}

interface CommonOpts {
  p2pListen: string[];
  p2pAnnounce: string[];
  peer: string[];
  mdns: boolean;
  direct: boolean;
  bootstrap: string[];
  healthListen?: string;
  tokenFile?: string;
}

/** Token from ENTANGLE_NETWORK_TOKEN, else EDGEVPNTOKEN, else --token-file. */
export function loadToken(opts: { tokenFile?: string }, env: NodeJS.ProcessEnv, required: boolean): { token: NetworkToken; source: string } | undefined {
  let raw: string | undefined;
  let source = "";
  if (env.ENTANGLE_NETWORK_TOKEN) [raw, source] = [env.ENTANGLE_NETWORK_TOKEN, "$ENTANGLE_NETWORK_TOKEN"];
  else if (env.EDGEVPNTOKEN) [raw, source] = [env.EDGEVPNTOKEN, "$EDGEVPNTOKEN"];
  else if (opts.tokenFile !== undefined) {
    try {
      raw = readFileSync(opts.tokenFile, "utf8");
    } catch (err) {
      throw new UsageError(`--token-file: cannot read ${opts.tokenFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    source = opts.tokenFile;
  }
  if (raw === undefined) {
    if (required) throw new UsageError("no network token: set ENTANGLE_NETWORK_TOKEN (or EDGEVPNTOKEN) or pass --token-file");
    return undefined;
  }
  try {
    return { token: parseToken(raw), source };
  } catch (err) {
    throw new UsageError(`${(err as Error).message} (from ${source})`);
  }
}

/**
 * Members are DHT clients when a bootstrap list is in force; relays serve the DHT unless told
 * `--bootstrap none`; bootstrap nodes always serve it (the first of them knows nobody yet).
 */
function dhtSetting(role: Role, opts: CommonOpts, bootstrapNode: boolean) {
  let choice;
  try {
    choice = chooseBootstrap(opts.bootstrap, process.env);
  } catch (err) {
    if (err instanceof PublicBootstrapForbidden) throw new UsageError(err.message);
    throw err;
  }
  const dht: "client" | "server" | undefined =
    role.mode !== "relay" ? (choice.peers.length > 0 ? "client" : undefined) : bootstrapNode || choice.source !== "none" ? "server" : undefined;
  return { bootstrap: choice.peers, bootstrapSource: choice.source, dht };
}

async function runAgent(role: Role, opts: CommonOpts, name: string = role.mode, bootstrapNode = false): Promise<void> {
  const discovery = dhtSetting(role, opts, bootstrapNode);
  const loaded = loadToken(opts, process.env, role.mode !== "relay");
  const token = loaded?.token;
  const peers = opts.peer.map((p) => toPeerMultiaddr(p, "--peer"));
  const tokenPeers = (token?.peers ?? []).map((p) => toPeerMultiaddr(p, `peer embedded in the network token (from ${loaded!.source})`));
  const p2pListen = (opts.p2pListen.length > 0 ? opts.p2pListen : ["0.0.0.0:0"]).map((a) => toMultiaddr(a, "--p2p-listen"));
  const p2pAnnounce = opts.p2pAnnounce.map((a) => toAnnounceMultiaddr(a));
  const healthListen = opts.healthListen !== undefined ? parseHostPort(opts.healthListen, "--health-listen", true) : undefined;
  const log = createLogger(`entangle-${name}`);
  // A promise rejected with nobody to hear it (a bug in our code or a library's, e.g. in a stream
  // handler) would, by Node's default, end the process and every tunnel in it: say so and go on.
  process.on("unhandledRejection", (reason) => log.error({ err: reason }, "unhandled rejection (a bug: please report it); the agent goes on"));
  // A throw nobody caught leaves the process in an unknown state, so it still ends, but with its
  // reason as the last log line and the pod's termination message (AgentFailed), not a stack trace
  // whose last line is Node's version.
  process.on("uncaughtException", (err) => {
    log.fatal({ err }, "uncaught exception (a bug: please report it); the agent exits");
    writeTerminationMessage(`entangle: internal error: ${err.message}`);
    process.exit(1);
  });
  const agent = new Agent({
    role,
    token,
    p2pListen,
    p2pAnnounce,
    peers,
    tokenPeers,
    mdns: opts.mdns,
    noDirect: !opts.direct,
    healthListen,
    log,
    ...discovery,
    hop: !bootstrapNode,
  });
  try {
    await agent.start();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new UsageError(e.code === "EADDRINUSE" || e.code === "EADDRNOTAVAIL" || e.code === "EACCES" ? `cannot listen: ${e.message}` : e.message);
  }
  const shutdown = (signal: string) => {
    log.info({ signal }, "shutting down");
    // a graceful stop closes connections politely; never let it keep the process alive
    setTimeout(() => process.exit(0), 5_000).unref();
    agent.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  process.once("SIGINT", () => shutdown("SIGINT"));
}

function buildProgram(): Command {
  const program = new Command("entangle").description("Connect services across clusters over an encrypted libp2p network").exitOverride();
  const token = program.command("token").description("create and inspect network tokens");
  token
    .command("new")
    .description("print a fresh network token")
    .option("--peer <addr>", "embed a rendezvous/relay peer every agent then dials (repeatable)", collect, [])
    .action((o: { peer: string[] }) => {
      o.peer.forEach((p) => toPeerMultiaddr(p, "--peer"));
      process.stdout.write(newToken(o.peer) + "\n");
    });
  token
    .command("inspect [token]")
    .description("print the token's format and fingerprint as JSON (reads stdin without TOKEN)")
    .action((arg?: string) => {
      const raw = arg ?? readFileSync(0, "utf8");
      try {
        process.stdout.write(JSON.stringify(inspectToken(raw)) + "\n");
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
    });

  const agent = program.command("agent").description("run a network agent");
  commonFlags(agent.command("expose").description("forward tunnel streams for a service to a TCP target"))
    .requiredOption("--service <id>", "service id (serviceUUID)")
    .requiredOption("--target <host:port>", "where connections are forwarded")
    .action((o: CommonOpts & { service: string; target: string }) =>
      runAgent({ mode: "expose", service: serviceId(o.service), target: parseHostPort(o.target, "--target") }, o),
    );
  commonFlags(agent.command("connect").description("accept TCP connections and carry each to a provider of a service"))
    .requiredOption("--service <id>", "service id (serviceUUID)")
    .requiredOption("--listen <host:port>", "local TCP listen address")
    .action((o: CommonOpts & { service: string; listen: string }) =>
      runAgent({ mode: "connect", service: serviceId(o.service), listen: parseHostPort(o.listen, "--listen", true) }, o),
    );
  commonFlags(agent.command("api-proxy").description("serve this cluster's Kubernetes API on the network as a service"))
    .requiredOption("--service <id>", "service id (serviceUUID)")
    .option("--kubeconfig <path>", "kubeconfig of the cluster to serve (default: in-cluster service account)")
    .option("--as <user>", "impersonate this user for every request")
    .option("--as-group <group>", "impersonate this group (repeatable)", collect, [])
    .action(async (o: CommonOpts & { service: string; kubeconfig?: string; as?: string; asGroup: string[] }) => {
      const service = serviceId(o.service);
      loadToken(o, process.env, true); // fail on a bad token before touching the cluster
      // loaded only here: the Kubernetes client is heavy and no other command needs it
      const { startApiProxy } = await import("../remote/api-proxy.ts");
      let proxy;
      try {
        proxy = await startApiProxy({ kubeconfig: o.kubeconfig, impersonateUser: o.as, impersonateGroups: o.asGroup });
      } catch (err) {
        throw new UsageError(`api-proxy: ${(err as Error).message}`);
      }
      await runAgent({ mode: "expose", service, target: { host: "127.0.0.1", port: proxy.port } }, o, "api-proxy");
    });
  commonFlags(agent.command("relay").description("relay traffic and help members find each other (token optional)")).action((o: CommonOpts) =>
    runAgent({ mode: "relay" }, o),
  );
  commonFlags(agent.command("bootstrap").description("a DHT server other agents bootstrap from: no relaying, no token")).action((o: CommonOpts) =>
    runAgent({ mode: "relay" }, o, "bootstrap", true),
  );
  return program;
}

function serviceId(s: string): string {
  const problem = serviceNameProblem(s);
  if (problem !== undefined) throw new UsageError(`--service ${JSON.stringify([...s].length > 80 ? [...s].slice(0, 80).join("") + "..." : s)}: ${problem}`);
  return s;
}

/**
 * Kubernetes shows the content of the container's terminationMessagePath (rendered as
 * /dev/termination-log) in the pod's status, where the controllers read why an agent exited.
 * Written only when the file exists: outside a pod there is nobody to tell.
 */
function writeTerminationMessage(message: string, path = process.env.ENTANGLE_TERMINATION_LOG || "/dev/termination-log"): void {
  try {
    if (existsSync(path)) writeFileSync(path, message);
  } catch {
    // best effort: the same line is on stderr (FallbackToLogsOnError shows it too)
  }
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  program.configureOutput({ writeErr: (s) => process.stderr.write(s) });
  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version are not errors
      process.exit(err.exitCode === 0 ? 0 : 2);
    }
    if (err instanceof UsageError || err instanceof AddrError || err instanceof TokenError) {
      process.stderr.write(`entangle: ${err.message}\n`);
      writeTerminationMessage(`entangle: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
}
