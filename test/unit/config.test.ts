import { describe, expect, it } from "vitest";
import { parsePort } from "../../lib/render/agent.ts";
import { moduleConfig, splitList } from "../../lib/config.ts";

describe("config and ports", () => {
  it("parses ports and peer lists", () => {
    expect([parsePort("80"), parsePort(80), parsePort(" 8080 "), parsePort("0"), parsePort("65536"), parsePort("8o"), parsePort(undefined)]).toEqual([
      80,
      80,
      8080,
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
    expect(splitList(" a:1, ,/ip4/1.2.3.4/tcp/5 ,")).toEqual(["a:1", "/ip4/1.2.3.4/tcp/5"]);
    expect(moduleConfig({ ENTANGLE_PEERS: "r:1", ENTANGLE_AGENT_IMAGE: "x/y:z" })).toMatchObject({ image: "x/y:z", peers: ["r:1"] });
  });
});
