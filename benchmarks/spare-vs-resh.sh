#!/usr/bin/env bash
# Mode spare (f=1: 2 active + 2 passive redis-server replicas) against mode resh (3 active) and one direct
# redis-server, in the same run: throughput, CPU seconds (gateway + every replica) per request, and the
# activation latency of spare with 10,000 requests pending for the passive replicas. Prints ratios.
#
#   benchmarks/spare-vs-resh.sh [-n REQUESTS] [-c CLIENTS] [-r ROUNDS] [-p PENDING] [-u auto|replay|state]
#
# -u: how spare's passive replicas are brought up to date (spare.update-by; default auto).
#
# Needs redis-server, redis-benchmark, redis-cli (apt-get install redis-server redis-tools), curl,
# python3 and the .NET SDK.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
requests=200000 clients=50 rounds=3 pending=10000 update_by=auto
while getopts "n:c:r:p:u:" opt; do
  case $opt in
    n) requests=$OPTARG ;;
    c) clients=$OPTARG ;;
    r) rounds=$OPTARG ;;
    p) pending=$OPTARG ;;
    u) update_by=$OPTARG ;;
    *) echo "usage: $0 [-n requests] [-c clients] [-r rounds] [-p pending] [-u auto|replay|state]" >&2; exit 2 ;;
  esac
done

for tool in redis-server redis-benchmark redis-cli curl python3; do
  command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 2; }
done
dotnet build src/Resh.Cli -c Release -nologo -clp:ErrorsOnly >/dev/null
resh_dll=src/Resh.Cli/bin/Release/net10.0/resh.dll

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

direct_port=$(free_port)
redis-server --port "$direct_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >/dev/null &
pids+=($!)

# start NAME MODE EXTRA-YAML REPLICAS: writes a config, starts `resh run`, sets NAME_port, NAME_admin, NAME_pid.
start() {
  local name=$1 mode=$2 extra=$3 count=$4 port admin
  port=$(free_port); admin=$(free_port)
  cat > "$work/$name.yaml" <<EOF
service: { protocol: resp, listen: 127.0.0.1:$port }
admin: 127.0.0.1:$admin
mode: $mode
faults: 1
state-dir: $work/$name
reply-timeout: 1s
$extra
replicas:
  count: $count
  command: redis-server --port {port} --bind 127.0.0.1 --dir {dir} --save "" --appendonly no
EOF
  dotnet "$resh_dll" run "$work/$name.yaml" --log-level Warning > "$work/$name.log" 2>&1 &
  pids+=($!)
  printf -v "${name}_pid" %s "$!"
  printf -v "${name}_port" %s "$port"
  printf -v "${name}_admin" %s "$admin"
  for _ in $(seq 1 300); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  cat "$work/$name.log" >&2
  exit 1
}
start resh resh "" 3
start spare spare "spare: { update-interval: 1s, update-by: $update_by }" 4
start act spare "spare: { update-interval: 1000000000 }" 4

# CPU seconds so far: "REPLICAS GATEWAY PASSIVE" (all replicas of one group; its gateway process; its passive replicas).
cpu_of() { # pid admin
  local ticks
  ticks=$(awk '{print $14 + $15}' "/proc/$1/stat")
  curl -s "127.0.0.1:$2/status" | python3 -c "import json,sys; s=json.load(sys.stdin); print(sum(r['cpuSeconds'] for r in s['replicas']), $ticks / $(getconf CLK_TCK), sum(r['cpuSeconds'] for r in s['replicas'] if r['role'] == 'passive'))"
}
# used BEFORE AFTER: "replicas total passive" seconds between two cpu_of readings.
used() { awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); print y[1] - x[1], (y[1] + y[2]) - (x[1] + x[2]), y[3] - x[3] }'; }

measure() { # port test
  redis-benchmark -p "$1" -t "$2" -n "$requests" -c "$clients" -q --csv 2>/dev/null | tr -d '"' | awk -F, 'NR>1 {print $2, $5}'
}

for port in "$resh_port" "$spare_port" "$direct_port"; do
  redis-benchmark -p "$port" -t set,get -n 100000 -c "$clients" -q >/dev/null 2>&1
