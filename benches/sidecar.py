#!/usr/bin/env python3
"""Sidecar benchmarks for `tripline run` (issue: sidecar performance goals).

  python3 benches/sidecar.py throughput [--lines 2000000] [--iocs benches/work/seed-42/iocs-1000000.txt]
  python3 benches/sidecar.py latency    [--rate 50000] [--seconds 20]
  python3 benches/sidecar.py soak       [--rate 20000] [--seconds 600]

throughput: writes N log lines (from the seeded workload's log) to a file, starts
  `tripline run` following it from the beginning, and times how long until
  tripline_lines_received_total reaches N (polling /metrics); reports lines/s, and
  CPU seconds (utime+stime from /proc) per line, i.e. lines/s per core. The log
  is the source log's lines repeated until there are N (streamed to disk).
  --retro (any mode) runs with `[retro] enabled = true` (the default) instead of
  `false`: the same run while recording into the observation store; compare with a
  run without it on the same machine.
latency: a writer appends lines at --rate lines/s to a followed file; one line in a
  hundred carries an indicator and the wall-clock time it was written; alerts are read
  from tripline's stdout and the latency (alert read - line written) is summarised
  (p50/p99/max).
soak: like latency, for --seconds, sampling tripline's RSS every 10 s: memory must be
  flat (start vs end printed).

Every figure is printed with the machine's load average; runs are noisy on shared
machines, so quote ratios measured in the same run where they matter.
"""

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "tripline")
# The binary to run: BIN, or --bin.
BIN_IN_USE = [BIN]
PLANT = "c2-latency-probe.example.net"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def scrape(port):
    import urllib.request
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            return r.read().decode()
    except Exception:
        return ""


def metric(text, name):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name):
            try:
                total += float(line.rsplit(" ", 1)[1])
            except ValueError:
                pass
    return total


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(parts[11]) + int(parts[12])) / tick


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def config(tmp, iocs, log, port, start_at="beginning", retro=False):
    path = os.path.join(tmp, "tripline.toml")
    # Explicit either way: recording is on by default.
    extra = f"[retro]\nenabled = {'true' if retro else 'false'}\n"
    with open(path, "w") as f:
        f.write(f"""[intel]
paths = ["{iocs}"]
no_default_warninglists = true
watch = false
[[sources]]
type = "file"
include = ["{log}"]
start_at = "{start_at}"
rescan_interval_ms = 100
[alerts]
path = "-"
[metrics]
address = "127.0.0.1:{port}"
[state]
dir = "{tmp}/state"
{extra}""")
    return path


def start(cfg):
    return subprocess.Popen([BIN_IN_USE[0], "run", "--config", cfg], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, cwd=ROOT)


def wait_ready(port, proc, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            sys.exit("tripline run exited early")
        if metric(scrape(port), "tripline_ready") >= 1:
            return time.time() - t0
        time.sleep(0.1)
    sys.exit("tripline run never became ready")


def source_lines(path, n):
    out = []
    with open(path, "rb") as f:
        for line in f:
            out.append(line)
            if len(out) >= n:
                break
    while len(out) < n:
        out.extend(out[: n - len(out)])
    return out


def write_lines(src, dst, n):
    """Writes the first `n` lines of `src` to `dst`, starting over at its end as often as
    needed (streamed: a big `n` does not sit in memory). Returns the count written."""
    written = 0
    with open(dst, "wb") as out:
        while written < n:
            with open(src, "rb") as f:
                for line in f:
                    out.write(line)
                    written += 1
                    if written >= n:
                        break
    return written


def throughput(a):
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "app.log")
        lines = range(write_lines(a.log, log, a.lines))
        port = free_port()
        proc = start(config(tmp, a.iocs, log, port, retro=a.retro))
        ready = wait_ready(port, proc)
        threading.Thread(target=lambda: proc.stdout.read(), daemon=True).start()
        cpu0, t0 = cpu_seconds(proc.pid), time.time()
        while metric(scrape(port), "tripline_lines_received_total") < len(lines):
            time.sleep(0.05)
            if time.time() - t0 > 600:
                break
        dt, cpu = time.time() - t0, cpu_seconds(proc.pid) - cpu0
        n = metric(scrape(port), "tripline_lines_received_total")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        print(json.dumps({"bench": "throughput", "retro": a.retro, "lines": n, "index_ready_s": round(ready, 2),
                          "seconds": round(dt, 3), "lines_per_s": round(n / dt),
                          "cpu_seconds": round(cpu, 2), "lines_per_cpu_second": round(n / max(cpu, 1e-9)),
                          "loadavg": os.getloadavg()}))


