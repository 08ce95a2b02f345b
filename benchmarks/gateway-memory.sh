#!/usr/bin/env bash
# The gateway's resident memory over a long write load on an example configuration as shipped (default:
# examples/redis-3.yaml, which takes the default checkpoints of redis-server replicas): RSS of the resh process
# sampled every few seconds with the log's head, then RSS after the first fifth of the run against the largest
# and the last sample after it (flat: within 20%).
#
#   benchmarks/gateway-memory.sh [-n REQUESTS] [-e EXAMPLE]
#
# Needs redis-server, redis-benchmark, curl, python3 and the .NET SDK.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
requests=10000000 example=redis-3.yaml
while getopts "n:e:" opt; do
  case $opt in
    n) requests=$OPTARG ;;
    e) example=$OPTARG ;;
    *) echo "usage: $0 [-n requests] [-e example.yaml]" >&2; exit 2 ;;
  esac
done
for p in redis-benchmark redis-server curl python3; do
  command -v "$p" >/dev/null || { echo "needs $p" >&2; exit 2; }
done
dotnet build src/Resh.Cli -c Release -nologo -clp:ErrorsOnly >/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
port=$(free_port); admin=$(free_port)
work=$(mktemp -d -p "${TMPDIR:-/tmp}" resh-mem-bench.XXXXXX)
cleanup() {
  [[ -n "${resh_pid:-}" ]] && kill -9 -- "-$resh_pid" 2>/dev/null || true
  sleep 1
  rm -rf "$work"
}
trap cleanup EXIT
sed -e "s/127.0.0.1:6380/127.0.0.1:$port/" -e "s/127.0.0.1:6390/127.0.0.1:$admin/" "examples/$example" > "$work/$example"
dotnet src/Resh.Cli/bin/Release/net10.0/resh.dll config validate "$work/$example" 2>&1 | sed 's/^/config: /'
setsid dotnet src/Resh.Cli/bin/Release/net10.0/resh.dll run "$work/$example" --log-level Warning > "$work/resh.log" 2>&1 &
resh_pid=$!
disown "$resh_pid"
for _ in $(seq 1 300); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$port" ping >/dev/null || { cat "$work/resh.log"; exit 1; }
gateway_pid=$(pgrep -f "resh.dll run $work/$example" | head -1)

redis-benchmark -p "$port" -t set -n "$requests" -r 1000000 -d 16 -c 50 -P 16 -q > "$work/bench.txt" 2>&1 &
bench=$!
start=$(date +%s)
: > "$work/samples.txt"
while kill -0 "$bench" 2>/dev/null; do
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$gateway_pid/status")
  head=$(curl -s -m 5 "http://127.0.0.1:$admin/status" | python3 -c "import json,sys; s=json.load(sys.stdin); print(s['head'], s.get('logFirst', s.get('log_first', '?')))" 2>/dev/null || echo "? ?")
  printf '%s %s %s\n' "$(( $(date +%s) - start ))" "$rss" "$head" >> "$work/samples.txt"
  sleep 5
done
tr '\r' '\n' < "$work/bench.txt" | grep -E "requests per second" | tail -1
echo "seconds rss_kib log_head log_first"
cat "$work/samples.txt"
python3 - "$work/samples.txt" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
rss = [int(r[1]) for r in rows]
# The first fifth of the run by time (the first sample is taken before any request): its last sample is the base.
seconds = [int(r[0]) for r in rows]
cut = max(1, sum(1 for t in seconds if t <= seconds[-1] / 5))
base, after = rss[cut - 1], rss[cut:] or rss[-1:]
print(f"gateway RSS: {base/1024:.0f} MiB after the first fifth, largest after it {max(after)/1024:.0f} MiB ({max(after)/base:.2f}x), last {after[-1]/1024:.0f} MiB ({after[-1]/base:.2f}x)")
PY
