# shellcheck shell=bash
# A real node for a local cluster: sourced by hack/cluster.sh (`up NAME --node`), whose helpers
# (log, die, start, wait_for, live_pid, kctl, sign_cert, write_kubeconfig, is_built, go_env) and
# settings (CACHE_DIR, BIN_DIR, STATE_ROOT, KUBE_VERSION) it uses.
#
# The node of cluster NAME gets an index I (1..200, kept in DIR/node-index) and:
#   netns       entangle-NAME holds containerd, kubelet, kube-proxy and the image registry. Its own
#               iptables let every cluster's kube-proxy own the same 10.96.0.0/16 Service range.
#   veth        entvI (host, HOST_IP 10.251.I.1) <-> eth0 (netns, NODE_IP 10.251.I.2)
#   pods        10.244.I.0/24 on bridge cni0 in the netns. The host routes it via NODE_IP, so the
#               host and, through it, the other clusters' pods reach every pod IP.
#   API server  still on 127.0.0.1 only: socat on HOST_IP:6443 relays to it. The `kubernetes`
#               Service's EndpointSlice names HOST_IP:6443, so pods reach 10.96.0.1 with their token.
#   registry    containerd resolves every registry to 127.0.0.1:5000 inside the netns, where
#               hack/registry.ts (if present) serves the cached images. Nothing else answers there,
#               so a missing image fails fast and no pull ever leaves the machine.
#   cgroups     /entangle-NAME in every cgroup v1 hierarchy (kubelet's cgroupRoot)
#   host        while any node runs: ip_forward=1 and the nftables table entangle-nodes (nothing
#               forwarded from or to our ranges passes an interface that is not ours). Sysctls kubelet
#               changes and host paths it creates are recorded before the first node and put
#               back after the last one.

