#!/usr/bin/env bash
# The test command (README): installs what the tests need, then runs every test.
# Safe to run on a fresh machine and again on a prepared one.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# Tools the test suites drive for real. (More arrive with the sidecar and sharing issues.)
command -v gzip >/dev/null 2>&1 || need_apt+=(gzip)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "test.sh: installing ${need_apt[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}"
fi

# The benches once each (criterion's test mode: they must build and run), then every
# unit and integration test, whose summary closes the output.
cargo test --locked --benches
cargo test --locked "$@"
