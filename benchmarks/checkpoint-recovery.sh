#!/usr/bin/env bash
# Service checkpoints of a large Redis data set, and replay during recovery, against a direct redis-server
# holding the same data in the same run:
#  1. fills the gateway (3 redis-server replicas) and one direct redis-server with the same SETs,
#  2. `resh checkpoint` while one client issues GETs through the gateway one after another: the longest gap
#     between two of its replies (the stall a client sees), the longest replica pause, and the time until the
#     checkpoint is verified and stored, vs. the direct server's own SAVE and BGSAVE fork time,
#  3. writes REPLAY more requests, kills a replica and reports the replay rate of its rebuild from the
#     checkpoint vs. the rate the direct server executes the same requests pipelined.
#
#   benchmarks/checkpoint-recovery.sh [-k KEYS] [-d VALUE_BYTES] [-r REPLAY] [-m bgsave|save] [-f quorum|all] [-x "REPLICA ARGS"]
#
# -x: more redis-server arguments for the replicas (e.g. "--bgsave_cpulist 1").
# -f: which replicas flush (checkpoint.flush-by): quorum (f+1 in turn, the default with -m bgsave) or all.
# A control client reads the direct redis-server at the same time as the gateway's: its gaps are what the machine's
# scheduling alone costs a client. The gateway's GC collections and pause time meanwhile come from its /metrics.
#
# -m bgsave (default): flush BGSAVE, its completion read from INFO persistence, the files digested by Resh
# (digest: rdb). -m save: flush SAVE and digest DEBUG DIGEST, in every replica's main thread.
# Defaults fill about 1 GiB per replica (1,000,000 keys of 1000 bytes). Needs redis-server, redis-tools,
# curl, python3 and the .NET SDK.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
keys=1000000 size=1000 replay=500000 mode=bgsave flush_by="" extra=""
while getopts "k:d:r:m:f:x:" opt; do
  case $opt in
    k) keys=$OPTARG ;;
    d) size=$OPTARG ;;
    r) replay=$OPTARG ;;
    m) mode=$OPTARG ;;
    f) flush_by="flush-by: $OPTARG" ;;
    x) extra=$OPTARG ;;
    *) echo "usage: $0 [-k keys] [-d value-bytes] [-r replay-requests] [-m bgsave|save] [-f quorum|all] [-x replica-args]" >&2; exit 2 ;;
  esac
done
case $mode in
  bgsave) flush='flush: BGSAVE
  flush-done: INFO persistence
  flush-done-when: "rdb_bgsave_in_progress:0"
  flush-failed-when: "rdb_last_bgsave_status:err"
  digest: rdb'; debug="" ;;
  save) flush='flush: SAVE
  digest: DEBUG DIGEST'; debug="--enable-debug-command local" ;;
  *) echo "-m: bgsave or save" >&2; exit 2 ;;
esac

for p in redis-benchmark redis-server curl python3; do
  command -v "$p" >/dev/null || { echo "needs $p" >&2; exit 2; }
