#!/usr/bin/env bash
# The intel cache benchmark (issue 11, points 2 and 5), in one run, each figure beside
# `cat` of the same bytes:
#   1. initial pull of N MISP attributes (pages of 10k) from a local stand-in
#      (`tripline intel sync`), vs `cat` of the page files;
#   2. time to "Ready." of `tripline run` starting from the cache (N indicators), vs
#      `cat` of the cache's data directory; first from the snapshot, then with the
#      snapshot removed (the parse it saves);
#   3. a sync that changes 1k attributes (spread over E events) of the N, and the
#      time until `tripline run` is ready with it;
#   4. peak RSS of each (GNU time -v).
# Usage: benches/intel_cache.sh [--total N] [--events-changed E] [--tripline PATH] [--no-record]
set -euo pipefail
cd "$(dirname "$0")/.."
TOTAL=1000000
EVENTS_CHANGED=10
BIN=""
RECORD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --total) TOTAL=$2; shift 2 ;;
    --events-changed) EVENTS_CHANGED=$2; shift 2 ;;
    --tripline) BIN=$2; shift 2 ;;
    --no-record) RECORD=0; shift ;;
    *) echo "unknown option $1" >&2; exit 64 ;;
  esac
done
if [ -z "$BIN" ]; then
  cargo build --release --quiet
  BIN=target/release/tripline
fi
[ -x /usr/bin/time ] || { echo "needs GNU time (apt-get install time)" >&2; exit 1; }
WORK=benches/work/intel-cache
PAGES=$WORK/pages-$TOTAL
mkdir -p "$WORK"
STATE=$(mktemp -d "$WORK/state.XXXX")
KEY=bench-key-0123456789
export TRIPLINE_BENCH_MISP_KEY=$KEY

coproc SRV { exec python3 benches/misp_bench_server.py --key $KEY --total "$TOTAL" --per-event 1000 --limit 10000 --pages "$PAGES"; }
trap 'kill $SRV_PID 2>/dev/null || true; rm -rf "$STATE"' EXIT
read -r line <&"${SRV[0]}"
PORT=${line#PORT }
CONF=$STATE/tripline.toml
cat >"$CONF" <<EOF
[intel]
paths = []
no_default_warninglists = true
[[intel.sources]]
name = "isac"
kind = "misp"
url = "http://127.0.0.1:$PORT"
api_key_env = "TRIPLINE_BENCH_MISP_KEY"
page_size = 10000
overlap_secs = 0
reconcile_secs = 2592000
[metrics]
enabled = false
[state]
dir = "$STATE/state"
EOF

secs() { python3 -c 'import sys,time; print("%.3f" % (time.time()))'; }
# timed LABEL CMD...: wall seconds and peak RSS (MB) of CMD into $WALL and $RSS.
timed() {
  local label=$1; shift
  /usr/bin/time -v -o "$STATE/time.txt" "$@" >"$STATE/out.txt" 2>&1 || { cat "$STATE/out.txt" >&2; echo "$label failed" >&2; exit 1; }
  WALL=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$STATE/time.txt")
  RSS=$(awk -F': ' '/Maximum resident/ {printf "%.0f", $2/1024}' "$STATE/time.txt")
}
cat_time() { local t0 t1; t0=$(secs); cat "$@" >/dev/null; t1=$(secs); python3 -c "print('%.3f' % ($t1-$t0))"; }
ratio() { python3 -c "print('%.1f' % ($1/max($2,0.001)))"; }
ready() { # time to Ready. of `tripline run --stdin` on an empty stdin (then it stops)
  timed run "$BIN" run --stdin --config "$CONF" </dev/null
  grep -q 'Ready' "$STATE/out.txt" || { cat "$STATE/out.txt" >&2; exit 1; }
  # The index load and build inside it (what a reload costs), from its Ready line.
  INDEX=$(grep -o 'index_secs="\?[0-9.]*' "$STATE/out.txt" | tail -1 | grep -o '[0-9.]*$' || echo "?")
}

cat "$PAGES"/page*.json >/dev/null  # warm the page cache
PAGE_MB=$(du -cm "$PAGES"/page*.json | tail -1 | cut -f1)
CAT_PAGES=$(cat_time "$PAGES"/page*.json)
timed pull "$BIN" intel sync --config "$CONF"; PULL=$WALL; PULL_RSS=$RSS
DATA=$STATE/state/intel/isac/data
DATA_MB=$(du -sm "$DATA" | cut -f1)
CAT_DATA=$(cat_time "$DATA"/*)
N=$("$BIN" intel status --config "$CONF" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["sources"][0]["indicators"])')
ready; READY=$WALL; READY_RSS=$RSS; READY_INDEX=$INDEX
SNAP=$(ls -l "$STATE/state/intel/isac/" | awk '/snapshot/ {printf "%.0f", $5/1048576}')
rm -f "$STATE"/state/intel/isac/snapshot*
ready; COLD=$WALL; COLD_RSS=$RSS
ready; READY2=$WALL; READY2_INDEX=$INDEX
curl -s -X POST -d "{\"count\": 1000, \"events\": $EVENTS_CHANGED}" "http://127.0.0.1:$PORT/_change" >/dev/null
timed change "$BIN" intel sync --config "$CONF"; CHANGE=$WALL; CHANGE_RSS=$RSS
ready; AFTER=$WALL; AFTER_INDEX=$INDEX

REV=$(git rev-parse --short HEAD)$(git diff --quiet || echo "+dirty")
OUT=$(cat <<EOF
# Intel cache benchmark ($(date -u +%F), $REV, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))

$TOTAL generated MISP attributes (ip-dst, 1000 per event), pages of 10k; \`benches/intel_cache.sh\`.

| step | wall s | vs cat | peak RSS MB |
|---|---|---|---|
| \`cat\` of the restSearch pages ($PAGE_MB MB) | $CAT_PAGES | 1.0 | |
| initial pull, \`tripline intel sync\` (HTTP from the stand-in, parse, write, count) | $PULL | $(ratio "$PULL" "$CAT_PAGES") | $PULL_RSS |
| \`cat\` of the cache data directory ($DATA_MB MB, $N indicators) | $CAT_DATA | 1.0 | |
| \`tripline run\` to Ready and stop, from the snapshot (${SNAP:-?} MB; index load + build inside: $READY_INDEX s) | $READY | $(ratio "$READY" "$CAT_DATA") | $READY_RSS |
| same, snapshot removed (parses the data, writes the snapshot) | $COLD | $(ratio "$COLD" "$CAT_DATA") | $COLD_RSS |
| same, from the rewritten snapshot (index load + build: $READY2_INDEX s) | $READY2 | $(ratio "$READY2" "$CAT_DATA") | |
| sync of 1k changed attributes over $EVENTS_CHANGED events (\`intel sync\`) | $CHANGE | | $CHANGE_RSS |
| \`tripline run\` to Ready after it (index load + build: $AFTER_INDEX s) | $AFTER | $(ratio "$AFTER" "$CAT_DATA") | |
EOF
)
echo "$OUT"
if [ "$RECORD" = 1 ]; then
  f=benches/results/$(date -u +%F)-intel-cache-$(nproc)cpu.md
  echo "$OUT" >"$f"
  echo "wrote $f"
fi
