#!/usr/bin/env bash
# Archives: `tripline hunt` over a .gz log against `gzip -dc` (the peer: inflating
# alone), against the same hunt over the plain log, pinned to one core and not, and
# over N archives with -j1 against -j2. Interleaved rounds (every command once per
# round) so that machine noise falls on all; medians and ratios of the same run.
#
#   benches/archives.sh [--tripline BIN] [--before BIN] [--log-mb 256] [--size 1000000]
#                       [--reps 3] [--archives 4] [--out FILE]
#
# Uses the workload benches/compare.sh generates (e.g. `python3 benches/gen_workload.py
# --seed 42 --iocs-dir ../shared/data/iocs --n 1000000 --log-mb 256 --out
# benches/work/seed-42`); makes log-MB.log.gz (gzip -6) and N gzipped parts of the
# log (split -n l/N) next to it once. --before BIN adds that binary's -j1 .gz hunt
# and -jN archives hunt to each round (a before/after on the same machine state).
# Prints a markdown table; with --out also writes it there.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="$ROOT/target/release/tripline"; BEFORE=""; LOG_MB=256; SIZE=1000000; REPS=3; N=4; OUT=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --tripline) BIN=$2; shift 2 ;;
        --before) BEFORE=$2; shift 2 ;;
        --log-mb) LOG_MB=$2; shift 2 ;;
        --size) SIZE=$2; shift 2 ;;
        --reps) REPS=$2; shift 2 ;;
        --archives) N=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
WORK="$ROOT/benches/work/seed-42"
LOG="$WORK/log-$LOG_MB.log"; IOCS="$WORK/iocs-$SIZE.txt"
[[ -f $LOG && -f $IOCS ]] || { echo "no workload in $WORK: run benches/gen_workload.py first" >&2; exit 2; }
[[ -x $BIN ]] || { echo "no binary $BIN: cargo build --release" >&2; exit 2; }
GZ="$LOG.gz"
[[ -f $GZ ]] || gzip -6 -c "$LOG" > "$GZ"
PARTS="$WORK/parts-$LOG_MB-$N"
if [[ ! -d $PARTS ]]; then
    mkdir -p "$PARTS.tmp"
    split -n "l/$N" -d -a 2 "$LOG" "$PARTS.tmp/part-"
    for f in "$PARTS.tmp"/part-*; do gzip -6 "$f"; done
    mv "$PARTS.tmp" "$PARTS"
