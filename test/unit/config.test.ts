import { describe, expect, it } from "vitest";
import { portNumber } from "../../lib/hostport.ts";
import { moduleConfig, parseModuleConfig, splitList } from "../../lib/config.ts";

describe("config and ports", () => {
  it("parses ports and peer lists", () => {
    expect([portNumber("80"), portNumber(80), portNumber(" 8080 "), portNumber("0"), portNumber("65536"), portNumber("8o"), portNumber(undefined)]).toEqual([
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

  it("drops ENTANGLE_PEERS entries every agent would exit on, naming each (issue 15)", () => {
    const { config, problems } = parseModuleConfig({
      ENTANGLE_PEERS: "relay.example:4001,127.0.0.1:0,/ip4/10.0.0.1/tcp/4001/p2p/notapeerid,no-port,/ip4/10.0.0.2/tcp/4001",
    });
    expect(config.peers).toEqual(["relay.example:4001", "/ip4/10.0.0.2/tcp/4001"]);
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(/ENTANGLE_PEERS.*127\.0\.0\.1:0.*port 0.*ignored/);
    expect(problems[1]).toMatch(/ENTANGLE_PEERS.*invalid peer id/);
    expect(problems[2]).toMatch(/ENTANGLE_PEERS.*HOST:PORT.*no-port/);
  });

  it("passes ENTANGLE_BOOTSTRAP (checked) and the public-list guard on to every agent (issue 9)", () => {
    const id = "12D3KooWKnDdG3iXw9eTFijk3EWSunZcFi54Zka4wmtqtt6rPxc8";
    const { config, problems } = parseModuleConfig({
      ENTANGLE_BOOTSTRAP: `/ip4/100.128.0.2/tcp/4001/p2p/${id},100.128.0.3:4001`,
      ENTANGLE_FORBID_PUBLIC_BOOTSTRAP: "1",
    });
    expect(config).toMatchObject({ bootstrap: [`/ip4/100.128.0.2/tcp/4001/p2p/${id}`], forbidPublicBootstrap: true });
    expect(problems).toEqual([expect.stringMatching(/^ENTANGLE_BOOTSTRAP: "100\.128\.0\.3:4001" names no peer id.*ignored/)]);
    expect(parseModuleConfig({ ENTANGLE_BOOTSTRAP: "none" }).config.bootstrap).toEqual(["none"]);
    expect(parseModuleConfig({ ENTANGLE_FORBID_PUBLIC_BOOTSTRAP: "0" }).config).not.toHaveProperty("forbidPublicBootstrap");
    expect(parseModuleConfig({}).config).not.toHaveProperty("bootstrap");
  });

  it("drops bad ENTANGLE_P2P_LISTEN entries and falls back to the default when none is left", () => {
    expect(parseModuleConfig({ ENTANGLE_P2P_LISTEN: "127.0.0.1:0,nonsense" }).config.p2pListen).toEqual(["127.0.0.1:0"]);
    const { config, problems } = parseModuleConfig({ ENTANGLE_P2P_LISTEN: "nonsense" });
    expect(config.p2pListen).toEqual(["0.0.0.0:0"]);
    expect(problems).toEqual([expect.stringMatching(/ENTANGLE_P2P_LISTEN.*nonsense.*ignored/)]);
    expect(parseModuleConfig({}).config).toMatchObject({ peers: [], p2pListen: ["0.0.0.0:0"] });
  });
});