NODE_BINS=(kubelet kube-proxy kube-scheduler)
CRICTL_VERSION="${ENTANGLE_CRICTL_VERSION:-v1.37.0}"   # only for teardown (StopPodSandbox/RemovePodSandbox)
NODE_PACKAGES=(containerd runc containernetworking-plugins iptables nftables socat conntrack jq busybox-static)
SANDBOX_IMAGE="registry.k8s.io/pause:3.10"   # built by hack/images.sh, never pulled
POD_RANGE="10.244.0.0/16"
LINK_RANGE="10.251.0.0/16"
GUARD_TABLE="entangle-nodes"   # nftables table ip entangle-nodes: one `nft delete table` removes it
HOST_SAVED="$STATE_ROOT/.host-before"   # host sysctls and paths as they were before the first node
HOST_SYSCTLS=(net.ipv4.ip_forward vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
# PATH:PROGRAM: host paths kubelet and containerd use whatever their configuration says, removed
# after the last node if they did not exist before and no PROGRAM (ours or not) runs any more.
HOST_PATHS=(/run/netns: /run/containerd:containerd /var/lib/cni:containerd /var/lib/kubelet:kubelet
  /var/log/containers:kubelet /var/log/pods:kubelet)
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# ---------------------------------------------------------------------------------------------------
# build: Debian packages and crictl (the Kubernetes binaries come from cluster.sh's build_kube)
# ---------------------------------------------------------------------------------------------------

node_packages() {
  local missing=() p
  for p in "${NODE_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return
  log "installing Debian packages: ${missing[*]}"
  apt-get update -qq >&2 || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 \
    || die "apt-get install ${missing[*]} failed"
}

build_crictl() {
  is_built crictl "$CRICTL_VERSION" && return
  log "building crictl $CRICTL_VERSION"
  go_env
  # `go install pkg@version` builds in its own module context, which refuses -mod.
  GOFLAGS= GOBIN="$BIN_DIR" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION" \
    || die "go install crictl failed"
  echo "$CRICTL_VERSION" >"$BIN_DIR/.crictl.version"
}

# ---------------------------------------------------------------------------------------------------
# naming
# ---------------------------------------------------------------------------------------------------

# Lowest free index; runs under cmd_up's ports lock so concurrent `up`s never share one.
node_alloc_index() {
  local used i
  used=" $(cat "$STATE_ROOT"/*/node-index 2>/dev/null | tr '\n' ' ' || true) "
  for i in $(seq 1 200); do
    [[ "$used" == *" $i "* ]] && continue
    echo "$i" >"$1/node-index"
    return
  done
  die "no free node index (200 nodes running?)"
}

has_node() { [[ -f "$1/node-index" ]]; }

# Sets the node's names and addresses from DIR/node-index.
node_vars() {
  local dir=$1
  NODE_IDX="$(cat "$dir/node-index")"
  [[ "$NODE_IDX" =~ ^[0-9]+$ ]] || die "bad node index in $dir/node-index"
  local name
  name="$(basename "$dir")"
  ND="$dir/node"
  NETNS="entangle-$name"
  VETH="entv$NODE_IDX"
  HOST_IP="10.251.$NODE_IDX.1"
  NODE_IP="10.251.$NODE_IDX.2"
  POD_CIDR="10.244.$NODE_IDX.0/24"
  NODE_NAME="$name-node"
  CGROUP="entangle-$name"
  SOCK="$ND/run/containerd.sock"
  # nsenter, not `ip netns exec`: that one remounts /sys, which hides the cgroup hierarchies.
  IN_NETNS=(nsenter "--net=/run/netns/$NETNS" --)
}

node_print_env() {
  node_vars "$1"
  echo "NODE_IP=$NODE_IP"
  echo "HOST_IP=$HOST_IP"
}

# ---------------------------------------------------------------------------------------------------
# host-wide state, shared by all nodes (under a lock)
# ---------------------------------------------------------------------------------------------------

with_host_lock() {
  exec 7>"$STATE_ROOT/.nodes.lock"
  flock 7
  "$@"
  flock -u 7
  exec 7>&-
}

host_claim() {
  if [[ ! -f "$HOST_SAVED" ]]; then
    local k v p
    {
      for k in "${HOST_SYSCTLS[@]}"; do v="$(sysctl -n "$k" 2>/dev/null)" && echo "sysctl $k $v"; done
      for p in "${HOST_PATHS[@]}"; do [[ -e "${p%%:*}" ]] || echo "absent $p"; done
    } >"$HOST_SAVED.tmp"
    mv "$HOST_SAVED.tmp" "$HOST_SAVED"
  fi
  # Forwarded traffic of our ranges only ever goes between our veths: never out of the uplink, and
  # nothing from outside gets in. Its own table (not iptables' FORWARD chain) so that it works next
  # to legacy or nft iptables alike and goes away without a trace.
  nft -f - <<EOF || die "could not install the forwarding guard (nft)"
table ip $GUARD_TABLE
delete table ip $GUARD_TABLE
table ip $GUARD_TABLE {
  chain forward {
    type filter hook forward priority filter - 10; policy accept;
    ip saddr { $POD_RANGE, $LINK_RANGE } oifname != "entv*" drop
    ip daddr { $POD_RANGE, $LINK_RANGE } iifname != "entv*" drop
  }
}
EOF
  sysctl -qw net.ipv4.ip_forward=1
}

# After the last node: everything host_claim and the nodes changed, back as it was.
host_release() {
  ls "$STATE_ROOT"/*/node-index >/dev/null 2>&1 && return   # another node still runs
  [[ -f "$HOST_SAVED" ]] || return 0
  nft delete table ip "$GUARD_TABLE" 2>/dev/null || true
  local kind k v
  while read -r kind k v; do
    case "$kind" in
      sysctl) sysctl -qw "$k=$v" || log "could not restore $k=$v" ;;
      absent)
        local path="${k%%:*}" program="${k#*:}"
        if [[ -n "$program" ]] && pgrep -x "$program" >/dev/null; then
          log "leaving $path: a $program still runs"
        elif [[ "$path" == /run/netns ]]; then
          # `ip netns add` made it a (twice mounted) shared mount point; other tools' netns may
          # live there by now: then it stays.
          if [[ -z "$(ls -A /run/netns 2>/dev/null)" ]]; then
            while umount /run/netns 2>/dev/null; do :; done
            rmdir /run/netns 2>/dev/null || true
          fi
        else
          rm -rf "$path"
        fi
        ;;
    esac
  done <"$HOST_SAVED"
  rm -f "$HOST_SAVED"
  log "host restored (sysctls, forwarding guard, paths)"
}

# ---------------------------------------------------------------------------------------------------
# up
# ---------------------------------------------------------------------------------------------------

# API server flags a node needs: reach kubelets by InternalIP (not via the machine's resolver),
# webhooks and aggregated APIs by endpoint pod IP (the host routes pod IPs, not ClusterIPs), and
# authenticate to kubelets with a client certificate.
node_apiserver_args() {
  local pki=$1/pki
  [[ -f "$pki/apiserver-kubelet-client.crt" ]] \
    || sign_cert "$pki" apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$CLIENT_EXT"
  NODE_APISERVER_ARGS=(--kubelet-preferred-address-types InternalIP --enable-aggregator-routing=true
    --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" --kubelet-client-key "$pki/apiserver-kubelet-client.key")
}

node_network() {
  [[ -e "/run/netns/$NETNS" ]] || ip netns add "$NETNS"
  ip link show "$VETH" >/dev/null 2>&1 || ip link add "$VETH" type veth peer name eth0 netns "$NETNS"
  ip addr replace "$HOST_IP/24" dev "$VETH"
  ip link set "$VETH" up
  ip -n "$NETNS" addr replace "$NODE_IP/24" dev eth0
  ip -n "$NETNS" link set eth0 up
  ip -n "$NETNS" link set lo up
  ip -n "$NETNS" route replace default via "$HOST_IP"
  ip route replace "$POD_CIDR" via "$NODE_IP" dev "$VETH"
  "${IN_NETNS[@]}" sysctl -qw net.ipv4.ip_forward=1
  # kube-proxy's ClusterIP DNAT must also see pod-to-pod traffic on the same bridge.
  "${IN_NETNS[@]}" sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || log "no br_netfilter: same-node ClusterIP hairpin may fail"
}

# kubelet refuses a cgroupRoot missing from any v1 hierarchy; cpuset children start empty.
node_cgroups() {
  local h
  for h in /sys/fs/cgroup/*/; do
    [[ -f "$h/cgroup.procs" && ! -f "$h/cgroup.controllers" ]] || continue   # v1 hierarchies only
    mkdir -p "$h$CGROUP"
    if [[ -f "$h/cpuset.cpus" ]]; then
      cat "$h/cpuset.cpus" >"$h$CGROUP/cpuset.cpus"
      cat "$h/cpuset.mems" >"$h$CGROUP/cpuset.mems"
    fi
  done
}

node_credentials() {
  local dir=$1 pki=$1/pki api_port=$2
  sign_cert "$ND" kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" "$CLIENT_EXT"
  sign_cert "$ND" kube-proxy "/CN=system:kube-proxy" "$CLIENT_EXT"
  sign_cert "$ND" kube-scheduler "/CN=system:kube-scheduler" "$CLIENT_EXT"
  # Inside the netns the API server is HOST_IP:6443 (the relay); its certificate names `kubernetes`.
  local c
  for c in kubelet kube-proxy; do
    write_kubeconfig "$ND/$c.kubeconfig" "https://$HOST_IP:6443" "$c" "$ND/$c.crt" "$ND/$c.key" "$pki/ca.crt" \
      "entangle-$(basename "$dir")" kubernetes
  done
  write_kubeconfig "$ND/kube-scheduler.kubeconfig" "https://127.0.0.1:$api_port" kube-scheduler \
    "$ND/kube-scheduler.crt" "$ND/kube-scheduler.key" "$pki/ca.crt" "entangle-$(basename "$dir")"
}

# The relay and the `kubernetes` Service's endpoint (the API server's own reconciler is off).
node_api_endpoint() {
  local dir=$1 api_port=$2
  # -lf puts the state dir on socat's command line, which is how live_pid recognises it.
  start api-relay "$dir" socat -lf "$dir/logs/api-relay.socat.log" \
    "TCP-LISTEN:6443,bind=$HOST_IP,fork,reuseaddr" "TCP:127.0.0.1:$api_port"
  kctl "$dir" apply -f - >/dev/null <<EOF
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kubernetes-node
  namespace: default
  labels: {kubernetes.io/service-name: kubernetes, endpointslice.kubernetes.io/managed-by: entangle-cluster-sh}
addressType: IPv4
endpoints: [{addresses: ["$HOST_IP"], conditions: {ready: true}}]
ports: [{name: https, port: 6443, protocol: TCP}]
EOF
}

node_containerd() {
  local dir=$1
  cat >"$ND/containerd.toml" <<EOF
version = 2
root = "$ND/containerd/root"
state = "$ND/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$ND/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$SANDBOX_IMAGE"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$ND/cni"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$ND/certs.d"
EOF
  # Every registry host resolves to the netns' own 127.0.0.1:5000 and nowhere else.
  mkdir -p "$ND/certs.d/_default"
  cat >"$ND/certs.d/_default/hosts.toml" <<'EOF'
server = "http://127.0.0.1:5000"
[host."http://127.0.0.1:5000"]
  capabilities = ["pull", "resolve"]
EOF
  cat >"$ND/cni/10-entangle.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "entangle",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$ND/ipam", "ranges": [[{"subnet": "$POD_CIDR"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  start containerd "$dir" "${IN_NETNS[@]}" containerd --config "$ND/containerd.toml"
  wait_for "$dir" containerd 30 ctr -a "$SOCK" version
}

node_registry() {
  local dir=$1
  if [[ ! -f "$REPO_ROOT/hack/registry.ts" ]]; then
    log "no hack/registry.ts: every pull fails at once (nothing listens on the node's 127.0.0.1:5000)"
    return
  fi
  # Through a link in the state dir, so its command line names the cluster (see live_pid).
  mkdir -p "$CACHE_DIR/images/oci"
  ln -sfn "$CACHE_DIR/images/oci" "$ND/oci"
  start registry "$dir" "${IN_NETNS[@]}" "$REPO_ROOT/node_modules/.bin/node" "$REPO_ROOT/hack/registry.ts" \
    --listen 127.0.0.1:5000 --layout "$ND/oci"
}

# import DIR ARCHIVE...: OCI archives (annotated with io.containerd.image.name) into the node.
node_import() {
  local dir=$1 a
  shift
  node_vars "$dir"
  for a in "$@"; do
    [[ -f "$a" ]] || die "no such image archive: $a"
    ctr -a "$SOCK" -n k8s.io images import "$a" >/dev/null || die "ctr images import $a failed"
  done
  log "node $NODE_NAME: imported $# image archive(s)"
}

node_images() {
  local dir=$1 images_dir
  if [[ ! -f "$REPO_ROOT/hack/images.sh" ]]; then
    log "no hack/images.sh: no images imported (pods need the sandbox image $SANDBOX_IMAGE)"
    return
  fi
  images_dir="$(bash "$REPO_ROOT/hack/images.sh" build | sed -n 's/^IMAGES_DIR=//p' | tail -n 1)"
  [[ -d "$images_dir" ]] || die "hack/images.sh build printed no IMAGES_DIR="
  local archives=("$images_dir"/*.tar)
  [[ -f "${archives[0]}" ]] || die "no image archives in $images_dir"
  node_import "$dir" "${archives[@]}"
}

node_kubelet() {
  local dir=$1
  echo "nameserver 127.0.0.1" >"$ND/resolv.conf"   # no cluster DNS; never the machine's resolver
  cat >"$ND/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false                 # this host has cgroup v1, refused by default since 1.35
cgroupDriver: cgroupfs              # containerd 1.6 cannot report one; kubelet takes this
cgroupRoot: /$CGROUP
containerRuntimeEndpoint: unix://$SOCK
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication: {anonymous: {enabled: false}, webhook: {enabled: true}, x509: {clientCAFile: "$dir/pki/ca.crt"}}
authorization: {mode: Webhook}
resolvConf: $ND/resolv.conf
podLogsDir: $ND/pod-logs
podCIDR: $POD_CIDR
maxPods: 50
failSwapOn: false
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
EOF
  start kubelet "$dir" "${IN_NETNS[@]}" "$BIN_DIR/kubelet" --config "$ND/kubelet.yaml" \
    --kubeconfig "$ND/kubelet.kubeconfig" --root-dir "$ND/kubelet" --cert-dir "$ND/kubelet/pki" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP"
}

node_kube_proxy() {
  local dir=$1
  # conntrack values 0: kube-proxy would otherwise set host-wide nf_conntrack sysctls.
  cat >"$ND/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: "$ND/kube-proxy.kubeconfig"}
hostnameOverride: $NODE_NAME
bindAddress: $NODE_IP
clusterCIDR: $POD_CIDR
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["$NODE_IP/32"]
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {localhostNodePorts: false, syncPeriod: 10s, minSyncPeriod: 1s}
EOF
  start kube-proxy "$dir" "${IN_NETNS[@]}" "$BIN_DIR/kube-proxy" --config "$ND/kube-proxy.yaml"
}

node_ready() {
  [[ "$(kctl "$1" get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}

# node_up DIR API_PORT: after the control plane is ready; returns once the Node is Ready.
node_up() {
  local dir=$1 api_port=$2 t0=$SECONDS
  node_vars "$dir"
  mkdir -p "$ND"/{run,cni,ipam,kubelet,pod-logs,opt,containerd}
  log "node $NODE_NAME: netns $NETNS, NODE_IP $NODE_IP, HOST_IP $HOST_IP, pods $POD_CIDR"
  with_host_lock host_claim
  node_network
  node_cgroups
  node_credentials "$dir" "$api_port"
  node_api_endpoint "$dir" "$api_port"
  node_containerd "$dir"
  node_registry "$dir"
  node_images "$dir"
  node_kubelet "$dir"
  node_kube_proxy "$dir"
  start kube-scheduler "$dir" "$BIN_DIR/kube-scheduler" --kubeconfig "$ND/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig "$ND/kube-scheduler.kubeconfig" --authorization-kubeconfig "$ND/kube-scheduler.kubeconfig" \
    --leader-elect=false --secure-port 0
  wait_for "$dir" "node $NODE_NAME Ready" 120 node_ready "$dir"
  log "node $NODE_NAME Ready in $((SECONDS - t0))s"
}

node_healthy() {
  local dir=$1 p
  node_vars "$dir"
  for p in containerd kubelet kube-proxy kube-scheduler api-relay; do live_pid "$dir" "$p" >/dev/null || return 1; done
  node_ready "$dir"
}

# ---------------------------------------------------------------------------------------------------
# down
# ---------------------------------------------------------------------------------------------------

# stop_processes DIR NAME...: TERM them all at once, KILL what still runs after 10 s.
stop_processes() {
  local dir=$1 p pid pids=()
  shift
  for p in "$@"; do
    pid="$(live_pid "$dir" "$p")" && kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
}

# Every process in the node's cgroups or network namespace: only ours can be there.
node_processes() {
  if [[ -d "/sys/fs/cgroup/pids/$CGROUP" ]]; then
    find "/sys/fs/cgroup/pids/$CGROUP" -name cgroup.procs -exec cat {} + 2>/dev/null || true
  fi
  [[ -e "/run/netns/$NETNS" ]] && ip netns pids "$NETNS" 2>/dev/null
  return 0
}

node_down() {
  local dir=$1 pid
  node_vars "$dir"
  # kubelet first, so it starts nothing new; then every pod through CRI (StopPodSandbox runs the
  # CNI DEL and removes the pod's netns; RemovePodSandbox its shim and state).
  stop_processes "$dir" kube-scheduler kubelet kube-proxy
  if live_pid "$dir" containerd >/dev/null && [[ -x "$BIN_DIR/crictl" ]]; then
    timeout 60 "$BIN_DIR/crictl" -r "unix://$SOCK" -t 20s rmp -fa >/dev/null 2>&1 || log "crictl rmp failed: sweeping"
  fi
  stop_processes "$dir" registry containerd api-relay
  # Whatever survived (a shim or container if CRI failed).
  for pid in $(node_processes | sort -u); do kill -KILL "$pid" 2>/dev/null || true; done
  sleep 0.2
  # Mounts below the state dir (volumes, rootfs, shm) deepest first; then pod netns left behind.
  local m
  for m in $(awk -v d="$dir/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "could not unmount $m"
  done
  # The netns takes its veth end (and so the pair, and the host route), the bridge, pod veths and
  # kube-proxy's iptables with it; the rest is for a half-made node.
  ip netns del "$NETNS" 2>/dev/null || true
  ip link del "$VETH" 2>/dev/null || true
  ip route del "$POD_CIDR" 2>/dev/null || true
  local h
  for h in /sys/fs/cgroup/*/"$CGROUP"; do
    [[ -d "$h" ]] || continue
    find "$h" -depth -type d -exec rmdir {} + 2>/dev/null || log "cgroup $h still in use"
  done
  rm -f "$dir/node-index"
  with_host_lock host_release
  log "node $NODE_NAME removed"
}
