#!/usr/bin/env bash
# Throughput, latency and CPU of the resh gateway (mode resh, 3 redis-server replicas) against one
# direct redis-server, in the same run, with redis-benchmark. Prints ratios gateway/direct (the median of the
# rounds), the gateway's own CPU per request (from /proc/PID/stat around each run), and a one-client row whose
# added p50 and p99 are the latency the gateway adds to a lone application thread.
#
#   benchmarks/gateway-vs-direct.sh [-n REQUESTS] [-c CLIENTS] [-r ROUNDS] [-l always|everysec|no] [-t TESTS] [-p PIPELINES]
#
# -l puts the gateway's ordered log on disk with that fsync mode (default: in memory).
# -t the redis-benchmark tests (default set,get; e.g. sadd,spop to see the cost of a gateway-seeded SPOP).
# -p the pipeline depths, quoted (default "1 16").
# -k off: no checkpoints (the gateway alone); default: the checkpoints examples/redis-3.yaml gets as shipped
#    (BGSAVE + rdb digest every 100,000 entries), whose forks and digests are part of the gateway's CPU.
#
# Needs redis-server and redis-benchmark (apt-get install redis-server redis-tools) and the .NET SDK.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
requests=200000 clients=50 rounds=3 log="" tests="set,get" pipelines="1 16" checkpoints=default
while getopts "n:c:r:l:t:p:k:" opt; do
  case $opt in
    n) requests=$OPTARG ;;
    c) clients=$OPTARG ;;
    r) rounds=$OPTARG ;;
    l) log=$OPTARG ;;
    t) tests=$OPTARG ;;
    p) pipelines=$OPTARG ;;
    k) checkpoints=$OPTARG ;;
    *) echo "usage: $0 [-n requests] [-c clients] [-r rounds] [-l fsync] [-t tests] [-p pipelines] [-k off|default]" >&2; exit 2 ;;
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
if [[ $checkpoints == off ]]; then
  printf 'checkpoint: off\n' >> "$work/bench.yaml"
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

hz=$(getconf CLK_TCK)
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12+$13}'; }

# One measurement: prints "rps p50_ms p99_ms cpu_us_per_request" for one test (cpu: of the process $4, if given).
measure() { # port test pipeline [pid] [clients] [requests]
  local before after n=${6:-$requests}
  before=$([[ -n "${4:-}" ]] && cpu_ticks "$4" || echo 0)
  redis-benchmark -p "$1" -t "$2" -n "$n" -c "${5:-$clients}" -P "$3" -q --csv 2>/dev/null \
    | tr -d '"' | awk -F, 'NR>1 {print $2, $5, $7}' > "$work/m"
  after=$([[ -n "${4:-}" ]] && cpu_ticks "$4" || echo 0)
  awk -v a="$after" -v b="$before" -v n="$n" -v hz="$hz" '{ printf "%s %s %s %.1f\n", $1, $2, $3, (a-b)*1e6/hz/n }' "$work/m"
}
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1)"
where="in memory"
[[ -n "$log" ]] && where="on disk, fsync $log"
echo "redis-benchmark -n $requests -c $clients, median of $rounds rounds each; gateway = resh with 3 redis-server replicas (f=1), ordered log $where, checkpoints $checkpoints"
printf "%-6s %-4s %-3s %11s %11s %6s %9s %9s %10s %10s %9s %8s\n" test P c direct_rps gateway_rps ratio direct_p50 gw_p50 added_p50 added_p99 gw_cpu/req cpu_ratio
row() { # test pipeline clients requests
  : > "$work/rows"
  for _ in $(seq 1 "$rounds"); do
    read -r drps dp50 dp99 dcpu < <(measure "$direct_port" "$1" "$2" "$redis_pid" "$3" "$4")
    read -r grps gp50 gp99 gcpu < <(measure "$gw_port" "$1" "$2" "$resh_pid" "$3" "$4")
    echo "$drps $grps $dp50 $gp50 $dp99 $gp99 $gcpu $dcpu" >> "$work/rows"
  done
  local col; declare -a med
  for col in 1 2 3 4 5 6 7 8; do med[$col]=$(awk -v c=$col '{print $c}' "$work/rows" | median); done
  local ratio; ratio=$(awk '{print $2/$1}' "$work/rows" | median)
  awk -v t="$1" -v p="$2" -v c="$3" -v d="${med[1]}" -v g="${med[2]}" -v r="$ratio" -v pd="${med[3]}" -v pg="${med[4]}" -v qd="${med[5]}" -v qg="${med[6]}" -v gc="${med[7]}" -v dc="${med[8]}" \
    'BEGIN { printf "%-6s %-4s %-3s %11.0f %11.0f %6.2f %7.3fms %7.3fms %+8.0fus %+8.0fus %8.1fus %8.2f\n", toupper(t), p, c, d, g, r, pd, pg, (pg-pd)*1000, (qg-qd)*1000, gc, gc/dc }'
}
for pipeline in $pipelines; do
  for t in ${tests//,/ }; do
    row "$t" "$pipeline" "$clients" "$requests"
  done
done
row get 1 1 $((requests / 10))
echo "gw_cpu/req: the gateway's CPU time per request; cpu_ratio: that over direct redis-server's own CPU per request"
echo "gateway status after the run:"
curl -s "127.0.0.1:$admin_port/status" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(" head", s["head"], "voting", s["voting"], [(r["id"], r["state"], r["mismatches"], r["recoveries"]) for r in s["replicas"]])'
