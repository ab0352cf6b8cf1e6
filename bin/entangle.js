#!/usr/bin/env node
// `entangle` entry point. The code is TypeScript run by Node's built-in type stripping, and
// libp2p 3 needs Node >= 22; when an older `node` starts us, re-run with the Node binary that
// the `node` npm package (a dependency) installed, so nobody installs Node by hand.
import { spawn } from "node:child_process";
import { constants as osConstants } from "node:os";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const major = Number(process.versions.node.split(".")[0]);
if (major < 22) {
  // Signals sent to us are passed on; should we die without one (SIGKILL), the child notices
  // it was orphaned (ENTANGLE_PARENT_PID) and exits too, so no agent outlives its launcher.
  const require = createRequire(import.meta.url);
  const bundled = join(dirname(require.resolve("node/package.json")), "bin", "node");
  const child = spawn(bundled, process.argv.slice(1), { stdio: "inherit", env: { ...process.env, ENTANGLE_PARENT_PID: String(process.pid) } });
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(sig, () => child.kill(sig));
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 128 + (osConstants.signals[signal] ?? 0) : 1)));
} else {
  const parent = Number(process.env.ENTANGLE_PARENT_PID);
  if (parent > 0) setInterval(() => process.ppid !== parent && process.exit(1), 500).unref();
  // libp2p makes a debug logger per stream, and each asked isatty() (a system call) to choose
  // colours unless told: not per tunnel connection, please
  process.env.DEBUG_COLORS ??= "no";
  const { main } = await import("../lib/cli/main.ts");
  await main(process.argv.slice(2));
}
