// An idle agent's memory (issue 10): libp2p's peer store and peer records sorted addresses and
// protocols with String.prototype.localeCompare, which loads ICU's collation data on first use:
// ~2.7 MiB more resident memory in every agent (measured: 81.3 -> 79.0 MiB idle, bundled). The
// patches (patches/@libp2p+peer-store+*.patch, patches/@libp2p+peer-record+*.patch) sort by code
// unit instead; each side only sorts for itself (dedupe, equality), nothing crosses the wire.
import { afterEach, describe, expect, it, vi } from "vitest";
import { generateKeyPair } from "@libp2p/crypto/keys";
import { defaultLogger } from "@libp2p/logger";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import { persistentPeerStore } from "@libp2p/peer-store";
import { PeerRecord } from "@libp2p/peer-record";
import { TypedEventEmitter } from "@libp2p/interface";
import { MemoryDatastore } from "datastore-core";
import { multiaddr } from "@multiformats/multiaddr";

afterEach(() => {
  vi.restoreAllMocks();
});

describe("no ICU collation on libp2p's peer store paths", () => {
  it("saving and merging a peer's addresses and protocols, and comparing peer records, never calls localeCompare", async () => {
    const compare = vi.spyOn(String.prototype, "localeCompare");
    const self = peerIdFromPrivateKey(await generateKeyPair("Ed25519"));
    const other = peerIdFromPrivateKey(await generateKeyPair("Ed25519"));
    const store = persistentPeerStore({ peerId: self, datastore: new MemoryDatastore(), events: new TypedEventEmitter(), logger: defaultLogger() });
    const addrs = ["/ip4/10.0.0.2/tcp/4001", "/ip4/10.0.0.1/tcp/4001", "/ip6/::1/tcp/4001", "/dns4/b.example/tcp/1"].map((a) => multiaddr(a));
    await store.save(other, {
      multiaddrs: addrs,
      protocols: ["/z/1.0.0", "/a/1.0.0", "/entangle/tunnel/1.1.0"],
      metadata: { b: new Uint8Array(1), a: new Uint8Array(1) },
    });
    await store.merge(other, { multiaddrs: [multiaddr("/ip4/10.0.0.3/tcp/4001")], protocols: ["/m/1.0.0"] });
    const peer = await store.get(other);
    expect(peer.addresses.map((a) => a.multiaddr.toString())).toContain("/ip4/10.0.0.3/tcp/4001");
    expect(peer.protocols).toEqual(["/a/1.0.0", "/entangle/tunnel/1.1.0", "/m/1.0.0", "/z/1.0.0"]);
    const r1 = new PeerRecord({ peerId: other, multiaddrs: addrs, seqNumber: 1n });
    const r2 = new PeerRecord({ peerId: other, multiaddrs: [...addrs].reverse(), seqNumber: 1n });
    expect(r1.equals(r2)).toBe(true);
    expect(compare).not.toHaveBeenCalled();
  });
});
