#!/usr/bin/env bash
# Throughput and latency of the resh gateway (mode resh, 3 redis-server replicas) against one
# direct redis-server, in the same run, with redis-benchmark. Prints ratios gateway/direct.
#
#   benchmarks/gateway-vs-direct.sh [-n REQUESTS] [-c CLIENTS] [-r ROUNDS] [-l always|everysec|no] [-t TESTS] [-p PIPELINES]
#
# -l puts the gateway's ordered log on disk with that fsync mode (default: in memory).
# -t the redis-benchmark tests (default set,get; e.g. sadd,spop to see the cost of a gateway-seeded SPOP).
# -p the pipeline depths, quoted (default "1 16").
#
# Needs redis-server and redis-benchmark (apt-get install redis-server redis-tools) and the .NET SDK.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
requests=200000 clients=50 rounds=3 log="" tests="set,get" pipelines="1 16"
while getopts "n:c:r:l:t:p:" opt; do
  case $opt in
    n) requests=$OPTARG ;;
    c) clients=$OPTARG ;;
    r) rounds=$OPTARG ;;
    l) log=$OPTARG ;;
    t) tests=$OPTARG ;;
    p) pipelines=$OPTARG ;;
    *) echo "usage: $0 [-n requests] [-c clients] [-r rounds] [-l fsync] [-t tests] [-p pipelines]" >&2; exit 2 ;;
  esac
done

command -v redis-benchmark >/dev/null || { echo "needs redis-benchmark (apt-get install redis-tools)" >&2; exit 2; }
dotnet build src/Resh.Cli -c Release -nologo -clp:ErrorsOnly >/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
direct_port=$(free_port); gw_port=$(free_port); admin_port=$(free_port)
work=$(mktemp -d)
cleanup() {
  [[ -n "${resh_pid:-}" ]] && kill "$resh_pid" 2>/dev/null && wait "$resh_pid" 2>/dev/null || true
  [[ -n "${redis_pid:-}" ]] && kill "$redis_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

redis-server --port "$direct_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >/dev/null &
redis_pid=$!
sed -e "s/127.0.0.1:6380/127.0.0.1:$gw_port/" -e "s/127.0.0.1:6390/127.0.0.1:$admin_port/" examples/redis-3.yaml > "$work/bench.yaml"
if [[ -n "$log" ]]; then
  printf 'state-dir: %s/state\nlog:\n  fsync: %s\n' "$work" "$log" >> "$work/bench.yaml"
fi
dotnet src/Resh.Cli/bin/Release/net10.0/resh.dll run "$work/bench.yaml" --log-level Warning > "$work/resh.log" 2>&1 &
resh_pid=$!
for _ in $(seq 1 300); do
  redis-cli -p "$gw_port" ping >/dev/null 2>&1 && redis-cli -p "$direct_port" ping >/dev/null 2>&1 && break
  sleep 0.1
done
redis-cli -p "$gw_port" ping >/dev/null || { cat "$work/resh.log"; exit 1; }

# Warm up both (JIT of the gateway, allocator of redis) before anything is measured.
redis-benchmark -p "$gw_port" -t set,get -n 100000 -c "$clients" -q >/dev/null 2>&1
redis-benchmark -p "$gw_port" -t set,get -n 100000 -c "$clients" -P 16 -q >/dev/null 2>&1
redis-benchmark -p "$direct_port" -t set,get -n 100000 -c "$clients" -q >/dev/null 2>&1

# One measurement: prints "rps p50_ms" for one test.
measure() { # port test pipeline
  redis-benchmark -p "$1" -t "$2" -n "$requests" -c "$clients" -P "$3" -q --csv 2>/dev/null \
    | tr -d '"' | awk -F, 'NR>1 {print $2, $5}'
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1)"
where="in memory"
[[ -n "$log" ]] && where="on disk, fsync $log"
echo "redis-benchmark -n $requests -c $clients, best of $rounds rounds each; gateway = resh with 3 redis-server replicas (f=1), ordered log $where"
printf "%-6s %-4s %12s %12s %7s %10s %10s %11s\n" test P direct_rps gateway_rps ratio direct_p50 gw_p50 added_p50
for pipeline in $pipelines; do
  for t in ${tests//,/ }; do
    best_d=0 best_g=0 p50_d=0 p50_g=0
    for _ in $(seq 1 "$rounds"); do
      read -r rps p50 < <(measure "$direct_port" "$t" "$pipeline")
      if awk "BEGIN{exit !($rps > $best_d)}"; then best_d=$rps p50_d=$p50; fi
      read -r rps p50 < <(measure "$gw_port" "$t" "$pipeline")
      if awk "BEGIN{exit !($rps > $best_g)}"; then best_g=$rps p50_g=$p50; fi
    done
    awk -v t="$t" -v p="$pipeline" -v d="$best_d" -v g="$best_g" -v pd="$p50_d" -v pg="$p50_g" \
      'BEGIN { printf "%-6s %-4s %12.0f %12.0f %7.2f %8.3fms %8.3fms %+9.0fus\n", toupper(t), p, d, g, g/d, pd, pg, (pg-pd)*1000 }'
  done
done
echo "gateway status after the run:"
curl -s "127.0.0.1:$admin_port/status" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(" head", s["head"], "voting", s["voting"], [(r["id"], r["state"], r["mismatches"], r["recoveries"]) for r in s["replicas"]])'