done
dotnet build src/Resh.Cli -c Release -nologo -clp:ErrorsOnly >/dev/null
resh() { dotnet src/Resh.Cli/bin/Release/net10.0/resh.dll "$@"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
direct_port=$(free_port); gw_port=$(free_port); admin_port=$(free_port)
work=$(mktemp -d -p "${TMPDIR:-/tmp}" resh-ckpt-bench.XXXXXX)
cleanup() {
  [[ -n "${resh_pid:-}" ]] && kill -9 -- "-$resh_pid" 2>/dev/null || true
  [[ -n "${redis_pid:-}" ]] && kill "$redis_pid" 2>/dev/null || true
  sleep 1
  rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/bench.yaml" <<EOF
service: { protocol: resp, listen: 127.0.0.1:$gw_port }
admin: 127.0.0.1:$admin_port
faults: 1
state-dir: $work/state
reply-timeout: 30s
max-lag: 100000000
checkpoint:
  $flush
  files: [dump.rdb]
  interval: 1h
  $flush_by
replicas:
  count: 3
  command: redis-server --port {port} --bind 127.0.0.1 --dir {dir} --save "" --appendonly no $debug $extra
EOF
redis-server --port "$direct_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" --enable-debug-command local >/dev/null &
redis_pid=$!
setsid dotnet src/Resh.Cli/bin/Release/net10.0/resh.dll run "$work/bench.yaml" --log-level Warning > "$work/resh.log" 2>&1 &
resh_pid=$!
disown "$resh_pid"
for _ in $(seq 1 300); do
  redis-cli -p "$gw_port" ping >/dev/null 2>&1 && redis-cli -p "$direct_port" ping >/dev/null 2>&1 && break
  sleep 0.1
done
redis-cli -p "$gw_port" ping >/dev/null || { cat "$work/resh.log"; exit 1; }

event() { # name replica -> detail of the newest such event
  curl -s "http://127.0.0.1:$admin_port/events" | python3 -c "
import json, sys
ev = [e for e in json.load(sys.stdin) if e['name'] == '$1' and (e.get('replica') == '$2' or '$2' == '')]
print(ev[-1]['detail'] if ev else '')"
}
mem_mib() { redis-cli -p "$1" info memory | tr -d '\r' | awk -F: '/^used_memory:/ {printf "%.0f", $2/1048576}'; }

# 1. Fill: keys 0..KEYS-1 once each (the same for both), pipelined.
fill() { # port
  python3 - "$1" "$keys" "$size" <<'PY'
import base64, random, socket, sys
port, keys, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port))
# Incompressible values (Redis compresses each string with LZF in its RDB), the same for both servers.
rng = random.Random(42)
pool = [base64.b64encode(rng.randbytes(size))[:size] for _ in range(4096)]
batch, pending = 1000, 0
buf = bytearray()
def drain(n):
    got = 0
    data = b""
    while got < n:
        chunk = s.recv(1 << 20)
        if not chunk:
            raise SystemExit("connection closed")
        data += chunk
        got += chunk.count(b"+OK\r\n")
        data = data[-4:]
for i in range(keys):
    k = b"key:%d" % i
    value = pool[i % len(pool)]
    buf += b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(value), value)
    pending += 1
    if pending == batch:
        s.sendall(buf); buf.clear(); drain(pending); pending = 0
if pending:
    s.sendall(buf); drain(pending)
PY
}
start=$(date +%s.%N); fill "$direct_port"; direct_fill=$(echo "$(date +%s.%N) - $start" | bc)
start=$(date +%s.%N); fill "$gw_port"; gw_fill=$(echo "$(date +%s.%N) - $start" | bc)
replica_port=$(curl -s "http://127.0.0.1:$admin_port/status" | python3 -c "import json,sys; print(json.load(sys.stdin)['replicas'][0]['port'])")
echo "data: $keys keys of $size bytes; used_memory direct $(mem_mib "$direct_port") MiB, replica $(mem_mib "$replica_port") MiB"
printf 'fill: direct %.1f s, gateway %.1f s\n' "$direct_fill" "$gw_fill"

# 2. One checkpoint while a client reads through the gateway, one request after another; and what the direct
#    server's own persistence costs.
stall_probe() { # port seconds-before gaps-file -> "max gap ms before the checkpoint, max gap ms during it, requests"
  python3 - "$1" "$work/stop-probe" "$2" "$3" <<'PY'
import os, socket, sys, time
port, stop, before, gaps = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), open(sys.argv[4], "w")
s = socket.create_connection(("127.0.0.1", port)); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
req = b"*2\r\n$3\r\nGET\r\n$5\r\nkey:7\r\n"
start = last = time.monotonic(); gap_before = gap_during = 0.0; n = 0
while not os.path.exists(stop):
    s.sendall(req)
    data = b""
    while not data.endswith(b"\r\n") or (data.startswith(b"$") and data.count(b"\r\n") < 2):
        data += s.recv(65536)
    now = time.monotonic(); n += 1
    if now - last >= 0.04:
        print(f"{now - start - before:.1f}s:{(now - last) * 1000:.0f}ms", file=gaps)
    if now - start < before:
        gap_before = max(gap_before, now - last)
    else:
        gap_during = max(gap_during, now - last)
    last = now
