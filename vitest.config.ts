import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // p2p suites spawn real agent processes; two cores: keep files sequential.
    fileParallelism: false,
  },
});
