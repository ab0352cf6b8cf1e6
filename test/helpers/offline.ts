// No test, benchmark or demo may reach the public libp2p bootstrap peers (issue 9). Importing this
// (test/helpers/agents.ts does, and so every script that starts agents through it) makes the
// built-in list a hard error for this process and every agent or module it starts, and starts
// agents without a DHT unless ENTANGLE_BOOTSTRAP names the NAT lab's bootstrap nodes. vitest's
// config, bench.sh and demo.sh set the same; this covers a hack/ script run directly.
process.env.ENTANGLE_FORBID_PUBLIC_BOOTSTRAP = "1";
process.env.ENTANGLE_BOOTSTRAP ||= "none";
