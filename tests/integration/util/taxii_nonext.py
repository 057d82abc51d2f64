"""A TAXII 2.1 stand-in that pages by X-TAXII-Date-Added-Last (and gives `next` only when told).

Usage: python3 taxii_nonext.py PORT DIR

Serves one API root `/api1/` with one collection `nonext-collection`:
- GET /api1/collections/nonext-collection/          the collection resource
- GET /api1/collections/nonext-collection/objects/  objects, paged by `added_after` only

Data and behaviour are read from DIR at every request, so a test changes them by
rewriting files:
- DIR/objects.json: [{"date_added": "2024-05-01T10:00:00.123456Z", "object": {...}}, ...]
  (several versions of an object may be listed; dates are kept as the strings given and
  compared to the microsecond);
- DIR/control.json (optional): {"page_size": N, "token": "T" (require Bearer T),
  "fail_status": 500, "fail_from": K (answer fail_status from the K-th objects request
  on, counted from 1 since the file was last written), "bad_json": true (answer objects
  requests with HTML), "give_next": true (also give `next` tokens while `more`)}.

Every request's raw path and query goes to DIR/requests.log, one line each; every object
served goes to DIR/served.log as `<id> <version> <date_added>`. A request with a `next`
this server did not give, with both `next` and `added_after`, or with an `added_after`
that is not a TAXII timestamp is answered 400.
"""

import datetime as dt
import json
import os
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1])
DIR = sys.argv[2]
ROOT = "/api1/"
COLLECTION = "nonext-collection"
MEDIA = "application/taxii+json;version=2.1"
COUNTER = {"objects_requests": 0, "control_mtime": None}


def parse_ts(s):
    for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return dt.datetime.strptime(s, fmt)
        except ValueError:
            pass
    raise ValueError(s)


def version_of(o):
    return o.get("modified") or o.get("created") or ""


def read_json(name, default):
    try:
        with open(os.path.join(DIR, name), encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return default


def log(name, line):
    with open(os.path.join(DIR, name), "a", encoding="utf-8") as f:
        f.write(line + "\n")


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", MEDIA)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        log("requests.log", self.path)
        control = read_json("control.json", {})
        try:
            mtime = os.stat(os.path.join(DIR, "control.json")).st_mtime_ns
        except FileNotFoundError:
            mtime = None
        if mtime != COUNTER["control_mtime"]:
            COUNTER["control_mtime"] = mtime
            COUNTER["objects_requests"] = 0
        token = control.get("token")
        if token and self.headers.get("Authorization") != f"Bearer {token}":
            return self.answer(401, {"title": "unauthorized"})
        if self.headers.get("Accept") != MEDIA:
            return self.answer(406, {"title": "not acceptable"})
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        base = f"{ROOT}collections/{COLLECTION}/"
        if url.path == base:
            return self.answer(200, {"id": COLLECTION, "title": "no-next stand-in",
                                     "can_read": True, "can_write": False,
                                     "media_types": ["application/stix+json;version=2.1"]})
        if url.path != base + "objects/":
            return self.answer(404, {"title": "not found"})
        COUNTER["objects_requests"] += 1
        fail_from = control.get("fail_from")
        if fail_from is not None and COUNTER["objects_requests"] >= fail_from:
            return self.answer(control.get("fail_status", 500), {"title": "failing on purpose"})
        if control.get("bad_json"):
            data = b"<html>upstream proxy error</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return None
        if "next" in query and "added_after" in query:
            return self.answer(400, {"title": "next and added_after together"})
        after = None
        if "next" in query:
            token = query["next"][0]
            if not control.get("give_next") or not token.startswith("after-"):
                return self.answer(400, {"title": "no such next"})
            after = parse_ts(token[len("after-"):])
        if "added_after" in query:
            try:
                after = parse_ts(query["added_after"][0])
            except ValueError:
                return self.answer(400, {"title": "bad added_after"})
        types = query.get("match[type]", [""])[0].split(",")
        if query.get("match[version]", ["last"])[0] != "last":
            return self.answer(400, {"title": "this stand-in serves match[version]=last only"})
        entries = [e for e in read_json("objects.json", [])
                   if (after is None or parse_ts(e["date_added"]) > after)
                   and (types == [""] or e["object"]["type"] in types)]
        # The last version of each object among those added after `after`.
        last = {}
        for e in entries:
            o = e["object"]
            cur = last.get(o["id"])
            if cur is None or parse_ts(version_of(o)) > parse_ts(version_of(cur["object"])):
                last[o["id"]] = e
        ordered = sorted(last.values(), key=lambda e: parse_ts(e["date_added"]))
        size = control.get("page_size", 100)
        if "limit" in query:
            size = min(size, int(query["limit"][0]))
        page = ordered[:size]
        headers = []
        if page:
            headers = [("X-TAXII-Date-Added-First", page[0]["date_added"]),
                       ("X-TAXII-Date-Added-Last", page[-1]["date_added"])]
        for e in page:
            log("served.log", f'{e["object"]["id"]} {version_of(e["object"])} {e["date_added"]}')
        body = {"more": len(ordered) > len(page), "objects": [e["object"] for e in page]}
        if control.get("give_next") and body["more"]:
            body["next"] = "after-" + page[-1]["date_added"]
        return self.answer(200, body, headers)


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
