// Service discovery on the Kademlia DHT. Exposing members announce themselves as providers of a
// key derived from the token and the service (token.ts providerKey): the DHT sees 32 opaque bytes,
// never a service name or a network. Connecting members look the key up and dial what they find;
// a found peer still proves membership before any tunnel (member-gate), so a forged provider
// record gets nothing.
import type { Libp2p } from "libp2p";
import type { PeerInfo } from "@libp2p/interface";
import { CID } from "multiformats/cid";
import * as raw from "multiformats/codecs/raw";
import * as Digest from "multiformats/hashes/digest";
import { sha256 } from "multiformats/hashes/sha2";
import { providerKey, type DerivedKeys } from "./token.ts";
import type { Logger } from "./log.ts";

/** The CID providers of `service` are announced under (raw codec, the derived key as its sha2-256 digest). */
export function providerCid(keys: DerivedKeys, service: string): CID {
  return CID.createV1(raw.code, Digest.create(sha256.code, providerKey(keys, service)));
}

/** Re-announce this often: a provider's addresses change (a relay reservation, a new mapping). */
const PROVIDE_EVERY_MS = 30_000;
/** Look up this often while no provider is known, then every FIND_IDLE_MS. */
const FIND_EVERY_MS = 2_000;
const FIND_IDLE_MS = 30_000;
const QUERY_TIMEOUT_MS = 15_000;

export interface DhtDiscoveryOptions {
  node: Libp2p;
  keys: DerivedKeys;
  service: string;
  /** provide: announce ourselves (expose); find: look providers up (connect) */
  mode: "provide" | "find";
  log: Logger;
  /** a provider was found (never ourselves) */
  onProvider?: (peer: PeerInfo) => void;
  /** true while a usable provider is known: look-ups slow down */
  satisfied?: () => boolean;
  /** time from start to the first provider found, in seconds */
  onFirstFound?: (seconds: number) => void;
  /** what is provided, for the log ("provider" by default; "member relay") */
  what?: string;
  /** find: look up again after this many ms while not satisfied (FIND_EVERY_MS by default) */
  searchEveryMs?: number;
}

export class DhtDiscovery {
  private readonly cid: CID;
  private readonly abort = new AbortController();
  private timer?: NodeJS.Timeout;
  private readonly started = performance.now();
  private firstFound = false;
  private lastAddrs = "";

  private readonly opts: DhtDiscoveryOptions;

  constructor(opts: DhtDiscoveryOptions) {
    this.opts = opts;
    this.cid = providerCid(opts.keys, opts.service);
  }

  start(): void {
    if (this.opts.mode === "provide") {
      // announce again as soon as our addresses change (a relay reservation is the one that matters)
      this.opts.node.addEventListener("self:peer:update", this.onSelfUpdate);
    }
    this.schedule(0);
  }

  stop(): void {
    this.abort.abort();
    clearTimeout(this.timer);
    this.opts.node.removeEventListener("self:peer:update", this.onSelfUpdate);
  }

  private readonly onSelfUpdate = (): void => {
    const addrs = this.opts.node.getMultiaddrs().map(String).sort().join(",");
    if (addrs === this.lastAddrs) return;
    this.schedule(0);
  };

  private schedule(ms: number): void {
    if (this.abort.signal.aborted) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.run(), ms);
    this.timer.unref();
  }

  private async run(): Promise<void> {
    const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(QUERY_TIMEOUT_MS)]);
    const { node, log } = this.opts;
    let next: number;
    try {
      if (this.opts.mode === "provide") {
        this.lastAddrs = node.getMultiaddrs().map(String).sort().join(",");
        await node.contentRouting.provide(this.cid, { signal });
        log.debug({ addrs: this.lastAddrs.split(","), what: this.opts.what ?? "provider" }, "announced on the DHT");
        next = PROVIDE_EVERY_MS;
      } else {
        for await (const peer of node.contentRouting.findProviders(this.cid, { signal })) {
          if (peer.id.equals(node.peerId)) continue;
          if (!this.firstFound) {
            this.firstFound = true;
            const seconds = (performance.now() - this.started) / 1000;
            this.opts.onFirstFound?.(seconds);
            log.info({ peer: peer.id.toString(), seconds: Math.round(seconds * 1000) / 1000 }, `first ${this.opts.what ?? "provider"} found on the DHT`);
          }
          this.opts.onProvider?.(peer);
        }
        next = this.opts.satisfied?.() === true ? FIND_IDLE_MS : (this.opts.searchEveryMs ?? FIND_EVERY_MS);
      }
    } catch (err) {
      if (this.abort.signal.aborted) return;
      // no DHT peers yet, a query timed out: try again soon
      log.debug({ err: (err as Error).message, mode: this.opts.mode }, "DHT query failed");
      next = FIND_EVERY_MS;
    }
    this.schedule(next);
  }
}
