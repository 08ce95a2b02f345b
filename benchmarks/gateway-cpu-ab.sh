#!/usr/bin/env bash
# The gateway's own CPU time per request, for two builds of resh, alternating rounds on the same machine: a
# measure of what a change costs that throughput ratios (noisy on a shared 2-core machine) cannot show.
#
#   benchmarks/gateway-cpu-ab.sh A_RESH_DLL B_RESH_DLL [ROUNDS] [TEST] [CLIENTS] [PIPELINE] [REQUESTS]
#
# e.g. git worktree add /tmp/before <rev> && (cd /tmp/before && dotnet build src/Resh.Cli -c Release)
#      benchmarks/gateway-cpu-ab.sh /tmp/before/src/Resh.Cli/bin/Release/net10.0/resh.dll \
#        src/Resh.Cli/bin/Release/net10.0/resh.dll 6 set
# Each round starts `resh run` of examples/redis-3.yaml on free ports, warms it up, runs 200,000 requests
# (default: redis-benchmark -c 50, P=1) and reads the gateway's utime+stime from /proc. Prints mean and sd per build.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[[ $# -ge 2 ]] || { echo "usage: $0 A_RESH_DLL B_RESH_DLL [ROUNDS] [TEST] [CLIENTS] [PIPELINE] [REQUESTS]" >&2; exit 2; }
a=$1 b=$2 rounds=${3:-6} test=${4:-set} clients=${5:-50} pipeline=${6:-1} requests=${7:-200000}
command -v redis-benchmark >/dev/null || { echo "needs redis-benchmark (apt-get install redis-tools)" >&2; exit 2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
results=$(mktemp)
trap 'rm -f "$results"' EXIT

round() { # dll label
  local dir port admin pid before after rps
  dir=$(mktemp -d) port=$(free_port) admin=$(free_port)
  sed -e "s/127.0.0.1:6380/127.0.0.1:$port/" -e "s/127.0.0.1:6390/127.0.0.1:$admin/" examples/redis-3.yaml > "$dir/c.yaml"
  printf 'state-dir: %s/state\n' "$dir" >> "$dir/c.yaml"
  dotnet "$1" run "$dir/c.yaml" --log-level Warning > "$dir/log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-benchmark -p "$port" -t set,get -n 100000 -c "$clients" -P "$pipeline" -q >/dev/null 2>&1
  before=$(awk '{print $14+$15}' "/proc/$pid/stat")
  rps=$(redis-benchmark -p "$port" -t "$test" -n "$requests" -c "$clients" -P "$pipeline" -q --csv 2>/dev/null | tr -d '"' | awk -F, 'NR>1 {print $2}')
  after=$(awk '{print $14+$15}' "/proc/$pid/stat")
  kill "$pid"; wait "$pid" 2>/dev/null || true; rm -rf "$dir"
  awk -v l="$2" -v r="$rps" -v a="$after" -v b="$before" -v n="$requests" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%s %.0f %.2f\n", l, r, (a-b)*1e6/hz/n }' | tee -a "$results"
}

for _ in $(seq 1 "$rounds"); do
  round "$a" A
  round "$b" B
done
awk '{ n[$1]++; r[$1]+=$2; c[$1]+=$3; c2[$1]+=$3*$3 }
  END { for (k in n) printf "%s: %d rounds, %.0f requests/s, gateway CPU %.1f ± %.1f us per request\n", k, n[k], r[k]/n[k], c[k]/n[k], sqrt((c2[k]-c[k]*c[k]/n[k])/(n[k]-1)) }' "$results" | sort
