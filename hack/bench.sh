#!/usr/bin/env bash
# Benchmark on loopback, one run: the Entangle tunnel vs `ssh -L` (OpenSSH default cipher and
# aes128-gcm) vs direct TCP. Installs OpenSSH from Debian when missing and runs a throwaway
# sshd on 127.0.0.1 with its own keys. Prints a table of figures and ratios (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
# No benchmark, demo or soak may reach the public libp2p bootstrap peers: the built-in list is a
# hard error here, and agents run without a DHT unless ENTANGLE_BOOTSTRAP names the NAT lab's.
export ENTANGLE_FORBID_PUBLIC_BOOTSTRAP=1 ENTANGLE_BOOTSTRAP=${ENTANGLE_BOOTSTRAP:-none}

if ! command -v sshd >/dev/null && [ ! -x /usr/sbin/sshd ]; then
  echo "installing openssh-server/openssh-client from Debian..." >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server openssh-client) >/dev/null
fi

work=$(mktemp -d /tmp/entangle-bench.XXXXXX)
cleanup() { [ -f "$work/sshd.pid" ] && kill "$(cat "$work/sshd.pid")" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

ssh-keygen -q -t ed25519 -N "" -f "$work/host_key"
ssh-keygen -q -t ed25519 -N "" -f "$work/client_key"
cp "$work/client_key.pub" "$work/authorized_keys"
chmod 600 "$work/authorized_keys"
ssh_port=$(node_modules/.bin/node -e 's=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
cat > "$work/sshd_config" <<CFG
ListenAddress 127.0.0.1:$ssh_port
HostKey $work/host_key
PidFile $work/sshd.pid
AuthorizedKeysFile $work/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowTcpForwarding yes
StrictModes no
UsePAM no
CFG
mkdir -p /run/sshd
/usr/sbin/sshd -f "$work/sshd_config" -E "$work/sshd.log"

export BENCH_SSH_PORT=$ssh_port BENCH_SSH_KEY=$work/client_key BENCH_SSH_USER=$(id -un)
# the agents run bundled, as in the image (hack/build-agent.ts)
node_modules/.bin/node hack/build-agent.ts
node_modules/.bin/node hack/bench.ts "$@"