done

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1)"
echo "redis-benchmark -n $requests -c $clients, best of $rounds rounds; resh = 3 active redis-server replicas; spare = 2 active + 2 passive (update-interval 1s, update-by $update_by)"
echo "CPU in microseconds per request during the run: replicas (all domains, passive updates included; pas: spare's passive replicas alone) and total (replicas + gateway process)"
printf "%-4s %10s %9s %9s %5s %5s %8s %8s %5s %6s %8s %8s %5s\n" test direct_rps resh_rps spare_rps s/r s/d resh_rep spare_rep s/r pas resh_tot spare_tot s/r
for t in set get; do
  best_d=0 best_r=0 best_s=0 cpu_r="0 0 0" cpu_s="0 0 0"
  for _ in $(seq 1 "$rounds"); do
    read -r rps _ < <(measure "$direct_port" "$t")
    if awk "BEGIN{exit !($rps > $best_d)}"; then best_d=$rps; fi
    before=$(cpu_of "$resh_pid" "$resh_admin")
    read -r rps _ < <(measure "$resh_port" "$t")
    spent=$(used "$before" "$(cpu_of "$resh_pid" "$resh_admin")")
    if awk "BEGIN{exit !($rps > $best_r)}"; then best_r=$rps cpu_r=$spent; fi
    before=$(cpu_of "$spare_pid" "$spare_admin")
    read -r rps _ < <(measure "$spare_port" "$t")
    spent=$(used "$before" "$(cpu_of "$spare_pid" "$spare_admin")")
    if awk "BEGIN{exit !($rps > $best_s)}"; then best_s=$rps cpu_s=$spent; fi
  done
  awk -v t="$t" -v d="$best_d" -v r="$best_r" -v s="$best_s" -v cr="$cpu_r" -v cs="$cpu_s" -v n="$requests" \
    'BEGIN { split(cr, a, " "); split(cs, b, " ");
             printf "%-4s %10.0f %9.0f %9.0f %5.2f %5.2f %8.1f %8.1f %5.2f %6.2f %8.1f %8.1f %5.2f\n", toupper(t), d, r, s, s/r, s/d,
               a[1]/n*1e6, b[1]/n*1e6, b[1]/a[1], b[3]/n*1e6, a[2]/n*1e6, b[2]/n*1e6, b[2]/a[2] }'
done

# Activation: no passive update falls in (update-interval 10^9 entries), so the passive replicas are
# $pending requests behind; a corrupted active replica is caught by a read, the passive replicas replay
# and vote. The latency is the group's own: from waking them to the decision of the contested read.
echo
echo "activation latency (spare, $pending requests pending for the passive replicas; corrupt an active replica, read the key)"
settled() {
  curl -s "127.0.0.1:$act_admin/status" | python3 -c '
import json,sys
s=json.load(sys.stdin); r=s["replicas"]
act=[x for x in r if x["role"]=="active" and x["state"]=="up"]; pas=[x for x in r if x["role"]=="passive" and x["state"]=="passive"]
sys.exit(0 if len(act)==2 and len(pas)==2 and all(x["applied"]==s["head"] for x in act) else 1)'
}
printf "%-5s %9s %12s %12s\n" round pending woken_ms read_ms
for round in $(seq 1 "$rounds"); do
  for _ in $(seq 1 600); do settled && break; sleep 0.1; done
  redis-benchmark -p "$act_port" -t set -n "$pending" -c 1 -P 100 -r 1000000 -q >/dev/null 2>&1
  behind=$(curl -s "127.0.0.1:$act_admin/status" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["head"] - max(x["applied"] for x in s["replicas"] if x["role"]=="passive"))')
  victim=$(curl -s "127.0.0.1:$act_admin/status" | python3 -c 'import json,sys; print([x["id"] for x in json.load(sys.stdin)["replicas"] if x["role"]=="active"][0])')
  after=$(curl -s "127.0.0.1:$act_admin/events" | python3 -c 'import json,sys; e=json.load(sys.stdin); print(e[-1]["id"] if e else 0)')
  key=$(dotnet "$resh_dll" inject "$victim" corrupt --admin "127.0.0.1:$act_admin" | sed -n "s/.*key '\(.*\)' overwritten.*/\1/p")
  start_ns=$(date +%s%N)
  redis-cli -p "$act_port" get "$key" >/dev/null
  read_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
  woken=""
  for _ in $(seq 1 100); do
    woken=$(curl -s "127.0.0.1:$act_admin/events?after=$after" | python3 -c '
import json,re,sys
for e in json.load(sys.stdin):
    m = re.search(r"decided ([0-9.]+) ms after waking", e["detail"]) if e["name"] == "+activation-done" else None
    if m: print(m.group(1)); break')
    [[ -n "$woken" ]] && break
    sleep 0.1
  done
  printf "%-5s %9s %12s %12s\n" "$round" "$behind" "${woken:-?}" "$read_ms"
done
