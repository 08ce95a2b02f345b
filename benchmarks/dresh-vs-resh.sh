#!/usr/bin/env bash
# D-RESH (three network-namespace hosts of examples/dresh/run.sh, a 3-member etcd cluster, three local
# redis-server replicas per host) against single-host resh with the same three replicas, in the same run:
# redis-benchmark SET against all three D-RESH hosts at once, then against one resh gateway with the same
# total number of clients; throughput, p50, and the batch sizes D-RESH reached. Then the floor: one client
# alone, D-RESH against a plain etcd put from the same host (the direct case of the ordering) and against resh.
# Needs root, what run.sh needs, and a Release build (dotnet build Resh.slnx -c Release).
#
#   benchmarks/dresh-vs-resh.sh [-n REQUESTS-PER-HOST] [-c CLIENTS-PER-HOST]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
requests=60000 clients=30
while getopts "n:c:" opt; do
  case $opt in
    n) requests=$OPTARG ;;
    c) clients=$OPTARG ;;
    *) echo "usage: $0 [-n requests-per-host] [-c clients-per-host]" >&2; exit 2 ;;
  esac
done
command -v redis-benchmark >/dev/null || { echo "needs redis-benchmark" >&2; exit 2; }
work=$(mktemp -d)
cleanup() {
  examples/dresh/run.sh down >/dev/null 2>&1 || true
  [[ -n "${resh_pid:-}" ]] && kill "$resh_pid" 2>/dev/null && wait "$resh_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# run_all HOSTS P: redis-benchmark on every host at once; prints "total_rps mean_p50_ms".
# Each call writes into a directory of its own: a call read through < <(...) may still be ending when the next begins.
run_all() {
  local p=$1; shift
  local i=0 jobs=() out
  out=$(mktemp -d -p "$work")
  for h in "$@"; do
    redis-benchmark -h "${h%:*}" -p "${h#*:}" -t set -n "$requests" -c "$clients" -P "$p" -r 1000000 -q --csv 2>/dev/null | tail -n 1 > "$out/$i" &
    jobs+=($!)
    i=$((i + 1))
  done
  wait "${jobs[@]}"
  cat "$out"/* | tr -d '"' | awk -F, '{ r += $2; p += $5; n++ } END { printf "%.0f %.3f\n", r, p / n }'
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1)"
examples/dresh/run.sh up >/dev/null
dresh=(10.213.50.1:6380 10.213.50.2:6380 10.213.50.3:6380)
run_all 1 "${dresh[@]}" >/dev/null # warm-up
read -r d1 d1p < <(run_all 1 "${dresh[@]}")
read -r d16 d16p < <(run_all 16 "${dresh[@]}")
# One client alone: the latency floor, without queueing behind other clients.
solo=$(redis-benchmark -h 10.213.50.1 -p 6380 -t set -n 3000 -c 1 -q --csv 2>/dev/null | tail -n 1 | tr -d '"' | cut -d, -f5)
# The direct case of the ordering: one client putting 100-byte keys into the same etcd cluster, from host a.
# Through the gRPC client D-RESH itself uses (benchmarks/Resh.Benchmarks etcd-put; HdrHistogram percentiles).
read -r etcd_put etcd_put99 watch50 watch99 < <(nsenter --net=/run/netns/resh-a dotnet benchmarks/Resh.Benchmarks/bin/Release/net10.0/Resh.Benchmarks.dll etcd-put http://10.213.50.1:2379 1000)
for h in a b c; do nsenter --net="/run/netns/resh-$h" curl -s 127.0.0.1:6390/status > "$work/status-$h.json"; done
batches=$(python3 -c '
import json,sys
b = [json.load(open(f))["etcd"] for f in sys.argv[1:]]
print(sum(x["batches"] for x in b), max(x["largestBatch"] for x in b))' "$work"/status-*.json)
examples/dresh/run.sh down >/dev/null

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
sed -e "s/127.0.0.1:6380/127.0.0.1:$port/" -e "/^admin:/d" examples/redis-3.yaml > "$work/resh.yaml"
dotnet src/Resh.Cli/bin/Release/net10.0/resh.dll run "$work/resh.yaml" --log-level Warning > "$work/resh.log" 2>&1 &
resh_pid=$!
for _ in $(seq 1 300); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
single=(127.0.0.1:$port 127.0.0.1:$port 127.0.0.1:$port)
run_all 1 "${single[@]}" >/dev/null
read -r s1 s1p < <(run_all 1 "${single[@]}")
read -r s16 s16p < <(run_all 16 "${single[@]}")
solo_resh=$(redis-benchmark -p "$port" -t set -n 3000 -c 1 -q --csv 2>/dev/null | tail -n 1 | tr -d '"' | cut -d, -f5)

read -r total largest <<< "$batches"
echo "redis-benchmark SET, $requests requests x 3 runs at once, $clients clients each; D-RESH: one run per host; resh: three runs against one gateway"
printf "%-3s %12s %10s %12s %10s %7s\n" P dresh_rps dresh_p50 resh_rps resh_p50 ratio
awk -v a="$d1" -v b="$d1p" -v c="$s1" -v d="$s1p" 'BEGIN { printf "%-3s %12.0f %8.3fms %12.0f %8.3fms %7.2f\n", 1, a, b, c, d, a/c }'
awk -v a="$d16" -v b="$d16p" -v c="$s16" -v d="$s16p" 'BEGIN { printf "%-3s %12.0f %8.3fms %12.0f %8.3fms %7.2f\n", 16, a, b, c, d, a/c }'
echo "D-RESH batches written: $total (warm-up included), largest $largest entries (about $(awk -v n="$total" -v r="$requests" 'BEGIN { printf "%.1f", 9 * r / n }') requests per batch)"
echo "one client alone, p50: D-RESH ${solo} ms, etcd put (direct, same cluster, gRPC) ${etcd_put} ms (p99 ${etcd_put99} ms; its watch event after ${watch50} ms, p99 ${watch99} ms), resh ${solo_resh} ms; D-RESH adds $(awk -v a="$solo" -v b="$etcd_put" 'BEGIN { printf "%.3f", a - b }') ms to the etcd put"
