#!/usr/bin/env python3
"""A feed server for tripline's intel sync tests: serves the files of a directory
over HTTP as feed hosts do, with validators and conditional requests.

Every answer carries an ETag (a hash of the content) and a Last-Modified (the
file's mtime); a GET with a matching If-None-Match (or, without one, an
If-Modified-Since not older than the file) answers 304 with no body. Files are
read at each request, so a test changes the feed by writing into the directory.
With --key K, a request without "Authorization: Bearer K" answers 401.

Usage: feed_server.py --dir DIR [--port N] [--key K]
Prints "PORT <n>" on its first line once listening.

Control (no auth): POST /_control {"fail": {"/path": STATUS, ...},
                                   "hang": ["/path", ...]}
  fail: those paths answer STATUS (e.g. 500) until changed; "*" means every path.
  hang: those paths send their headers and half the body, then hang until the
        client goes away (a server stalling mid-feed).
  An empty object resets both.
GET /_log: every request answered, in order: [{"path", "status",
  "if_none_match", "if_modified_since", "authorization_ok"}, ...].
"""

import argparse
import email.utils
import hashlib
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class State:
    def __init__(self, root, key):
        self.root = os.path.realpath(root)
        self.key = key
        self.lock = threading.Lock()
        self.fail = {}
        self.hang = set()
        self.log = []


def make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def send_body(self, status, body, headers=()):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)

        def record(self, status):
            auth = self.headers.get("Authorization")
            with state.lock:
                state.log.append({
                    "path": self.path,
                    "status": status,
                    "if_none_match": self.headers.get("If-None-Match"),
                    "if_modified_since": self.headers.get("If-Modified-Since"),
                    "authorization_ok": state.key is None or auth == f"Bearer {state.key}",
                })

        def do_POST(self):
            if self.path != "/_control":
                self.send_body(404, b"not found")
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            with state.lock:
                state.fail = {k: int(v) for k, v in body.get("fail", {}).items()}
                state.hang = set(body.get("hang", []))
            self.send_body(200, b"{}")

        def do_GET(self):
            if self.path == "/_log":
                with state.lock:
                    body = json.dumps(state.log).encode()
                self.send_body(200, body, [("Content-Type", "application/json")])
                return
            path = self.path.split("?", 1)[0]
            with state.lock:
                fail = state.fail.get(path, state.fail.get("*"))
                hang = path in state.hang
            if state.key is not None and self.headers.get("Authorization") != f"Bearer {state.key}":
                self.record(401)
                self.send_body(401, b"unauthorized")
                return
            if fail is not None:
                self.record(fail)
                self.send_body(fail, b"feed server told to fail")
                return
            full = os.path.realpath(os.path.join(state.root, path.lstrip("/")))
            if not full.startswith(state.root + os.sep) or not os.path.isfile(full):
                self.record(404)
                self.send_body(404, b"not found")
                return
            with open(full, "rb") as f:
                data = f.read()
            mtime = int(os.stat(full).st_mtime)
            etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
            last_modified = email.utils.formatdate(mtime, usegmt=True)
            validators = [("ETag", etag), ("Last-Modified", last_modified)]
            inm = self.headers.get("If-None-Match")
            ims = self.headers.get("If-Modified-Since")
            not_modified = False
            if inm is not None:
                not_modified = inm == etag
            elif ims is not None:
                try:
                    since = email.utils.parsedate_to_datetime(ims).timestamp()
                    not_modified = mtime <= since
                except (TypeError, ValueError):
                    pass
            if not_modified:
                self.record(304)
                self.send_response(304)
                for k, v in validators:
                    self.send_header(k, v)
                self.end_headers()
                return
            if hang:
                self.record(200)
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                while True:
                    time.sleep(3600)
            self.record(200)
            self.send_body(200, data, validators + [("Content-Type", "application/octet-stream")])

    return Handler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--key")
    args = ap.parse_args()
    state = State(args.dir, args.key)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(state))
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
