#!/usr/bin/env bash
# What verification between checkpoints (verify-every) costs: the gateway of examples/redis-3.yaml with and without
# `verify-every`, alternating rounds on the same machine, under SETs of many distinct keys (every write a new key is
# the worst case: each round then compares its maximum of keys). Prints throughput, the gateway's CPU per request, the
# replicas' CPU per request and the keys the rounds compared, per round and as the ratio of the means.
#
#   benchmarks/verify-cost.sh [-n REQUESTS] [-r KEYSPACE] [-k ROUNDS] [-e EVERY] [-c CLIENTS]
#
# Defaults: 200,000 SETs after 100,000 to warm up, -r 100000, 2 rounds each, verify-every 1s, 50 clients.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
requests=200000 keyspace=100000 rounds=2 every=1s clients=50
while getopts "n:r:k:e:c:" opt; do
  case $opt in
    n) requests=$OPTARG ;;
    r) keyspace=$OPTARG ;;
    k) rounds=$OPTARG ;;
    e) every=$OPTARG ;;
    c) clients=$OPTARG ;;
    *) echo "usage: $0 [-n REQUESTS] [-r KEYSPACE] [-k ROUNDS] [-e EVERY] [-c CLIENTS]" >&2; exit 2 ;;
  esac
done
for tool in redis-server redis-benchmark redis-cli curl python3; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install redis-server redis-tools curl python3)" >&2; exit 2; }
done
dotnet build src/Resh.Cli -c Release -nologo -v q -clp:ErrorsOnly >/dev/null
dll=$PWD/src/Resh.Cli/bin/Release/net10.0/resh.dll
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
results=$(mktemp)
pid=""
dir=""
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; [[ -n $dir ]] && rm -rf "$dir"; rm -f "$results"; }
trap cleanup EXIT

# ticks PID...: utime+stime of the processes, summed.
ticks() { local sum=0 p; for p in "$@"; do sum=$((sum + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$sum"; }

round() { # label extra-configuration-line
  local port admin before after rbefore rafter rps keys replicas
  dir=$(mktemp -d) port=$(free_port) admin=$(free_port)
  sed -e "s/127.0.0.1:6380/127.0.0.1:$port/" -e "s/127.0.0.1:6390/127.0.0.1:$admin/" examples/redis-3.yaml > "$dir/c.yaml"
  printf 'state-dir: %s/state\n%s\n' "$dir" "$2" >> "$dir/c.yaml"
  dotnet "$dll" run "$dir/c.yaml" --log-level Warning > "$dir/log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-benchmark -p "$port" -t set -n 100000 -c "$clients" -r "$keyspace" -q >/dev/null 2>&1
  replicas=$(curl -s "127.0.0.1:$admin/status" | python3 -c 'import json,sys; print(" ".join(str(r["pid"]) for r in json.load(sys.stdin)["replicas"]))')
  # shellcheck disable=SC2086
  before=$(ticks "$pid") rbefore=$(ticks $replicas)
  rps=$(redis-benchmark -p "$port" -t set -n "$requests" -c "$clients" -r "$keyspace" -q --csv 2>/dev/null | tr -d '"' | awk -F, 'NR>1 {print $2}')
  # shellcheck disable=SC2086
  after=$(ticks "$pid") rafter=$(ticks $replicas)
  keys=$(curl -s "127.0.0.1:$admin/status" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("verifiedKeys", 0))')
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  rm -rf "$dir"; dir=""
  awk -v l="$1" -v r="$rps" -v a="$after" -v b="$before" -v ra="$rafter" -v rb="$rbefore" -v n="$requests" -v k="$keys" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%-4s %9.0f %8.1f %8.1f %9d\n", l, r, (a-b)*1e6/hz/n, (ra-rb)*1e6/hz/n, k }' | tee -a "$results"
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1)"
echo "redis-benchmark -t set -n $requests -c $clients -r $keyspace through examples/redis-3.yaml; on = verify-every: $every"
echo "run  requests/s  gw_us/req  rep_us/req  keys_compared"
for _ in $(seq 1 "$rounds"); do
  round off ""
  round on "verify-every: $every"
done
awk '{ n[$1]++; r[$1]+=$2; g[$1]+=$3; p[$1]+=$4 }
  END { printf "means: off %.0f/s %.1f us, on %.0f/s %.1f us; throughput on/off %.2f, gateway CPU on-off %+.1f us per request, replicas %+.1f us\n",
        r["off"]/n["off"], g["off"]/n["off"], r["on"]/n["on"], g["on"]/n["on"], (r["on"]/n["on"])/(r["off"]/n["off"]),
        g["on"]/n["on"]-g["off"]/n["off"], p["on"]/n["on"]-p["off"]/n["off"] }' "$results"
