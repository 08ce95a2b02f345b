#!/usr/bin/env bash
# D-RESH on one machine: three "hosts" as network namespaces resh-a, resh-b, resh-c on a bridge resh-br0
# (10.213.50.0/24; this machine is 10.213.50.254), each running one member of a three-member etcd cluster and
# `resh run host-X.yaml` with three local redis-server replicas. Needs root, iproute2, util-linux (nsenter),
# etcd-server, redis-server and the .NET SDK.
#
#   examples/dresh/run.sh up       # build, create the hosts, start etcd and the three gateways
#   redis-cli -h 10.213.50.1 -p 6380 set k v ; redis-cli -h 10.213.50.3 -p 6380 get k
#   examples/dresh/run.sh status   # each host's /status (etcd endpoint, applied revision, batches, replicas)
#   examples/dresh/run.sh down     # stop everything and remove the namespaces, the bridge and /tmp/resh-dresh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
state=/tmp/resh-dresh
hosts=(a b c)
resh_dll="$root/src/Resh.Cli/bin/Release/net10.0/resh.dll"

in_host() { local h=$1; shift; nsenter --net="/run/netns/resh-$h" "$@"; }

up() {
  for tool in ip nsenter etcd redis-server dotnet; do
    command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 2; }
  done
  dotnet build "$root/src/Resh.Cli" -c Release -nologo -clp:ErrorsOnly >/dev/null
  mkdir -p "$state"
  ip link add resh-br0 type bridge
  ip addr add 10.213.50.254/24 dev resh-br0
  ip link set resh-br0 up
  local cluster="a=http://10.213.50.1:2380,b=http://10.213.50.2:2380,c=http://10.213.50.3:2380"
  for i in 0 1 2; do
    local h=${hosts[$i]} ip="10.213.50.$((i + 1))"
    ip netns add "resh-$h"
    ip link add "resh-v$h" type veth peer name eth0 netns "resh-$h"
    ip link set "resh-v$h" master resh-br0 up
    ip -n "resh-$h" addr add "$ip/24" dev eth0
    ip -n "resh-$h" link set eth0 up
    ip -n "resh-$h" link set lo up
    in_host "$h" setsid etcd --name "$h" --data-dir "$state/etcd-$h" \
      --listen-client-urls "http://$ip:2379" --advertise-client-urls "http://$ip:2379" \
      --listen-peer-urls "http://$ip:2380" --initial-advertise-peer-urls "http://$ip:2380" \
      --initial-cluster "$cluster" --initial-cluster-state new --log-level error >"$state/etcd-$h.log" 2>&1 </dev/null &
  done
  for i in 0 1 2; do
    local h=${hosts[$i]}
    in_host "$h" setsid dotnet "$resh_dll" run "$here/host-$h.yaml" >"$state/resh-$h.log" 2>&1 </dev/null &
  done
  for h in "${hosts[@]}"; do
    for _ in $(seq 1 600); do
      grep -q "resh: serving" "$state/resh-$h.log" 2>/dev/null && break
      sleep 0.1
    done
    grep -q "resh: serving" "$state/resh-$h.log" || { echo "host $h did not start; see $state/resh-$h.log" >&2; tail -5 "$state/resh-$h.log" >&2; exit 1; }
    echo "host $h serving on 10.213.50.$(( $(printf '%d' "'$h") - 96 )):6380"
  done
}

status() {
  for h in "${hosts[@]}"; do
    echo "== host $h"
    in_host "$h" dotnet "$resh_dll" status --admin 127.0.0.1:6390 || true
    in_host "$h" curl -s 127.0.0.1:6390/status | python3 -c 'import json,sys; print(" etcd:", json.load(sys.stdin).get("etcd"))' 2>/dev/null || true
  done
}

down() {
  for h in "${hosts[@]}"; do
    if [[ -e "/run/netns/resh-$h" ]]; then
      ip netns pids "resh-$h" | xargs -r kill -9 2>/dev/null || true
    fi
  done
  sleep 0.5
  for h in "${hosts[@]}"; do
    ip netns del "resh-$h" 2>/dev/null || true
  done
  ip link del resh-br0 2>/dev/null || true
  rm -rf "$state"
}

case "${1:-}" in
  up) up ;;
  status) status ;;
  down) down ;;
  *) echo "usage: $0 up|status|down" >&2; exit 2 ;;
esac
