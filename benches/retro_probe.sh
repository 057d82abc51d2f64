#!/usr/bin/env bash
# Retro probe speed at the issue's scale (issue 12): 100k and 1M new indicators
# against 7 days × 5M distinct observables.
#
#   benches/retro_probe.sh [--per-day 5000000] [--days 7] [--work benches/work/retro-probe]
#                          [--tripline PATH]
#
# 1. `cargo bench --bench retro_probe` generates (once; reused while its parameters
#    and the segment format are unchanged) the store and the indicator lists
#    iocs-100000.txt and iocs-1000000.txt (~1% of them values the store holds; see
#    benches/retro_probe.rs for the generator), then times Store::open and the probes
#    through the probe API, on one thread.
# 2. Times the whole `tripline retro --store DIR --intel iocs-N.txt -o /dev/null` for
#    each list (load the intel, build the index, open the store, probe, write the
#    alerts), with `taskset -c 0` (one core), and prints its summary line.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PER_DAY=5000000
DAYS=7
WORK="$ROOT/benches/work/retro-probe"
TRIPLINE=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --per-day) PER_DAY=${2:?}; shift 2 ;;
        --days) DAYS=${2:?}; shift 2 ;;
        --work) WORK=${2:?}; shift 2 ;;
        --tripline) TRIPLINE=${2:?}; shift 2 ;;
        *) echo "retro_probe.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
if [[ -z $TRIPLINE ]]; then
    (cd "$ROOT" && cargo build --release --quiet)
    TRIPLINE="$ROOT/target/release/tripline"
fi
echo "machine: $(nproc) cpu, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg)"
(cd "$ROOT" && taskset -c 0 cargo bench --quiet --bench retro_probe -- \
    --out "$WORK" --days "$DAYS" --per-day "$PER_DAY" --n 100000 --n 1000000)
du -sb "$WORK/store" | awk '{print "store on disk: " $1 " bytes"}'
for n in 100000 1000000; do
    t0=$(date +%s.%N)
    taskset -c 0 "$TRIPLINE" retro --no-default-warninglists --store "$WORK/store" \
        --intel "$WORK/iocs-$n.txt" -o /dev/null 2> "$WORK/retro-$n.err" || true
    t1=$(date +%s.%N)
    echo "tripline retro, $n indicators: $(printf '%.2f' "$(echo "$t1 - $t0" | bc -l)") s wall"
    grep '^retro:' "$WORK/retro-$n.err" || tail -3 "$WORK/retro-$n.err"
done