fi
EMPTY=$(mktemp); TMP=$(mktemp -d); trap 'rm -rf "$EMPTY" "$TMP"' EXIT
cat "$LOG" "$GZ" "$PARTS"/* > /dev/null

HUNT=(hunt -q --no-default-warninglists --count --intel "$IOCS")
# label | command (word-split on purpose: paths here have no spaces)
CASES=(
    "gzip -dc FILE.gz (peer)|gzip -dc $GZ"
    "hunt -j1 FILE.gz, 2 cores|$BIN ${HUNT[*]} -j1 $GZ"
    "hunt -j1 FILE.gz, taskset -c 0|taskset -c 0 $BIN ${HUNT[*]} -j1 $GZ"
    "hunt -j1 FILE (plain), 2 cores|$BIN ${HUNT[*]} -j1 $LOG"
    "hunt -j1 FILE (plain), taskset -c 0|taskset -c 0 $BIN ${HUNT[*]} -j1 $LOG"
    "hunt -j1 $N archives, 2 cores|$BIN ${HUNT[*]} -j1 $(echo "$PARTS"/*)"
    "hunt -j2 $N archives, 2 cores|$BIN ${HUNT[*]} -j2 $(echo "$PARTS"/*)"
    "hunt -j1 $N archives, taskset -c 0|taskset -c 0 $BIN ${HUNT[*]} -j1 $(echo "$PARTS"/*)"
    "setup: hunt -j1 empty file|$BIN ${HUNT[*]} -j1 $EMPTY"
)
if [[ -n $BEFORE ]]; then
    CASES+=(
        "before: hunt -j1 FILE.gz, 2 cores|$BEFORE ${HUNT[*]} -j1 $GZ"
        "before: hunt -j2 $N archives, 2 cores|$BEFORE ${HUNT[*]} -j2 $(echo "$PARTS"/*)"
    )
fi
declare -A secs cpu count
LOADS=()
for r in $(seq "$REPS"); do
    LOADS+=("$(cut -d' ' -f1 /proc/loadavg)")
    for i in "${!CASES[@]}"; do
        cmd=${CASES[$i]#*|}
        out="$TMP/o"; [[ $cmd == gzip* ]] && out=/dev/null
        # shellcheck disable=SC2086
        /usr/bin/time -f "%e %U %S" -o "$TMP/t" $cmd > "$out" 2> /dev/null || true
        read -r wall user sys < <(tail -1 "$TMP/t")
        secs[$i]+="$wall "
        cpu[$i]+="$(echo "$user + $sys" | bc -l) "
        count[$i]=""; [[ $out == /dev/null ]] || count[$i]=$(head -1 "$out" | tr -dc '0-9')
    done
done
LOADS+=("$(cut -d' ' -f1 /proc/loadavg)")
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A med cmed
for i in "${!CASES[@]}"; do
    med[$i]=$(echo "${secs[$i]}" | median); cmed[$i]=$(echo "${cpu[$i]}" | median)
done
ratio() { echo "scale=2; $1 / $2" | bc -l; }
{
    echo "Host: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), load average at each round start and at the end: ${LOADS[*]}."
    echo "Workload: \`$(basename "$LOG")\` ($(stat -c %s "$LOG") bytes), \`$(basename "$GZ")\` ($(stat -c %s "$GZ") bytes, gzip -6), $N parts (split -n l/$N, gzip -6), \`$(basename "$IOCS")\`; $REPS interleaved rounds; wall seconds; \`hunt\` is \`tripline ${HUNT[*]/$IOCS/iocs-$SIZE.txt}\`."
    echo
    echo "| command | median wall s | wall runs | median CPU s (user+sys) | matching lines |"
    echo "|---|---|---|---|---|"
    for i in "${!CASES[@]}"; do
        echo "| ${CASES[$i]%%|*} | ${med[$i]} | ${secs[$i]% } | ${cmed[$i]} | ${count[$i]} |"
    done
    echo
    echo "Ratios of medians (same run):"
    echo
    echo "- setup (loading the list) is in every hunt row; scan alone (median minus setup): .gz -j1 2 cores $(echo "${med[1]} - ${med[8]}" | bc -l) s, taskset -c 0 $(echo "${med[2]} - ${med[8]}" | bc -l) s, plain $(echo "${med[3]} - ${med[8]}" | bc -l) s"
    echo "- speed of hunt -j1 .gz relative to gzip -dc, wall: 2 cores $(ratio "${med[0]}" "${med[1]}"), taskset -c 0 $(ratio "${med[0]}" "${med[2]}"); CPU seconds (what one free core would take): $(ratio "${cmed[0]}" "${cmed[2]}"), setup excluded $(ratio "${cmed[0]}" "$(echo "${cmed[2]} - ${cmed[8]}" | bc -l)")"
    echo "- .gz hunt time over plain hunt time: 2 cores $(ratio "${med[1]}" "${med[3]}"), taskset -c 0 $(ratio "${med[2]}" "${med[4]}")"
    echo "- $N archives, -j2 speed-up over -j1 (both 2 cores): $(ratio "${med[5]}" "${med[6]}"); over -j1 pinned to one core: $(ratio "${med[7]}" "${med[6]}")"
    if [[ -n $BEFORE ]]; then
        echo "- before/after, wall: hunt -j1 .gz on 2 cores $(ratio "${med[9]}" "${med[1]}")x, -j2 $N archives $(ratio "${med[10]}" "${med[6]}")x; CPU seconds after/before: $(ratio "${cmed[1]}" "${cmed[9]}"), $(ratio "${cmed[6]}" "${cmed[10]}")"
    fi
} | tee ${OUT:+"$OUT"}
