// hack/ scripts run outside vitest, whose config keeps agents off the public libp2p bootstrap
// peers: each script that starts agents must do the same itself (issue 9's safety rule).
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

const root = new URL("../../", import.meta.url);
const hack = new URL("hack/", root);

describe("no script reaches the public bootstrap peers", () => {
  it("every hack/ script that starts agents imports the guard or sets it", () => {
    const starters = readdirSync(hack)
      .filter((f) => f.endsWith(".ts"))
      .map((f) => ({ f, src: readFileSync(new URL(f, hack), "utf8") }))
      .filter(({ src }) => /bin\/entangle\.js|runEntangle\(|\bENTANGLE\b/.test(src));
    expect(starters.length).toBeGreaterThan(3);
    const unguarded = starters.filter(({ src }) => !/helpers\/(agents|offline)\.ts"|ENTANGLE_FORBID_PUBLIC_BOOTSTRAP = "1"/.test(src)).map(({ f }) => f);
    expect(unguarded).toEqual([]);
  });

  it("importing the agents helper forbids the built-in list and turns the DHT off unless told otherwise", () => {
    const probe = (env: Record<string, string>) =>
      execFileSync(
        process.execPath,
        [
          "--input-type=module",
          "-e",
          `await import(${JSON.stringify(new URL("test/helpers/agents.ts", root).href)}); console.log(process.env.ENTANGLE_FORBID_PUBLIC_BOOTSTRAP, process.env.ENTANGLE_BOOTSTRAP)`,
        ],
        { env: { PATH: process.env.PATH ?? "", ...env }, encoding: "utf8" },
      ).trim();
    expect(probe({})).toBe("1 none");
    expect(probe({ ENTANGLE_BOOTSTRAP: "/ip4/100.128.0.2/tcp/4001" })).toBe("1 /ip4/100.128.0.2/tcp/4001");
  });
});
