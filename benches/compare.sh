#!/usr/bin/env bash
# Compare `tripline hunt` with rg -F, grep -F and (optionally) matchy on one seeded workload.
#
#   benches/compare.sh [--log-mb 1024] [--sizes "10000 100000 1000000"] [--seed 42]
#                      [--reps 3] [--peer-timeout 600] [--with-matchy] [--peers-only]
#                      [--iocs-dir ../shared/data/iocs] [--work benches/work] [--rg PATH]
#                      [--tripline PATH] [--no-record]
#
# Generates (or reuses) the workload under benches/work/seed-<SEED>/ with
# benches/gen_workload.py, then for each list size N times every tool on the same
# files: median wall time of --reps runs, MB/s (MB = 2^20 bytes, like --log-mb),
# peak RSS (GNU time %M) and the matching-line count each tool prints.  Prints a
# markdown table and writes it to benches/results/<date>-compare-<nproc>cpu-<host>.md.
# See benches/README.md for what the columns mean.
#
# --peers-only (or TRIPLINE_BENCH_PEERS_ONLY=1) skips building and timing tripline;
# --tripline PATH times that binary instead of building target/release/tripline.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOG_MB=1024
SIZES="10000 100000 1000000"
SEED=42
REPS=3
PEER_TIMEOUT=600
WITH_MATCHY=0
PEERS_ONLY=${TRIPLINE_BENCH_PEERS_ONLY:-0}
IOCS_DIR="$ROOT/../shared/data/iocs"
WORK_ROOT="$ROOT/benches/work"
RECORD=1
RG=rg
TRIPLINE=""

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }
die() { echo "compare.sh: $*" >&2; exit 2; }
say() { echo "compare.sh: $*" >&2; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --log-mb) LOG_MB=${2:?}; shift 2 ;;
        --sizes) SIZES=${2:?}; shift 2 ;;
        --seed) SEED=${2:?}; shift 2 ;;
        --reps) REPS=${2:?}; shift 2 ;;
        --peer-timeout) PEER_TIMEOUT=${2:?}; shift 2 ;;
        --with-matchy) WITH_MATCHY=1; shift ;;
        --peers-only) PEERS_ONLY=1; shift ;;
        --iocs-dir) IOCS_DIR=${2:?}; shift 2 ;;
        --work) WORK_ROOT=${2:?}; shift 2 ;;
        --no-record) RECORD=0; shift ;;
        --rg) RG=${2:?}; shift 2 ;;
        --tripline) TRIPLINE=${2:?}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