print(f"{gap_before*1000:.1f} {gap_during*1000:.1f} {n}")
PY
}
gc_metrics() { # -> "seconds paused in GC, gen0, gen1, gen2 collections, MiB allocated" of the gateway so far
  curl -s "http://127.0.0.1:$admin_port/metrics" | awk '/^dotnet_gc_pause_time_seconds_total/ {p=$2} /^dotnet_gc_heap_total_allocated_bytes_total/ {a=$2}
    /^dotnet_gc_collections_total.*gen0/ {g0=$2} /^dotnet_gc_collections_total.*gen1/ {g1=$2} /^dotnet_gc_collections_total.*gen2/ {g2=$2}
    END {printf "%f %d %d %d %.0f\n", p+0, g0+0, g1+0, g2+0, a/1048576}'
}
rm -f "$work/stop-probe"
read -r gc_pause0 gc0_0 gc1_0 gc2_0 alloc0 < <(gc_metrics)
stall_probe "$gw_port" 3 "$work/gaps.txt" > "$work/stall.txt" &
probe_pid=$!
# The control: the same client against the direct redis-server at the same time (it holds the same data and does not
# save): its gaps are what this machine's scheduling alone does to a client.
stall_probe "$direct_port" 3 "$work/gaps-direct.txt" > "$work/stall-direct.txt" &
control_pid=$!
sleep 3
start=$(date +%s.%N); resh checkpoint --config "$work/bench.yaml" >/dev/null; total=$(echo "$(date +%s.%N) - $start" | bc)
touch "$work/stop-probe"; wait "$probe_pid" "$control_pid"
read -r gap_before gap_during probe_requests < "$work/stall.txt"
read -r control_before control_during control_requests < "$work/stall-direct.txt"
read -r gc_pause1 gc0_1 gc1_1 gc2_1 alloc1 < <(gc_metrics)
detail=$(event +checkpoint "")
pause=$(sed -E 's/.*longest replica pause ([0-9.]+) ms.*/\1/' <<<"$detail")
start=$(date +%s%N); redis-cli -p "$direct_port" save >/dev/null; direct_save=$(( ($(date +%s%N) - start) / 1000000 ))
start=$(date +%s%N); redis-cli -p "$direct_port" debug digest >/dev/null; direct_digest=$(( ($(date +%s%N) - start) / 1000000 ))
redis-cli -p "$direct_port" bgsave >/dev/null
for _ in $(seq 1 600); do
  redis-cli -p "$direct_port" info persistence | grep -q '^rdb_bgsave_in_progress:0' && break
  sleep 0.1
done
fork_ms=$(redis-cli -p "$direct_port" info stats | tr -d '\r' | awk -F: '/^latest_fork_usec:/ {printf "%.1f", $2/1000}')
echo "checkpoint ($mode): $detail"
printf 'client stall: longest reply gap %s ms during the checkpoint (%s ms in the 3 s before it; %s GETs one after another)\n' "$gap_during" "$gap_before" "$probe_requests"
echo "  its gaps of 40 ms or more (seconds after the checkpoint command: gap): $(tr '\n' ' ' < "$work/gaps.txt")"
printf 'control, the same client on the direct redis-server meanwhile: longest gap %s ms during (%s ms before; %s GETs)\n' "$control_during" "$control_before" "$control_requests"
printf 'gateway GC meanwhile: %d MiB allocated; %d gen0, %d gen1, %d gen2 collections, %.1f ms paused in all\n' "$((alloc1 - alloc0))" "$((gc0_1 - gc0_0))" "$((gc1_1 - gc1_0))" "$((gc2_1 - gc2_0))" "$(echo "($gc_pause1 - $gc_pause0) * 1000" | bc -l)"
echo "gateway GC pauses of 100 ms or more (the whole run so far, from its log):"
grep -o 'paused [0-9]* ms for a garbage collection.*' "$work/resh.log" | sed 's/^/  /' || echo "  none"
printf 'checkpoint pause: resh %.1f ms (longest replica: until the flush answered); direct SAVE + DEBUG DIGEST %d + %d ms; direct BGSAVE fork (latest_fork_usec) %s ms\n' \
  "$pause" "$direct_save" "$direct_digest" "$fork_ms"
printf 'checkpoint total (command to verified and stored): %.1f s\n' "$total"

# 3. Replay: REPLAY small writes after the checkpoint, then a crash.
redis-benchmark -p "$direct_port" -t set -n "$replay" -r 100000 -d 16 -c 1 -P 64 -q --csv 2>/dev/null > "$work/direct.csv"
direct_rate=$(tr -d '"' < "$work/direct.csv" | awk -F, 'NR>1 {print $2}')
redis-benchmark -p "$gw_port" -t set -n "$replay" -r 100000 -d 16 -c 1 -P 64 -q >/dev/null 2>&1
resh inject r2 crash --config "$work/bench.yaml" >/dev/null
for _ in $(seq 1 1200); do
  [[ -n "$(event +replica-recovered r2)" ]] && break
  sleep 0.25
done
restored=$(event +replica-restored r2)
recovered=$(event +replica-recovered r2)
rate=$(sed -E 's/.*\(([0-9]+)\/s\).*/\1/' <<<"$recovered")
echo "restore: $restored"
echo "replay:  $recovered"
printf 'replay rate: resh %d requests/s; direct redis-server (same requests, one client, pipeline 64) %.0f requests/s; ratio %.2f\n' \
  "$rate" "$direct_rate" "$(echo "$rate / $direct_rate" | bc -l)"
