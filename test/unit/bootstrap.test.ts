// The DHT bootstrap list (issue 9): --bootstrap / ENTANGLE_BOOTSTRAP / none, and the guard that
// keeps every test, benchmark and demo away from the public libp2p bootstrap peers.
import { describe, expect, it } from "vitest";
import { chooseBootstrap, FORBID_ENV, PUBLIC_BOOTSTRAP_PEERS, PublicBootstrapForbidden, publicBootstrapPeers } from "../../lib/p2p/bootstrap.ts";
import { AddrError } from "../../lib/p2p/addr.ts";

const ID = "12D3KooWKnDdG3iXw9eTFijk3EWSunZcFi54Zka4wmtqtt6rPxc8";
const LAB = [`/ip4/100.128.0.2/tcp/4001/p2p/${ID}`, `/ip4/100.128.0.3/tcp/4001/p2p/${ID}`];

describe("the public bootstrap guard", () => {
  it("this test run forbids the public list: asking for the default list throws", () => {
    // set for every project by vitest.config.ts (test.env), inherited by spawned agents
    expect(process.env[FORBID_ENV]).toBe("1");
    expect(() => publicBootstrapPeers()).toThrow(PublicBootstrapForbidden);
    expect(() => chooseBootstrap([], { ...process.env, ENTANGLE_BOOTSTRAP: undefined })).toThrow(PublicBootstrapForbidden);
  });

  it("forbidden by any value but empty or 0; the message says what to pass instead", () => {
    for (const v of ["1", "true", "yes"]) expect(() => publicBootstrapPeers({ [FORBID_ENV]: v })).toThrow(/--bootstrap/);
    expect(publicBootstrapPeers({ [FORBID_ENV]: "0" }).map(String)).toEqual([...PUBLIC_BOOTSTRAP_PEERS]);
    expect(publicBootstrapPeers({}).length).toBe(5);
  });

  it("an explicit list never touches the public one, even where it is forbidden", () => {
    expect(chooseBootstrap(LAB, { [FORBID_ENV]: "1" }).peers.map(String)).toEqual(LAB);
    expect(chooseBootstrap([], { [FORBID_ENV]: "1", ENTANGLE_BOOTSTRAP: "none" })).toEqual({ peers: [], source: "none" });
  });
});

describe("choosing the bootstrap list", () => {
  it("the built-in public list by default, where allowed", () => {
    const c = chooseBootstrap([], {});
    expect(c.source).toBe("built-in public list");
    expect(c.peers.map(String)).toEqual([...PUBLIC_BOOTSTRAP_PEERS]);
  });

  it("--bootstrap (repeatable, comma-separated too) wins over ENTANGLE_BOOTSTRAP (comma-separated)", () => {
    const env = { ENTANGLE_BOOTSTRAP: LAB[1] };
    expect(chooseBootstrap([LAB[0]], env)).toMatchObject({ source: "--bootstrap" });
    expect(chooseBootstrap([LAB[0]], env).peers.map(String)).toEqual([LAB[0]]);
    expect(chooseBootstrap([LAB.join(",")], env).peers.map(String)).toEqual(LAB);
    expect(chooseBootstrap([], { ENTANGLE_BOOTSTRAP: ` ${LAB[0]} , ${LAB[1]} ` })).toMatchObject({ source: "ENTANGLE_BOOTSTRAP" });
    expect(chooseBootstrap([], { ENTANGLE_BOOTSTRAP: LAB.join(",") }).peers.map(String)).toEqual(LAB);
  });

  it("none turns the DHT off, from either place, and does not mix with addresses", () => {
    expect(chooseBootstrap(["none"], {})).toEqual({ peers: [], source: "none" });
    expect(chooseBootstrap(["NONE"], { ENTANGLE_BOOTSTRAP: LAB[0] })).toEqual({ peers: [], source: "none" });
    expect(chooseBootstrap([], { ENTANGLE_BOOTSTRAP: "none" })).toEqual({ peers: [], source: "none" });
    expect(() => chooseBootstrap(["none", LAB[0]], {})).toThrow(AddrError);
  });

  it("refuses an address without a peer id, a bad peer id, or no port", () => {
    expect(() => chooseBootstrap(["/ip4/100.128.0.2/tcp/4001"], {})).toThrow(/names no peer id/);
    expect(() => chooseBootstrap(["100.128.0.2:4001"], {})).toThrow(/names no peer id/);
    expect(() => chooseBootstrap(["/ip4/100.128.0.2/tcp/4001/p2p/nope"], {})).toThrow(AddrError);
    expect(() => chooseBootstrap([`/ip4/100.128.0.2/p2p/${ID}`], {})).toThrow(/names no TCP port/);
  });
});
