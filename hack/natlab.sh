#!/usr/bin/env bash
# The NAT lab: network namespaces on this machine forming a small internet (issue 9).
#
#   natlab-inet   the "internet": 100.128.0.0/24 on bridge inet0 (100.128/24 is just past the
#                 100.64/10 carrier-grade NAT block, so libp2p treats it as public, which AutoNAT,
#                 identify's observed addresses and DCUtR require). Three bootstrap/DHT nodes
#                 (100.128.0.2-4:4001, `entangle agent bootstrap`) and one relay (100.128.0.5:4001,
#                 `entangle agent relay`), all our own agent. 100.128.0.6 is left free on the
#                 bridge for tests: a member agent with a public address there relays for members.
#   natlab-ra/rb/rc   NAT routers: WAN 100.128.0.11/12/13 on inet0, LAN 192.168.{10,20,30}.1/24.
#                 nftables masquerade on the WAN; a and b: endpoint-independent mapping (Linux
#                 keeps the source port when it is free); c: `masquerade fully-random`
#                 (a new random port per connection: symmetric-like). New connections from the
#                 WAN, into the LAN or to the router itself, are dropped silently (RFC 5382 REQ-4:
#                 a NAT must not answer an unsolicited SYN with a reset; Linux's own stack would).
#                 One exception, as a user's router may have: rb forwards WAN port 4101 to
#                 natlab-b:4101 (a port-forwarded member announces 100.128.0.12:4101).
#   natlab-a/b/c  the sites: 192.168.{10,20,30}.2/24, default route via their router only.
#   control links (for tests, not part of the internet): root <-> site veth, 10.254.{1,2,3}.1/30
#                 in the root namespace, .2 in the site. Tests put targets and clients there.
#
# Nothing routes out of this machine: the lab namespaces have no link to the host's uplink, the
# internet namespace has no default route, and the root namespace gets a blackhole route for
# 100.128.0.0/24 so that nothing on the host can reach the lab's "public" addresses by its uplink.
#
#   bash hack/natlab.sh up     idempotent; last line: ENTANGLE_BOOTSTRAP=<multiaddrs>
#   bash hack/natlab.sh down   removes namespaces, processes, veths, nft tables, the route, the state dir
#   bash hack/natlab.sh status
#   bash hack/natlab.sh relay-stop|relay-start   kill the relay / start a new one (new identity, same address)
set -euo pipefail
cd "$(dirname "$0")/.."

STATE=${NATLAB_STATE:-/tmp/natlab}
NODE=$PWD/node_modules/.bin/node
ENTANGLE=$PWD/bin/entangle.js
INET=natlab-inet
SITES=(a b c)
NETS=(10 20 30)
PREFIX=100.128.0
BOOTSTRAP_IPS=(2 3 4)
RELAY_IP=5
MEMBER_IP=6
# the one port natlab-b's router forwards to natlab-b (a port-forwarded member)
FORWARD_PORT=4101
PORT=4001

log() { echo "natlab: $*" >&2; }

namespaces() { echo "$INET"; for s in "${SITES[@]}"; do echo "natlab-r$s natlab-$s"; done; }

