#!/usr/bin/env bash
# Where the gateway's CPU goes: its CPU time per request, split by thread (thread-pool workers, the socket engine,
# tiered compilation, ...), for a given number of clients and pipeline depth, with the cores it kept busy and the
# same request count against one direct redis-server for scale. A profile to read before optimising the request path.
#
#   benchmarks/gateway-threads.sh [-n REQUESTS] [-c CLIENTS] [-P PIPELINE] [-t TEST]
#
# Starts `resh run` of examples/redis-3.yaml on free ports, warms it up with 20,000 requests, then samples
# /proc/PID/task/*/stat around the run (threads grouped by name; the fields after the name, which may hold spaces).
# Needs redis-server, redis-benchmark, redis-cli (apt-get install redis-server redis-tools), python3, the .NET SDK.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
requests=30000 clients=1 pipeline=1 test=get
while getopts "n:c:P:t:" o; do
  case $o in
    n) requests=$OPTARG ;; c) clients=$OPTARG ;; P) pipeline=$OPTARG ;; t) test=$OPTARG ;;
    *) echo "usage: $0 [-n requests] [-c clients] [-P pipeline] [-t test]" >&2; exit 2 ;;
  esac
done
dotnet build src/Resh.Cli -c Release -nologo -clp:ErrorsOnly >/dev/null
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
hz=$(getconf CLK_TCK)
dir=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"' EXIT

threads() { # pid -> "name ticks" per thread
  for t in /proc/"$1"/task/*; do
    printf '%s %s\n' "$(tr ' ' '_' < "$t/comm")" "$(sed 's/.*) //' "$t/stat" | awk '{print $12+$13}')"
  done 2>/dev/null
}
process() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12+$13}'; }

# One direct redis-server for scale.
dport=$(free_port)
redis-server --port "$dport" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" >/dev/null 2>&1 &
dpid=$!; pids+=("$dpid")
for _ in $(seq 1 100); do redis-cli -p "$dport" ping >/dev/null 2>&1 && break; sleep 0.05; done
redis-benchmark -p "$dport" -t "$test" -n 20000 -c "$clients" -P "$pipeline" -q >/dev/null 2>&1
before=$(process "$dpid"); t0=$(date +%s.%N)
redis-benchmark -p "$dport" -t "$test" -n "$requests" -c "$clients" -P "$pipeline" -q >/dev/null 2>&1
after=$(process "$dpid"); t1=$(date +%s.%N)
direct=$(awk -v a="$after" -v b="$before" -v n="$requests" -v hz="$hz" 'BEGIN { printf "%.1f", (a-b)*1e6/hz/n }')
direct_s=$(awk -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.2f", t1-t0 }')

port=$(free_port) admin=$(free_port)
sed -e "s/127.0.0.1:6380/127.0.0.1:$port/" -e "s/127.0.0.1:6390/127.0.0.1:$admin/" examples/redis-3.yaml > "$dir/c.yaml"
printf 'state-dir: %s/state\n' "$dir" >> "$dir/c.yaml"
dotnet src/Resh.Cli/bin/Release/net10.0/resh.dll run "$dir/c.yaml" --log-level Warning > "$dir/log" 2>&1 &
pid=$!; pids+=("$pid")
for _ in $(seq 1 300); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-benchmark -p "$port" -t "$test" -n 20000 -c "$clients" -P "$pipeline" -q >/dev/null 2>&1
threads "$pid" > "$dir/a"; pa=$(process "$pid"); t0=$(date +%s.%N)
redis-benchmark -p "$port" -t "$test" -n "$requests" -c "$clients" -P "$pipeline" -q >/dev/null 2>&1
threads "$pid" > "$dir/b"; pb=$(process "$pid"); t1=$(date +%s.%N)

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | awk '{print $1, $2}')"
echo "redis-benchmark -t $test -n $requests -c $clients -P $pipeline; gateway = resh with 3 redis-server replicas"
printf "%-22s %14s\n" thread "us per request"
awk -v n="$requests" -v hz="$hz" '
  FNR == NR { a[$1] += $2; next }
  { b[$1] += $2 }
  END { for (k in b) { d = b[k] - a[k]; if (d > 0) printf "%-22s %14.1f\n", k, d * 1e6 / hz / n } }' "$dir/a" "$dir/b" | sort -k2 -rn
awk -v n="$requests" -v hz="$hz" -v pa="$pa" -v pb="$pb" -v t0="$t0" -v t1="$t1" -v direct="$direct" -v ds="$direct_s" \
  'BEGIN { printf "gateway total %.1f us per request, %.2f cores busy over %.2f s; direct redis-server %.1f us per request (%.2f s)\n", (pb - pa) * 1e6 / hz / n, (pb - pa) / hz / (t1 - t0), t1 - t0, direct, ds }'
