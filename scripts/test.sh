#!/usr/bin/env bash
# The test command (README): installs what the tests need, then runs every test.
# Safe to run on a fresh machine and again on a prepared one.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real tools the test suites drive: the util-linux syslog client, rsyslog and its RELP
# output (omrelp, for the RELP source), logrotate, Prometheus' promtool, openssl (a TLS
# certificate for the syslog TLS test), gzip.
need_apt=()
command -v gzip >/dev/null 2>&1 || need_apt+=(gzip)
command -v logger >/dev/null 2>&1 || need_apt+=(bsdutils)
command -v rsyslogd >/dev/null 2>&1 || need_apt+=(rsyslog)
compgen -G "/usr/lib/*/rsyslog/omrelp.so" >/dev/null || compgen -G "/usr/lib/rsyslog/omrelp.so" >/dev/null \
    || need_apt+=(rsyslog-relp)
command -v logrotate >/dev/null 2>&1 || need_apt+=(logrotate)
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "test.sh: installing ${need_apt[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

# The benches once each (criterion's test mode: they must build and run), then every
# unit and integration test, whose summary closes the output.
# Python peers: a real TAXII 2.1 server (medallion), the STIX validator, PyMISP.
python3 -c "import medallion, stix2validator, pymisp" 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check \
        "medallion==3.0.0" "stix2-validator==3.3.2" "pymisp==2.5.34.4"

cargo test --locked --benches
cargo test --locked "$@"