down() {
  # our agents first (by the pids we recorded), then anything still running inside the lab
  if [ -d "$STATE" ]; then
    for f in "$STATE"/*.pid; do
      [ -e "$f" ] || continue
      kill "$(cat "$f")" 2>/dev/null || true
    done
  fi
  for ns in $(namespaces); do
    ip netns list | grep -qw "^$ns" || continue
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
  done
  sleep 0.2
  # a namespace takes its veth ends (and so their peers) and its nft tables with it
  for ns in $(namespaces); do
    if ip netns list | grep -qw "^$ns"; then ip netns del "$ns"; fi
  done
  for s in "${SITES[@]}"; do ip link del "nlh-$s" 2>/dev/null || true; done
  ip route del blackhole "$PREFIX.0/24" 2>/dev/null || true
  rm -rf "$STATE"
  log "down"
}

ns_sh() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

veth() { # veth NAME_A NS_A NAME_B NS_B (NS "" = root): made under unique names, moved, renamed
  local ta=nlt$$a tb=nlt$$b
  ip link add "$ta" type veth peer name "$tb"
  if [ -n "$2" ]; then ip link set "$ta" netns "$2" name "$1"; else ip link set "$ta" name "$1"; fi
  if [ -n "$4" ]; then ip link set "$tb" netns "$4" name "$3"; else ip link set "$tb" name "$3"; fi
}

build_net() {
  for ns in $(namespaces); do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
  done
  ip route add blackhole "$PREFIX.0/24"

  # the internet: one bridge, bootstrap and relay addresses on it
  ip -n $INET link add inet0 type bridge
  ip -n $INET link set inet0 up
  ip -n $INET addr add "$PREFIX.1/24" dev inet0
  for i in "${BOOTSTRAP_IPS[@]}" $RELAY_IP $MEMBER_IP; do ip -n $INET addr add "$PREFIX.$i/32" dev inet0; done

  local k=0
  for s in "${SITES[@]}"; do
    local net=${NETS[$k]} r=natlab-r$s site=natlab-$s wan=$PREFIX.$((11 + k))
    k=$((k + 1))
    # router WAN on the internet bridge
    veth "wan" "$r" "up-$s" "$INET"
    ip -n $INET link set "up-$s" master inet0
    ip -n $INET link set "up-$s" up
    ip -n "$r" addr add "$wan/24" dev wan
    ip -n "$r" link set wan up
    # router LAN <-> site
    veth "lan" "$r" "eth0" "$site"
    ip -n "$r" addr add "192.168.$net.1/24" dev lan
    ip -n "$r" link set lan up
    ip -n "$site" addr add "192.168.$net.2/24" dev eth0
    ip -n "$site" link set eth0 up
    ip -n "$site" route add default via "192.168.$net.1"
    ns_sh "$r" sysctl -qw net.ipv4.ip_forward=1
    local flags="" forward=""
    [ "$s" = c ] && flags="fully-random"
    # b forwards one port, as a user's router would: WAN $FORWARD_PORT -> natlab-b:$FORWARD_PORT
    [ "$s" = b ] && forward="iifname \"wan\" tcp dport $FORWARD_PORT dnat to 192.168.$net.2:$FORWARD_PORT;"
    ns_sh "$r" nft -f - <<NFT
table ip natlab {
  chain nat_out { type nat hook postrouting priority srcnat; oifname "wan" masquerade $flags; }
  chain nat_in { type nat hook prerouting priority dstnat; $forward }
  chain filter_fwd {
    type filter hook forward priority filter; policy drop;
    iifname "lan" oifname "wan" accept
    iifname "wan" oifname "lan" ct state established,related accept
    iifname "wan" oifname "lan" ct status dnat accept
  }
  # unsolicited SYNs to the router itself are dropped too, not answered with a reset (RFC 5382
  # REQ-4): a reset would also end the mapping of a hole punch whose SYNs crossed (README)
  chain wan_in { type filter hook input priority filter; policy accept; iifname "wan" ct state new drop; }
}
NFT
    # control link root <-> site (tests' targets and clients)
    veth "nlh-$s" "" "ctl" "$site"
    ip addr add "10.254.$k.1/30" dev "nlh-$s"
    ip link set "nlh-$s" up
    ip -n "$site" addr add "10.254.$k.2/30" dev ctl
    ip -n "$site" link set ctl up
  done
}

# start NAME NS ARGS...: runs an agent in NS, logs to $STATE/NAME.log, prints its peer id
start() {
  local name=$1 ns=$2
  shift 2
  ip netns exec "$ns" env ENTANGLE_FORBID_PUBLIC_BOOTSTRAP=1 ENTANGLE_LOG_LEVEL=${NATLAB_LOG_LEVEL:-info} \
    setsid "$NODE" "$ENTANGLE" "$@" </dev/null >"$STATE/$name.out" 2>"$STATE/$name.log" &
  echo $! >"$STATE/$name.pid"
  local id="" i
  for i in $(seq 1 150); do
    id=$(sed -n 's/.*"peerId":"\([^"]*\)".*"msg":"agent started".*/\1/p' "$STATE/$name.log" 2>/dev/null | head -1)
    [ -n "$id" ] && break
    if ! kill -0 "$(cat "$STATE/$name.pid")" 2>/dev/null; then
      log "$name exited:"
      tail -5 "$STATE/$name.log" >&2
      return 1
    fi
    sleep 0.1
  done
  [ -n "$id" ] || { log "$name did not start"; tail -5 "$STATE/$name.log" >&2; return 1; }
  echo "$id"
}