def paced(a, seconds, rss_every=None):
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "app.log")
        open(log, "wb").close()
        port = free_port()
        proc = start(config(tmp, a.iocs + "," if False else a.iocs, log, port, "end", retro=a.retro))
        # The probe domain is added to the intel as its own list.
        wait_ready(port, proc)
        lat = []

        def reader():
            for raw in proc.stdout:
                now = time.time()
                m = re.search(rb"probe_ts=([0-9.]+)", raw)
                if m:
                    lat.append(now - float(m.group(1)))
        threading.Thread(target=reader, daemon=True).start()
        filler = source_lines(a.log, 100000)
        rss = [(0, rss_mib(proc.pid))]
        t0 = time.time()
        i = 0
        with open(log, "ab", buffering=0) as f:
            while time.time() - t0 < seconds:
                tick = time.time()
                batch = []
                per_tick = max(1, a.rate // 100)
                for _ in range(per_tick):
                    if i % 100 == 0:
                        batch.append(f"{time.time():.6f} probe_ts={time.time():.6f} q={PLANT}\n".encode())
                    else:
                        batch.append(filler[i % len(filler)])
                    i += 1
                f.write(b"".join(batch))
                if rss_every and time.time() - t0 >= rss[-1][0] + rss_every:
                    rss.append((round(time.time() - t0), rss_mib(proc.pid)))
                time.sleep(max(0, 0.01 - (time.time() - tick)))
        time.sleep(2)
        rss.append((round(time.time() - t0), rss_mib(proc.pid)))
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        lat.sort()
        q = lambda p: round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 2) if lat else None
        return {"lines_written": i, "seconds": round(time.time() - t0, 1), "rate_target": a.rate,
                "probes": i // 100, "alerts_seen": len(lat), "latency_ms": {"p50": q(0.5), "p99": q(0.99), "max": q(1.0)},
                "rss_mib": rss, "loadavg": os.getloadavg()}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["throughput", "latency", "soak"])
    p.add_argument("--lines", type=int, default=2_000_000)
    p.add_argument("--bin", default=BIN, help="the tripline binary to run (default: target/release/tripline)")
    p.add_argument("--retro", action="store_true",
                   help="record into the observation store ([retro] enabled = true)")
    p.add_argument("--rate", type=int, default=50_000)
    p.add_argument("--seconds", type=int, default=20)
    p.add_argument("--iocs", default=os.path.join(ROOT, "benches/work/seed-42/iocs-1000000.txt"))
    p.add_argument("--log", default=os.path.join(ROOT, "benches/work/seed-42/log-1024.log"))
    a = p.parse_args()
    BIN_IN_USE[0] = a.bin
    if not os.path.exists(a.log):
        a.log = os.path.join(ROOT, "fixtures/logs/apache_access.log")
    if a.mode in ("latency", "soak"):
        # Add the probe indicator: a copy of the list with the probe domain appended.
        tmp = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False)
        with open(a.iocs) as f:
            tmp.write(f.read())
        tmp.write(PLANT + "\n")
        tmp.close()
        a.iocs = tmp.name
    if a.mode == "throughput":
        throughput(a)
    elif a.mode == "latency":
        print(json.dumps({"bench": "latency", **paced(a, a.seconds)}))
    else:
        a.rate = a.rate if a.rate != 50_000 else 20_000
        print(json.dumps({"bench": "soak", **paced(a, a.seconds, rss_every=10)}))


if __name__ == "__main__":
    main()
