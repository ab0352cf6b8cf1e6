// The JavaScript floor for hack/bench.ts: a relay of plain Node sockets, one TCP (or TLS)
// connection per client connection, no multiplexing, no framing of our own. Two of these
// processes stand where the two agents stand:
//   node hack/bench-pipe.ts LISTEN_PORT TARGET_HOST:PORT in=tcp|tls out=tcp|tls [CERT KEY]
// (in=tls: accept TLS with CERT/KEY; out=tls: dial TLS without verifying, as a benchmark only.)
import { readFileSync } from "node:fs";
import { createServer, connect, type Socket } from "node:net";
import * as tls from "node:tls";

const [listenPort, target, inArg, outArg, cert, key] = process.argv.slice(2);
const [host, port] = [target.slice(0, target.lastIndexOf(":")), Number(target.slice(target.lastIndexOf(":") + 1))];
const tlsIn = inArg === "in=tls";
const tlsOut = outArg === "out=tls";

function relay(client: Socket) {
  client.setNoDelay(true);
  const onUp = () => {
    client.pipe(up);
    up.pipe(client);
  };
  const up: Socket = tlsOut ? tls.connect({ host, port, rejectUnauthorized: false }, onUp) : connect({ host, port, noDelay: true, allowHalfOpen: true }, onUp);
  up.setNoDelay(true);
  const cut = () => (client.destroy(), up.destroy());
  client.on("error", cut);
  up.on("error", cut);
}

const server = tlsIn
  ? tls.createServer({ cert: readFileSync(cert), key: readFileSync(key), allowHalfOpen: true }, relay)
  : createServer({ allowHalfOpen: true, noDelay: true }, relay);
server.listen(Number(listenPort), "127.0.0.1");