alive() {
  [ -f "$STATE/bootstrap" ] && [ -f "$STATE/relay.pid" ] || return 1
  for f in "$STATE"/*.pid; do kill -0 "$(cat "$f")" 2>/dev/null || return 1; done
  for ns in $(namespaces); do ip netns list | grep -qw "^$ns" || return 1; done
}

# three bootstrap nodes (each knows the ones before it), then the relay (knows all three)
start_agents() {
  local addrs=() i=0 id ip known all
  for ip in "${BOOTSTRAP_IPS[@]}"; do
    i=$((i + 1))
    known=$(IFS=,; echo "${addrs[*]:-none}")
    id=$(start "bootstrap$i" $INET agent bootstrap --p2p-listen "$PREFIX.$ip:$PORT" --bootstrap "$known") || return 1
    addrs+=("/ip4/$PREFIX.$ip/tcp/$PORT/p2p/$id")
  done
  all=$(IFS=,; echo "${addrs[*]}")
  id=$(start relay $INET agent relay --p2p-listen "$PREFIX.$RELAY_IP:$PORT" --bootstrap "$all") || return 1
  echo "$all" >"$STATE/bootstrap"
  echo "/ip4/$PREFIX.$RELAY_IP/tcp/$PORT/p2p/$id" >"$STATE/relay"
}

up() {
  if alive; then
    log "already up"
    echo "ENTANGLE_BOOTSTRAP=$(cat "$STATE/bootstrap")"
    return
  fi
  # a half-made lab (or a dead agent) is rebuilt from scratch
  down 2>/dev/null
  mkdir -p "$STATE"
  # build_net runs in its own shell so that `set -e` holds there (an `if` would switch it off)
  if ! bash "$0" _build || ! start_agents; then
    log "up failed; cleaning up"
    down
    exit 1
  fi
  log "up: sites natlab-a (192.168.10.2, control 10.254.1.2), natlab-b (192.168.20.2, 10.254.2.2), natlab-c (192.168.30.2, 10.254.3.2, random ports)"
  log "relay: $(cat "$STATE/relay")"
  echo "ENTANGLE_BOOTSTRAP=$(cat "$STATE/bootstrap")"
}

# the relay alone, for tests of its loss: stop kills it, start runs a new one (a new identity) at
# the same address and prints its multiaddr
relay_stop() {
  [ -f "$STATE/relay.pid" ] || { log "no relay running"; return 1; }
  local pid
  pid=$(cat "$STATE/relay.pid")
  kill -9 "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  rm -f "$STATE/relay.pid"
  log "relay stopped"
}

relay_start() {
  [ -f "$STATE/bootstrap" ] || { log "lab not up"; return 1; }
  [ -f "$STATE/relay.pid" ] && kill -0 "$(cat "$STATE/relay.pid")" 2>/dev/null && { log "relay already running"; cat "$STATE/relay"; return 0; }
  local id
  id=$(start relay $INET agent relay --p2p-listen "$PREFIX.$RELAY_IP:$PORT" --bootstrap "$(cat "$STATE/bootstrap")") || return 1
  echo "/ip4/$PREFIX.$RELAY_IP/tcp/$PORT/p2p/$id" | tee "$STATE/relay"
}

status() {
  if alive; then
    echo "up"
    echo "ENTANGLE_BOOTSTRAP=$(cat "$STATE/bootstrap")"
    echo "relay=$(cat "$STATE/relay")"
  else
    echo "down"
    return 1
  fi
}

[ "$(id -u)" = 0 ] || { log "needs root (network namespaces)"; exit 1; }
case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  relay-stop) relay_stop ;;
  relay-start) relay_start ;;
  _build) build_net ;;
  *)
    echo "usage: $0 up|down|status|relay-stop|relay-start" >&2
    exit 2
    ;;
esac
