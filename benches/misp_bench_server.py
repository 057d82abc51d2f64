#!/usr/bin/env python3
"""A MISP REST stand-in for the intel cache benchmark (benches/intel_cache.sh).

Generated data, no network: N attributes (`ip-dst`, to_ids) in events of
--per-event attributes, rendered as MISP 2.4 `attributes/restSearch` answers and
written once to page files under --pages DIR (reused when present), so that a pull
costs the server a file read, not JSON generation, and the figures are the client's.

Usage: misp_bench_server.py --key KEY --total N --per-event M --limit L --pages DIR
Prints "PORT <n>" once listening (127.0.0.1).

- POST /attributes/restSearch without `attribute_timestamp`: page P of the full pull.
- POST /attributes/restSearch with `attribute_timestamp`: the changes made by
  POST /_change (one page; an empty page when none).
- POST /events/index: every event with its timestamp.
- POST /_change {"count": C, "events": E}: C attributes, spread over the first E
  events, get a new value and a timestamp newer than every other (an edit in MISP).
"""

import argparse
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BASE_TS = 1700000000


def attr_json(i, per_event, value=None, ts=None):
    ev = (i - 1) // per_event
    if value is None:
        value = "%d.%d.%d.%d" % (11 + (i >> 24) % 200, (i >> 16) & 255, (i >> 8) & 255, i & 255)
    if ts is None:
        ts = BASE_TS + i // 100
    eu = "%08x-0000-4000-8000-%012x" % (ev, ev)
    return (
        '{"id": "%d", "event_id": "%d", "object_id": "0", "object_relation": null, '
        '"category": "Network activity", "type": "ip-dst", "to_ids": true, '
        '"uuid": "%08x-1111-4000-8000-%012x", "timestamp": "%d", "distribution": "5", '
        '"sharing_group_id": "0", "comment": "", "deleted": false, '
        '"disable_correlation": false, "first_seen": null, "last_seen": null, '
        '"value": "%s", "Event": {"org_id": "1", "distribution": "1", "id": "%d", '
        '"info": "generated event", "orgc_id": "1", "uuid": "%s", '
        '"publish_timestamp": "%d"}, "event_uuid": "%s", "Tag": ['
        '{"id": "1000", "name": "tlp:green", "colour": "#004577", "numerical_value": null, "local": 0}, '
        '{"id": "1100", "name": "tlp:green", "colour": "#004577", "numerical_value": null, "local": 0, '
        '"inherited": true}]}'
        % (i, ev + 1, i >> 32, i & 0xFFFFFFFFFFFF, ts, value, ev + 1, eu, BASE_TS, eu)
    )


def write_pages(d, total, per_event, limit):
    os.makedirs(d, exist_ok=True)
    stamp = os.path.join(d, "DONE-%d-%d-%d" % (total, per_event, limit))
    if os.path.exists(stamp):
        return
    pages = (total + limit - 1) // limit
    for p in range(1, pages + 1):
        lo, hi = (p - 1) * limit + 1, min(total, p * limit)
        with open(os.path.join(d, "page%04d.json" % p), "w") as f:
            f.write('{"response": {"Attribute": [')
            f.write(", ".join(attr_json(i, per_event) for i in range(lo, hi + 1)))
            f.write("]}}")
    open(stamp, "w").close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--key", required=True)
    ap.add_argument("--total", type=int, required=True)
    ap.add_argument("--per-event", type=int, default=1000)
    ap.add_argument("--limit", type=int, default=10000)
    ap.add_argument("--pages", required=True)
    a = ap.parse_args()
    write_pages(a.pages, a.total, a.per_event, a.limit)
    events = (a.total + a.per_event - 1) // a.per_event
    state = {"changes": [], "round": 0}

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def send(self, data):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(n) or b"{}")
            if self.path == "/_change":
                state["round"] += 1
                c, e = int(body["count"]), max(1, int(body["events"]))
                ts = BASE_TS + a.total // 100 + 1000 * state["round"]
                out = []
                for k in range(c):
                    ev = k % e
                    i = ev * a.per_event + 1 + (k // e) % a.per_event
                    out.append(attr_json(i, a.per_event, "10.%d.%d.%d" % (state["round"], k >> 8, k & 255), ts))
                state["changes"] = out
                return self.send(b'{"ok": true}')
            if self.headers.get("Authorization") != a.key:
                self.send_response(403)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.path == "/events/index":
                ts = BASE_TS + a.total // 100
                out = [{"id": str(ev + 1), "timestamp": str(ts), "uuid": "%08x-0000-4000-8000-%012x" % (ev, ev)}
                       for ev in range(events)]
                return self.send(json.dumps(out).encode())
            if self.path == "/attributes/restSearch":
                if "attribute_timestamp" in body:
                    page = int(body.get("page", 1))
                    lim = int(body.get("limit", a.limit))
                    part = state["changes"][(page - 1) * lim: page * lim]
                    return self.send(('{"response": {"Attribute": [' + ", ".join(part) + "]}}").encode())
                p = os.path.join(a.pages, "page%04d.json" % int(body.get("page", 1)))
                data = b'{"response": {"Attribute": []}}'
                if os.path.exists(p):
                    with open(p, "rb") as f:
                        data = f.read()
                return self.send(data)
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), H)
    print("PORT %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