[[ $LOG_MB =~ ^[1-9][0-9]*$ ]] || die "--log-mb wants a positive integer, got '$LOG_MB'"
[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "--reps wants a positive integer, got '$REPS'"
[[ $SEED =~ ^[0-9]+$ ]] || die "--seed wants an integer, got '$SEED'"
[[ $PEER_TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "--peer-timeout wants seconds, got '$PEER_TIMEOUT'"
read -r -a SIZE_LIST <<<"$SIZES"
[[ ${#SIZE_LIST[@]} -gt 0 ]] || die "--sizes is empty"
for n in "${SIZE_LIST[@]}"; do [[ $n =~ ^[1-9][0-9]*$ ]] || die "--sizes wants integers, got '$n'"; done
SIZES="${SIZE_LIST[*]}"
[[ -d $IOCS_DIR ]] || die "no indicator directory at $IOCS_DIR (use --iocs-dir)"
IOCS_DIR=$(cd "$IOCS_DIR" && pwd)
command -v python3 >/dev/null || die "python3 is needed to generate the workload"

NPROC=$(nproc)
CPU_MODEL=$(grep -m1 '^model name' /proc/cpuinfo | sed 's/^[^:]*: *//' || true)
MEM_GB=$(awk '/^MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
HOST=$(hostname -s 2>/dev/null || hostname 2>/dev/null || echo unknown)

# -- tools ------------------------------------------------------------------

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

apt_install() { # package
    command -v apt-get >/dev/null || return 1
    say "installing $1 with apt-get"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null 2>&1 && return 0
    as_root apt-get update -qq >/dev/null 2>&1 || true
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null 2>&1
}

if [[ $RG == rg ]]; then
    command -v rg >/dev/null || apt_install ripgrep || die "ripgrep (rg) is missing and could not be installed"
fi
command -v "$RG" >/dev/null || die "no ripgrep at $RG"
[[ -x /usr/bin/time ]] || apt_install time || die "GNU time (/usr/bin/time) is missing and could not be installed"
command -v timeout >/dev/null || die "timeout (coreutils) is missing"

TRIPLINE_OK=0
TRIPLINE_NOTE=""
if [[ $PEERS_ONLY == 1 ]]; then
    TRIPLINE_NOTE="tripline skipped (--peers-only)"
else
    if [[ -z $TRIPLINE ]]; then
        say "cargo build --release"
        (cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release failed (use --peers-only to time the peers alone)"
        TRIPLINE="$ROOT/target/release/tripline"
    fi
    [[ -x $TRIPLINE ]] || die "no tripline binary at $TRIPLINE"
    if "$TRIPLINE" hunt --help 2>&1 | grep -q -e "--count"; then
        TRIPLINE_OK=1
    else
        TRIPLINE_NOTE="tripline skipped: \`tripline hunt --help\` does not list --count, the subcommand is not there yet"
        say "$TRIPLINE_NOTE"
    fi
fi

MATCHY_OK=0
MATCHY_NOTE=""
if [[ $WITH_MATCHY == 1 ]]; then
    if ! command -v matchy >/dev/null; then
        if command -v cargo >/dev/null; then
            say "cargo install matchy"
            cargo install --quiet matchy >/dev/null 2>&1 || true
            export PATH="$HOME/.cargo/bin:$PATH"
        fi
    fi
    if command -v matchy >/dev/null && matchy match --help >/dev/null 2>&1; then
        MATCHY_OK=1
    else
        MATCHY_NOTE="matchy skipped: \`cargo install matchy\` failed or \`matchy match\` is not usable"
        say "$MATCHY_NOTE"
    fi
fi

# -- workload ----------------------------------------------------------------

WORK="$WORK_ROOT/seed-$SEED"
LOG="$WORK/log-$LOG_MB.log"
mkdir -p "$WORK"

workload_ok() {
    local version
    version=$(sed -n 's/^VERSION = \([0-9]*\)$/\1/p' "$ROOT/benches/gen_workload.py")
    python3 - "$WORK" "${version:-0}" "$LOG_MB" "$SEED" "${SIZE_LIST[@]}" <<'EOF'
import json, os, sys
work, version, mb, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
sizes = [int(s) for s in sys.argv[5:]]
plant_from = min(10000, min(sizes))
for n in sizes:
    try:
        with open(os.path.join(work, f"workload-{n}.json")) as f:
            m = json.load(f)
        ok = (m["version"] == version and m["seed"] == seed and m["log_mb"] == mb and m["plant_from"] == plant_from
              and os.path.exists(os.path.join(work, f"planted-{mb}.tsv"))
              and os.path.getsize(os.path.join(work, m["log_file"])) == m["log_bytes"]
              and os.path.exists(os.path.join(work, m["iocs_file"])))
    except (OSError, KeyError, ValueError):
        ok = False
    if not ok:
        sys.exit(1)
EOF
}

if workload_ok; then
    say "reusing workload in $WORK"
else
    say "generating workload in $WORK (seed $SEED, $LOG_MB MiB, sizes $SIZES)"
    python3 "$ROOT/benches/gen_workload.py" --seed "$SEED" --iocs-dir "$IOCS_DIR" \
        --n "${SIZE_LIST[@]}" --log-mb "$LOG_MB" --out "$WORK"
fi

meta() { # N KEY [SUBKEY]: one value from workload-N.json
    python3 -c 'import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2:]:
    v = v[k]
print(v)' "$WORK/workload-$1.json" "${@:2}"
}
LOG_BYTES=$(stat -c %s "$LOG")

# -- timing -----------------------------------------------------------------

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
: >"$TMP/empty.log"

# Runs a command once under timeout and GNU time.
# Sets RC, WALL_S, RSS_KB; stdout and stderr land in $TMP/out, $TMP/err.
run_once() {
    local start end
    start=$(date +%s%N)
    RC=0
    rm -f "$TMP/time"
    timeout -k 10 "$PEER_TIMEOUT" /usr/bin/time -f '%M' -o "$TMP/time" "$@" >"$TMP/out" 2>"$TMP/err" || RC=$?
    end=$(date +%s%N)
    WALL_S=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    RSS_KB=$(sed -n '$p' "$TMP/time" 2>/dev/null | tr -dc '0-9' || true)
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# bench LABEL THREADS COUNT_FROM(stdout|matchy) CMD...
# Appends a table row to ROWS (and lines to NOTES); sets LAST_MBS.
ROWS=""
NOTES=""
bench() {
    local label=$1 threads=$2 count_from=$3
    shift 3
    local walls="" rss_max=0 count="" matches="" status="ok" i
    for ((i = 1; i <= REPS; i++)); do
        run_once "$@"
        if [[ $RC == 124 || $RC == 137 ]]; then status="timeout"; break; fi
        if [[ $RC != 0 && $RC != 1 ]]; then
            status="error"
            NOTES+="- N=$N, $label ($threads threads): exit $RC: $(head -c 300 "$TMP/err" | tr '\n' ' ')"$'\n'
            break
        fi
        walls+="$WALL_S "
        if [[ -n $RSS_KB && $RSS_KB -gt $rss_max ]]; then rss_max=$RSS_KB; fi
        if [[ $count_from == matchy ]]; then
            count=$(sed -n 's/.*Lines with matches: \([0-9,]*\).*/\1/p' "$TMP/err" | tr -d ',' | sed -n 1p)
            matches=$(sed -n 's/.*Total matches: \([0-9,]*\).*/\1/p' "$TMP/err" | tr -d ',' | sed -n 1p)
            if [[ -z $count ]]; then
                count="?"
            elif [[ $count == 0 && ${matches:-0} -gt 0 ]]; then
                # matchy 2.0.1 in parallel mode reports 0 lines with matches next to a
                # correct total of matches.
                count="? ($matches matches)"
                if [[ $i == 1 ]]; then
                    NOTES+="- N=$N, $label -j $threads: matchy reported 'Lines with matches: 0' but 'Total matches: $matches'; its line count is unknown"$'\n'
                fi
            fi
        else
            # The last number printed: rg -c and grep -c on one file and
            # tripline --count print just the count; rg prints nothing for 0.
            count=$(grep -o '[0-9][0-9]*' "$TMP/out" | tail -n 1 || true)
            [[ -n $count ]] || count=0
        fi
    done
    # The same command on an empty log: loading the list and building the matcher.
    local setup="-" scan="-" setups=""
    if [[ $status == ok ]]; then
        local argv=("$@")
        argv[${#argv[@]} - 1]="$TMP/empty.log"
        for ((i = 1; i <= REPS; i++)); do
            run_once "${argv[@]}"
            if [[ $RC != 0 && $RC != 1 ]]; then setups=""; break; fi
            setups+="$WALL_S "
        done
        if [[ -n $setups ]]; then setup=$(echo "$setups" | median); fi
    fi
    local wall mbs rss ratio delta
    if [[ $status == ok ]]; then
        wall=$(echo "$walls" | median)
        mbs=$(awk -v b="$LOG_BYTES" -v w="$wall" 'BEGIN { printf "%.1f", b / 1048576 / w }')
        rss=$(awk -v k="$rss_max" 'BEGIN { printf "%.0f", k / 1024 }')
        if [[ $setup != - ]]; then
            # Left out when the scan is under a tenth of the wall time or of a second:
            # then it is mostly noise.
            scan=$(awk -v b="$LOG_BYTES" -v w="$wall" -v s="$setup" \
                'BEGIN { d = w - s; if (d >= 0.1 * w && d >= 0.1) printf "%.1f", b / 1048576 / d; else print "-" }')
        fi
        if [[ $label == "rg -F -j1" ]]; then
            ratio="1.00"
        elif [[ -n $RG_MBS ]]; then
            ratio=$(awk -v a="$mbs" -v b="$RG_MBS" 'BEGIN { printf "%.2f", a / b }')
        else
            ratio="-"
        fi
        delta="?"
        if [[ $count =~ ^[0-9]+$ ]]; then
            delta=$((count - TRUE_LINES))
            if [[ $delta -gt 0 ]]; then delta="+$delta"; fi
        fi
    else
        wall=$status; mbs=$status; rss="-"; ratio="-"; count="-"; delta="-"
        if [[ $status == timeout ]]; then wall="timeout (${PEER_TIMEOUT}s)"; fi
    fi
    say "N=$N $label, $threads threads: wall $wall, setup $setup, $mbs MB/s, RSS $rss MiB, $count lines"
    ROWS+="| $N | $label | $threads | $wall | $setup | $mbs | $scan | $ratio | $rss | $count | $delta |"$'\n'
    LAST_MBS=$mbs
}

LOADAVG=$(cut -d" " -f1-3 /proc/loadavg)
# Warm the page cache so every tool reads the log from memory.
cat "$LOG" >/dev/null

RG_VERSION=$("$RG" --version | sed -n 1p)
GREP_VERSION=$(grep --version | sed -n 1p)
MATCHY_VERSION=""
if [[ $MATCHY_OK == 1 ]]; then MATCHY_VERSION=$(matchy --version 2>/dev/null | sed -n 1p); fi
TRIPLINE_VERSION=""
if [[ $TRIPLINE_OK == 1 ]]; then
    TRIPLINE_VERSION="tripline $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')"
    if [[ -n $(cd "$ROOT" && git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null) ]]; then
        TRIPLINE_VERSION+=" (with uncommitted changes in src/)"
    fi
fi

SUMMARY=""
RG_MAJOR=$(echo "$RG_VERSION" | sed -n 's/^ripgrep \([0-9]*\).*/\1/p')
if [[ -n $RG_MAJOR && $RG_MAJOR -lt 14 ]]; then
    NOTES+="- $RG_VERSION (as Debian ships it) is much slower with many literals, and uses far more memory, than ripgrep 14 and later; see --rg in benches/README.md"$'\n'
fi
for N in "${SIZE_LIST[@]}"; do
    IOCS="$WORK/iocs-$N.txt"
    TRUE_LINES=$(meta "$N" true_matching_lines)
    SUBSTR_LINES=$(meta "$N" fixed_string_expected_lines)
    NEAR_LINES=$(meta "$N" near_miss_lines)
    MISSED=$(meta "$N" fixed_string_breakdown planted_missed)
    SUMMARY+="- N=$N: true matching lines $TRUE_LINES; a plain substring search should count $SUBSTR_LINES"
    SUMMARY+=" ($NEAR_LINES near misses it wrongly counts, $MISSED planted lines it cannot see:"
    SUMMARY+=" IPs inside listed CIDRs, URLs with JSON-escaped slashes)"$'\n'
    RG_MBS=""
    bench "rg -F -j1" 1 stdout "$RG" -F -j1 -c -f "$IOCS" "$LOG"
    if [[ $LAST_MBS =~ ^[0-9.]+$ ]]; then RG_MBS=$LAST_MBS; fi
    bench "grep -F" 1 stdout grep -F -c -f "$IOCS" "$LOG"
    if [[ $TRIPLINE_OK == 1 ]]; then
        THREADS=(1 2)
        if [[ $NPROC -gt 2 ]]; then THREADS+=("$NPROC"); fi
        for t in "${THREADS[@]}"; do
            bench "tripline hunt" "$t" stdout \
                "$TRIPLINE" hunt --no-default-warninglists --threads "$t" --count --intel "$IOCS" "$LOG"
        done
    fi
    if [[ $MATCHY_OK == 1 ]]; then
        DB="$WORK/matchy-$N.mxy"
        b0=$(date +%s%N)
        if matchy build -o "$DB" "$IOCS" >"$TMP/build.log" 2>&1; then
            b1=$(date +%s%N)
            NOTES+="- N=$N: \`matchy build\` took $(awk -v a="$b0" -v b="$b1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }') s (not in the matchy rows, which time \`matchy match\` on the built database)"$'\n'
            bench "matchy match" 1 matchy matchy match -j 1 --stats "$DB" "$LOG"
            if [[ $NPROC -gt 1 ]]; then
                bench "matchy match" "$NPROC" matchy matchy match -j "$NPROC" --stats "$DB" "$LOG"
            fi
        else
            NOTES+="- N=$N: \`matchy build\` failed: $(head -c 300 "$TMP/build.log" | tr '\n' ' ')"$'\n'
        fi
    fi
done

# -- report -----------------------------------------------------------------

LOGF=$(basename "$LOG")
COMMANDS="$RG -F -j1 -c -f iocs-N.txt $LOGF"$'\n'
COMMANDS+="grep -F -c -f iocs-N.txt $LOGF"$'\n'
if [[ $TRIPLINE_OK == 1 ]]; then
    COMMANDS+="${TRIPLINE#"$ROOT"/} hunt --no-default-warninglists --threads T --count --intel iocs-N.txt $LOGF"
    COMMANDS+="    # T = 1, 2"
    if [[ $NPROC -gt 2 ]]; then COMMANDS+=", $NPROC"; fi
    COMMANDS+=$'\n'
fi
if [[ $MATCHY_OK == 1 ]]; then
    COMMANDS+="matchy build -o matchy-N.mxy iocs-N.txt"$'\n'
    COMMANDS+="matchy match -j T --stats matchy-N.mxy $LOGF    # T = 1"
    if [[ $NPROC -gt 1 ]]; then COMMANDS+=", $NPROC"; fi
    COMMANDS+="; count: 'Lines with matches' on stderr"$'\n'
fi

LOG_MIB=$(awk -v b="$LOG_BYTES" 'BEGIN { printf "%.1f", b / 1048576 }')
LOG_LINES=$(meta "${SIZE_LIST[0]}" log_lines)
TITLE="rg / grep"
if [[ $MATCHY_OK == 1 ]]; then TITLE+=" / matchy"; fi
if [[ $TRIPLINE_OK == 1 ]]; then TITLE="tripline vs $TITLE"; else TITLE+=" (tripline not run)"; fi
REPORT=$(
    cat <<EOF
# $TITLE — $(date +%F)

Machine: $NPROC CPUs ($CPU_MODEL), ${MEM_GB} GiB RAM, host \`$HOST\`, $(uname -sr); load average before the runs: $LOADAVG.
Workload: seed $SEED, log \`$(basename "$LOG")\` $LOG_MIB MiB ($LOG_BYTES bytes, $LOG_LINES lines), lists of $SIZES indicators, made by \`benches/gen_workload.py\`; page cache warm.
Timing: median wall time of $REPS runs; setup = median wall time on an empty log (loading the list, building the matcher); MB/s = log MiB / wall; scan MB/s = log MiB / (wall − setup), left out (-) when wall − setup is under 0.1 s or a tenth of wall; peak RSS from GNU time \`%M\` (largest of the timed runs); timeout ${PEER_TIMEOUT} s a run.
Versions: $RG_VERSION; $GREP_VERSION (charmap $(locale charmap 2>/dev/null || echo '?'))${TRIPLINE_VERSION:+; $TRIPLINE_VERSION}${MATCHY_VERSION:+; $MATCHY_VERSION}.

Commands (N = list size, files in \`${WORK#"$ROOT"/}\`):

\`\`\`
$COMMANDS\`\`\`

| N | tool | threads | wall s | setup s | MB/s | scan MB/s | MB/s ÷ rg -j1 | peak RSS MiB | lines counted | counted − true |
|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|
$ROWS
$SUMMARY${TRIPLINE_NOTE:+- $TRIPLINE_NOTE
}${MATCHY_NOTE:+- $MATCHY_NOTE
}$NOTES
EOF
)

echo
echo "$REPORT"

if [[ $RECORD == 1 ]]; then
    mkdir -p "$ROOT/benches/results"
    base="$ROOT/benches/results/$(date +%F)-compare-${NPROC}cpu-$HOST"
    out="$base.md"
    i=2
    while [[ -e $out ]]; do out="$base-$i.md"; i=$((i + 1)); done
    echo "$REPORT" >"$out"
    say "wrote ${out#"$ROOT"/}"
fi
