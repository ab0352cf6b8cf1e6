// Vitest settings for `npm run mutation` (StrykerJS): the unit project only, one worker (the
// machine is shared), no cluster or agent processes. The property-based fuzz suites are left
// out: their inputs are random per run, so a mutant they kill once may survive the next run.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    name: "unit",
    include: ["test/unit/**/*.test.ts"],
    exclude: ["test/unit/fuzz-*.test.ts"],
    testTimeout: 60_000,
    fileParallelism: false,
    // time bounds in tests (a parse refused "quickly") scale: instrumented code, a shared machine
    // and, as in vitest.config.ts, never the public libp2p bootstrap list (the network rule)
    env: { ENTANGLE_TEST_TIME_SCALE: "20", ENTANGLE_FORBID_PUBLIC_BOOTSTRAP: "1", ENTANGLE_BOOTSTRAP: "none" },
  },
});
