// Entry of the bundled agent (hack/build-agent.ts), which runs on Node >= 22 only (the image's).
// libp2p makes a debug logger per stream, and each asked isatty() (a system call) to choose
// colours unless told: set before libp2p loads, hence the dynamic import.
process.env.DEBUG_COLORS ??= "no";
const { main } = await import("../lib/cli/main.ts");
await main(process.argv.slice(2));
