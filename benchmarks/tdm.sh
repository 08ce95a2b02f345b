#!/usr/bin/env bash
# The transactional memory (Resh.Memory over etcd) against the same transfer workload done with etcd transactions
# directly (read both balances with their mod revisions, then a txn that writes both only if neither changed: etcd's
# own STM style), in the same run, on one local etcd: transactions/s, abort rate and latency at low contention (1000
# accounts) and high contention (4 accounts), with 1 and 3 nodes (in-process nodes with an etcd connection each; for
# etcd, that many connections) of 4 workers each. In the memory runs a pageserver takes a snapshot every second under
# the load: its pause (the pin of the state) is printed. Then how fast a node that took no part applies a log of commits
# (the memory updates every node with every commit rather than invalidating). Needs etcd and a Release build (dotnet build Resh.slnx -c Release).
#
#   benchmarks/tdm.sh [-s SECONDS-PER-RUN] [-w WORKERS-PER-NODE]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds=10 workers=4
while getopts "s:w:" opt; do
  case $opt in
    s) seconds=$OPTARG ;;
    w) workers=$OPTARG ;;
    *) echo "usage: $0 [-s seconds-per-run] [-w workers-per-node]" >&2; exit 2 ;;
  esac
done
command -v etcd >/dev/null || { echo "needs etcd (apt-get install etcd-server)" >&2; exit 2; }
bank=examples/tdm-bank/bin/Release/net10.0/tdm-bank.dll
[[ -f $bank ]] || { echo "build first: dotnet build Resh.slnx -c Release" >&2; exit 2; }
work=$(mktemp -d)
cleanup() {
  [[ -n "${etcd_pid:-}" ]] && kill "$etcd_pid" 2>/dev/null && wait "$etcd_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$((20000 + RANDOM % 20000))
url="http://127.0.0.1:$port"
etcd --data-dir "$work/etcd" --listen-client-urls "$url" --advertise-client-urls "$url" \
  --listen-peer-urls "http://127.0.0.1:$((port + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((port + 1))" \
  --initial-cluster "default=http://127.0.0.1:$((port + 1))" --quota-backend-bytes 8589934592 --log-level error >"$work/etcd.log" 2>&1 &
etcd_pid=$!
for _ in $(seq 100); do
  curl -sf "$url/health" >/dev/null 2>&1 && break
  sleep 0.1
done

echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "etcd $(etcd --version | head -1 | awk '{print $3}'), $seconds s per run, $workers workers per node"
printf "%-6s %-10s %-5s %12s %12s %10s %10s %10s %10s\n" contention case nodes "memory tx/s" "etcd tx/s" ratio "mem abort" "etcd abort" "mem p99ms"
for accounts in 1000 4; do
  contention=$([[ $accounts -eq 4 ]] && echo high || echo low)
  for nodes in 1 3; do
    m=$(dotnet "$bank" bench --mode memory --etcd "$url" --nodes "$nodes" --workers "$workers" --accounts "$accounts" --seconds "$seconds" | tail -n 1)
    e=$(dotnet "$bank" bench --mode etcd --etcd "$url" --nodes "$nodes" --workers "$workers" --accounts "$accounts" --seconds "$seconds" | tail -n 1)
    echo "# $m" >>"$work/raw"
    echo "# $e" >>"$work/raw"
    get() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k { print $2 }'; }
    mt=$(get "$m" tx_per_s) et=$(get "$e" tx_per_s)
    printf "%-6s %-10s %-5s %12s %12s %10s %10s %10s %10s\n" "$contention" "$accounts acc" "$nodes" "$mt" "$et" \
      "$(awk -v a="$mt" -v b="$et" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')" "$(get "$m" abort_rate)" "$(get "$e" abort_rate)" "$(get "$m" p99_ms)"
    pauses+=("nodes=$nodes accounts=$accounts: $(get "$m" snapshots) snapshots, pause max $(get "$m" pause_max_ms) ms, avg $(get "$m" pause_avg_ms) ms; total ok: memory $(get "$m" total_ok), etcd $(get "$e" total_ok); max restarts memory $(get "$m" max_restarts), etcd $(get "$e" max_restarts)")
  done
done
echo
echo "a node that took no part catching up (every node applies every commit): the records of a ${seconds} s run, from the start:"
dotnet "$bank" bench --mode replay --etcd "$url" --workers "$workers" --accounts 1000 --seconds "$seconds" | tail -n 1 | tee -a "$work/raw"
echo
echo "snapshots under load (memory runs):"
printf '  %s\n' "${pauses[@]}"
echo
echo "raw:"
cat "$work/raw"
