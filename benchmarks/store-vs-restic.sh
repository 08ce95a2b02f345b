#!/usr/bin/env bash
# Compares resh's checkpoint store with restic on the same data, in one run:
#   1. a full snapshot of N MiB of mixed data (AOF-like redundant text, RDB-like random bytes, many small files),
#   2. a second snapshot after changing 1% (scattered overwrites in the binary file, an append to the AOF),
#   3. a restore of the second snapshot (checked against the source with diff -r, outside the timings).
# Prints the times, the repository sizes and the ratios resh/restic.
#
# Usage: benchmarks/store-vs-restic.sh [SIZE_MIB]          (default 1024)
# Environment:
#   RESH_DLL           the resh CLI (default: src/Resh.Cli/bin/Release/net10.0/resh.dll)
#   RESH_COMPRESSION   Zstd (default, as the store), Brotli or None, for resh's new chunks
#   RESTIC_COMPRESSION auto (default), off or max, for restic's repository (format v2)
#   BENCH_DIR          where to put the data and repositories (default: a new directory under ${TMPDIR:-/tmp})
#   KEEP=1             keep the data and repositories
set -euo pipefail

SIZE_MIB=${1:-1024}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RESH_DLL=${RESH_DLL:-$ROOT/src/Resh.Cli/bin/Release/net10.0/resh.dll}
RESH_COMPRESSION=${RESH_COMPRESSION:-Zstd}
RESTIC_COMPRESSION=${RESTIC_COMPRESSION:-auto}
export RESTIC_PASSWORD=resh-store-benchmark

if ! [[ $SIZE_MIB =~ ^[0-9]+$ ]] || (( SIZE_MIB < 16 )); then
    echo "usage: $0 [SIZE_MIB >= 16]" >&2
    exit 2
fi
if [[ ! -f $RESH_DLL ]]; then
    echo "error: the resh CLI is not built at $RESH_DLL (dotnet build -c Release src/Resh.Cli, or set RESH_DLL)" >&2
    exit 2
fi
if ! command -v restic >/dev/null; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "installing restic (apt-get)..." >&2
        apt-get install -y restic >/dev/null
    else
        echo "error: restic is not installed (apt-get install -y restic)" >&2
        exit 2
    fi
fi

