#!/usr/bin/env bash
# Before/after: two tripline binaries on the same seeded workload, interleaved
# (A B A B …) so that machine noise falls on both, plus rg -F once as a peer.
#
#   benches/before_after.sh BEFORE_BIN AFTER_BIN [--log-mb 256] [--size 1000000] [--reps 3] [--threads 1]
#
# Uses the workload benches/compare.sh generates (run it once first, e.g.
# `benches/compare.sh --peers-only --log-mb 256 --sizes 1000000 --reps 1 --no-record`).
# Prints a markdown table: median wall seconds, MB/s, peak RSS, matching-line count.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BEFORE=${1:?before binary}; AFTER=${2:?after binary}; shift 2
LOG_MB=256; SIZE=1000000; REPS=3; THREADS=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --log-mb) LOG_MB=$2; shift 2 ;;
        --size) SIZE=$2; shift 2 ;;
        --reps) REPS=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
WORK="$ROOT/benches/work/seed-42"
LOG="$WORK/log-$LOG_MB.log"; IOCS="$WORK/iocs-$SIZE.txt"
[[ -f $LOG && -f $IOCS ]] || { echo "no workload in $WORK: run benches/compare.sh first" >&2; exit 2; }
cat "$LOG" > /dev/null
run() { # label cmd... -> "secs rss count"
    local out; out=$( { /usr/bin/time -f "%e %M" "$@" 2>/tmp/ba-time >/tmp/ba-out; } 2>&1; cat /tmp/ba-time | tail -1 )
    echo "$(tail -1 /tmp/ba-time) $(head -1 /tmp/ba-out)"
}
EMPTY=$(mktemp); trap 'rm -f "$EMPTY"' EXIT
declare -A secs setup rss count
for r in $(seq "$REPS"); do
    for who in before after; do
        bin=$BEFORE; [[ $who == after ]] && bin=$AFTER
        read -r s m c < <(run "$bin" hunt --no-default-warninglists --threads "$THREADS" --count --intel "$IOCS" "$LOG")
        secs[$who]+="$s "; rss[$who]=$m; count[$who]=$c
        read -r s _ _ < <(run "$bin" hunt --no-default-warninglists --threads "$THREADS" --count --intel "$IOCS" "$EMPTY")
        setup[$who]+="$s "
    done
done
read -r rs rm rc < <(run rg -F -j1 -c -f "$IOCS" "$LOG")
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "| run | median s ($REPS runs) | setup s (empty log) | scan MB/s (setup excluded) | peak RSS MiB | matching lines |"
echo "|---|---|---|---|---|---|"
for who in before after; do
    m=$(echo "${secs[$who]}" | median); z=$(echo "${setup[$who]}" | median)
    printf '| tripline %s (%s) | %s (%s) | %s | %.0f | %.0f | %s |\n' "$who" "$THREADS thread" "$m" "${secs[$who]% }" "$z" \
        "$(echo "$LOG_MB / ($m - $z)" | bc -l)" "$(echo "${rss[$who]} / 1024" | bc -l)" "${count[$who]}"
done
printf '| rg -F -j1 (peer) | %s | | %.0f | %.0f | %s |\n' "$rs" "$(echo "$LOG_MB / $rs" | bc -l)" "$(echo "$rm / 1024" | bc -l)" "$rc"
