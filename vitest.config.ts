import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // p2p suites spawn real agent processes; two cores: keep files sequential.
    fileParallelism: false,
    // No test may reach the public libp2p bootstrap peers (issue 9): asking for the built-in list
    // throws, and agents started by tests run without a DHT unless a test gives them the NAT
    // lab's bootstrap nodes. Every project inherits this; spawned agents inherit the environment.
    env: { ENTANGLE_FORBID_PUBLIC_BOOTSTRAP: "1", ENTANGLE_BOOTSTRAP: "none" },
    // Projects inherit the options above (extends: true). Only the k8s project has the control
    // plane globalSetup, and vitest runs a project's globalSetup only when that project has test
    // files in the run: `vitest run test/unit` or `test/p2p` never starts a cluster.
    projects: [
      { extends: true, test: { name: "unit", include: ["test/unit/**/*.test.ts"] } },
      { extends: true, test: { name: "p2p", include: ["test/p2p/**/*.test.ts"] } },
      {
        extends: true,
        test: {
          name: "k8s",
          include: ["test/k8s/**/*.test.ts", "test/e2e/**/*.test.ts"],
          // Starts (building on first use, no timeout applies) a local control plane: hack/cluster.sh.
          globalSetup: ["test/k8s/cluster.global.ts"],
        },
      },
      {
        extends: true,
        test: {
          name: "nodes",
          include: ["test/nodes/**/*.test.ts"],
          // Two clusters with real nodes (root, network namespaces) and Entangle installed in-cluster.
          globalSetup: ["test/nodes/clusters.global.ts"],
          testTimeout: 180_000,
        },
      },
      {
        extends: true,
        test: {
          name: "natlab",
          include: ["test/natlab/**/*.test.ts"],
          // The NAT lab (hack/natlab.sh up/down): sites behind NAT routers, bootstrap nodes, a relay.
          globalSetup: ["test/natlab/lab.global.ts"],
          // agents start in seconds on an idle machine, in tens of seconds on a loaded one
          testTimeout: 180_000,
        },
      },
      {
        extends: true,
        test: {
          name: "helm",
          include: ["test/helm/**/*.test.ts"],
          // No globalSetup: the file starts its own cluster with a real node (hack/cluster.sh).
          testTimeout: 420_000,
        },
      },
    ],
  },
});