WORK=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/store-vs-restic.XXXXXX")}
mkdir -p "$WORK"
cleanup() { [[ ${KEEP:-0} == 1 ]] || rm -rf "$WORK"; }
trap cleanup EXIT
DATA=$WORK/data
RESH_REPO=$WORK/resh-store
RESTIC_REPO=$WORK/restic-repo

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
size_of() { du -sb "$1" | cut -f1; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.2f", a / b }'; }

# --- data -------------------------------------------------------------------------------------
# 50% AOF-like text (RESP commands over a limited key space: redundant, compressible),
# 40% RDB-like random bytes (incompressible, like an LZF-compressed dump), 10% small files.
echo "generating $SIZE_MIB MiB of data in $DATA ..." >&2
mkdir -p "$DATA/small"
aof_bytes=$(( SIZE_MIB * 1048576 / 2 ))
rdb_mib=$(( SIZE_MIB * 4 / 10 ))
small_mib=$(( SIZE_MIB - SIZE_MIB / 2 - rdb_mib ))
gen_aof() { # $1: bytes, $2: seed
    awk -v limit="$1" -v seed="$2" 'BEGIN {
        srand(seed); n = 0
        split("user session cart order item stock price token counter flag", kinds, " ")
        while (n < limit) {
            k = kinds[int(rand() * 10) + 1] ":" int(rand() * 200000)
            v = "v" int(rand() * 1000000) "-" kinds[int(rand() * 10) + 1]
            line = sprintf("*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v)
            printf "%s", line; n += length(line)
        }
    }'
}
# The generator is cut off by head on purpose: its SIGPIPE is not a failure (|| true under pipefail).
gen_aof "$aof_bytes" 1 | head -c "$aof_bytes" > "$DATA/appendonly.aof" || true
head -c $(( rdb_mib * 1048576 )) /dev/urandom > "$DATA/dump.rdb"
small_total=$(( small_mib * 1048576 )); i=0; written=0
while (( written < small_total )); do
    size=$(( (RANDOM * 32768 + RANDOM) % 65536 + 1 ))
    dir="$DATA/small/d$(( i % 32 ))"; mkdir -p "$dir"
    if (( i % 2 )); then head -c "$size" /dev/urandom > "$dir/f$i"; else gen_aof "$size" "$(( i + 7 ))" | head -c "$size" > "$dir/f$i" || true; fi
    written=$(( written + size )); i=$(( i + 1 ))
done
: > "$DATA/small/empty-file"
data_bytes=$(size_of "$DATA")

change_one_percent() {
    # Overwrite 0.5% of the data at 16 random places in dump.rdb; append 0.5% to the AOF.
    local chunk=$(( data_bytes / 200 / 16 )) rdb_size; rdb_size=$(stat -c %s "$DATA/dump.rdb")
    for k in $(seq 1 16); do
        local offset=$(( ((RANDOM * 32768 + RANDOM) * 4096) % (rdb_size - chunk) ))
        head -c "$chunk" /dev/urandom | dd of="$DATA/dump.rdb" bs=1M seek="$offset" oflag=seek_bytes conv=notrunc status=none
    done
    gen_aof $(( data_bytes / 200 )) 99 >> "$DATA/appendonly.aof"
}

resh() { dotnet "$RESH_DLL" store "$@"; }

# --- runs -------------------------------------------------------------------------------------
restic init --repo "$RESTIC_REPO" --repository-version 2 -q >/dev/null

t0=$(now); resh snapshot "$RESH_REPO" "$DATA" --label run=1 --compression "$RESH_COMPRESSION" >/dev/null; t1=$(now)
resh_full=$(elapsed "$t0" "$t1"); resh_size1=$(size_of "$RESH_REPO")
t0=$(now); restic -r "$RESTIC_REPO" backup "$DATA" --compression "$RESTIC_COMPRESSION" -q >/dev/null; t1=$(now)
restic_full=$(elapsed "$t0" "$t1"); restic_size1=$(size_of "$RESTIC_REPO")

change_one_percent

t0=$(now); resh snapshot "$RESH_REPO" "$DATA" --label run=2 --compression "$RESH_COMPRESSION" >/dev/null; t1=$(now)
resh_incr=$(elapsed "$t0" "$t1"); resh_size2=$(size_of "$RESH_REPO")
t0=$(now); restic -r "$RESTIC_REPO" backup "$DATA" --compression "$RESTIC_COMPRESSION" -q >/dev/null; t1=$(now)
restic_incr=$(elapsed "$t0" "$t1"); restic_size2=$(size_of "$RESTIC_REPO")

t0=$(now); resh restore "$RESH_REPO" latest "$WORK/resh-restore" >/dev/null; t1=$(now)
resh_restore=$(elapsed "$t0" "$t1")
t0=$(now); restic -r "$RESTIC_REPO" restore latest --target "$WORK/restic-restore" -q >/dev/null; t1=$(now)
restic_restore=$(elapsed "$t0" "$t1")

diff -r "$DATA" "$WORK/resh-restore" >/dev/null && resh_ok=ok || resh_ok=DIFFERS
diff -r "$DATA" "$WORK/restic-restore$DATA" >/dev/null && restic_ok=ok || restic_ok=DIFFERS

# --- report -----------------------------------------------------------------------------------
echo
echo "data: $(mib "$data_bytes") MiB ($(find "$DATA" -type f | wc -l) files), 1% changed between snapshots"
echo "resh compression: $RESH_COMPRESSION; restic compression: $RESTIC_COMPRESSION (restic $(restic version | cut -d' ' -f2))"
printf '%-28s %12s %12s %12s\n' "" "resh" "restic" "resh/restic"
printf '%-28s %12s %12s %12s\n' "full snapshot (s)" "$resh_full" "$restic_full" "$(ratio "$resh_full" "$restic_full")"
printf '%-28s %12s %12s %12s\n' "snapshot after 1% (s)" "$resh_incr" "$restic_incr" "$(ratio "$resh_incr" "$restic_incr")"
printf '%-28s %12s %12s %12s\n' "restore (s)" "$resh_restore" "$restic_restore" "$(ratio "$resh_restore" "$restic_restore")"
printf '%-28s %12s %12s %12s\n' "repo after full (MiB)" "$(mib "$resh_size1")" "$(mib "$restic_size1")" "$(ratio "$resh_size1" "$restic_size1")"
printf '%-28s %12s %12s %12s\n' "repo growth after 1% (MiB)" "$(mib $(( resh_size2 - resh_size1 )))" "$(mib $(( restic_size2 - restic_size1 )))" "$(ratio $(( resh_size2 - resh_size1 )) $(( restic_size2 - restic_size1 )))"
printf '%-28s %12s %12s\n' "restore matches source" "$resh_ok" "$restic_ok"
[[ $resh_ok == ok && $restic_ok == ok ]]
