#!/usr/bin/env bash
# The retro observation store's cost (issue 12): recording vs not, same input, same run.
#
#   benches/retro_record.sh [--log-mb 100] [--n 1000000] [--seed 42] [--reps 3]
#                           [--threads 1] [--tripline PATH] [--work benches/work]
#
# Generates (or reuses) the seeded workload of benches/compare.sh (gen_workload.py:
# a log of --log-mb MiB and a list of --n indicators from ../shared/data/iocs), then
# runs, alternately, --reps times each:
#
#   tripline hunt --no-default-warninglists -j T -c -q --intel iocs-N.txt log.log
#   tripline hunt --no-default-warninglists -j T -c    --intel iocs-N.txt log.log --record DIR
#
# (a fresh DIR each time) and prints the median wall times, their ratio (the cost of
# recording), and the store's size: bytes per entry (every recorded key: an address,
# a host name, each of its label suffixes, a URL, a hash, an e-mail) over all
# segments, as `hunt --record` reports it.

set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOG_MB=100
N=1000000
SEED=42
REPS=3
THREADS=1
TRIPLINE=""
WORK_ROOT="$ROOT/benches/work"
IOCS_DIR="$ROOT/../shared/data/iocs"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --log-mb) LOG_MB=${2:?}; shift 2 ;;
        --n) N=${2:?}; shift 2 ;;
        --seed) SEED=${2:?}; shift 2 ;;
        --reps) REPS=${2:?}; shift 2 ;;
        --threads) THREADS=${2:?}; shift 2 ;;
        --tripline) TRIPLINE=${2:?}; shift 2 ;;
        --work) WORK_ROOT=${2:?}; shift 2 ;;
        --iocs-dir) IOCS_DIR=${2:?}; shift 2 ;;
        *) echo "retro_record.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
if [[ -z $TRIPLINE ]]; then
    (cd "$ROOT" && cargo build --release --quiet)
    TRIPLINE="$ROOT/target/release/tripline"
fi
WORK="$WORK_ROOT/retro-seed-$SEED-$LOG_MB-$N"
LOG="$WORK/log-$LOG_MB.log"
IOCS="$WORK/iocs-$N.txt"
if [[ ! -f $LOG || ! -f $IOCS ]]; then
    mkdir -p "$WORK"
    python3 "$ROOT/benches/gen_workload.py" --seed "$SEED" --iocs-dir "$IOCS_DIR" \
        --n "$N" --log-mb "$LOG_MB" --out "$WORK" >&2
fi
cat "$LOG" > /dev/null
STORE=$(mktemp -d)
trap 'rm -rf "$STORE"' EXIT
now() { date +%s.%N; }
plain=(); rec=(); setup=(); summary=""
: > "$STORE/empty.log"
for ((i = 0; i < REPS; i++)); do
    # Setup (loading the intel, building the index) on an empty log: subtracted.
    t0=$(now)
    "$TRIPLINE" hunt --no-default-warninglists -j "$THREADS" -c -q --intel "$IOCS" "$STORE/empty.log" > /dev/null || true
    setup+=("$(echo "$(now) - $t0" | bc -l)")
    t0=$(now)
    "$TRIPLINE" hunt --no-default-warninglists -j "$THREADS" -c -q --intel "$IOCS" "$LOG" > /dev/null || true
    t1=$(now)
    rm -rf "$STORE/s"
    "$TRIPLINE" hunt --no-default-warninglists -j "$THREADS" -c --intel "$IOCS" "$LOG" \
        --record "$STORE/s" > /dev/null 2> "$STORE/err" || true
    t2=$(now)
    plain+=("$(echo "$t1 - $t0" | bc -l)")
    rec+=("$(echo "$t2 - $t1" | bc -l)")
    summary=$(grep '^retro store' "$STORE/err" || true)
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
S=$(median "${setup[@]}")
P=$(median "${plain[@]}")
R=$(median "${rec[@]}")
echo "machine: $(nproc) cpu, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "workload: seed $SEED, $(basename "$LOG") ($(stat -c %s "$LOG") bytes, $(wc -l < "$LOG") lines), $N indicators, -j $THREADS, $REPS runs each"
echo "hunt:          median $(printf '%.2f' "$P") s  (runs: ${plain[*]})"
echo "hunt --record: median $(printf '%.2f' "$R") s  (runs: ${rec[*]})"
echo "setup (intel load, index build; empty log): median $(printf '%.2f' "$S") s"
echo "recording cost, setup subtracted: +$(echo "(($R - $S) / ($P - $S) - 1) * 100" | bc -l | xargs printf '%.0f')% time; throughput with recording = $(echo "($P - $S) / ($R - $S)" | bc -l | xargs printf '%.2f') x without"
echo "$summary"
du -sb "$STORE/s" | awk '{print "store on disk: " $1 " bytes"}'
