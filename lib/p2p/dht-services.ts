// The optional libp2p services of node.ts (loaded by it only when asked for): the Kademlia DHT
// (members as clients; bootstrap nodes and relays as servers), AutoNAT and DCUtR.
import type { identify } from "@libp2p/identify";
import { kadDHT, passthroughMapper, removePrivateAddressesMapper } from "@libp2p/kad-dht";
import { ping } from "@libp2p/ping";
import { autoNAT } from "@libp2p/autonat";
import { dcutr } from "@libp2p/dcutr";
import type { NodeOptions } from "./node.ts";
import { freeDialPort, punchingDcutr, samePortDials } from "./punch.ts";

export { samePortDials, freeDialPort };

export function dhtServices(opts: NodeOptions): Record<string, unknown> {
  return {
    ...(opts.dht !== undefined
      ? {
          ping: ping(),
          // typed against its own components (ping required), which the conditional spread makes optional
          dht: kadDHT({
            clientMode: opts.dht === "client",
            peerInfoMapper: opts.dhtPrivate === true ? passthroughMapper : removePrivateAddressesMapper,
          }) as unknown as (components: Parameters<ReturnType<typeof identify>>[0]) => unknown,
        }
      : {}),
    // DCUtR with our NAT mapping (punch.ts; the TCP dials share a port for it: node.ts)
    ...(opts.holePunching === true
      ? { autoNAT: autoNAT(), dcutr: punchingDcutr(dcutr(), undefined, { onPunch: opts.onPunch, relayedBusy: opts.relayedBusy }) }
      : {}),
  };
}
