#!/usr/bin/env python3
"""A fake MISP for tripline's sighting tests: /sightings/add and /sightings/restSearch.

It checks what MISP checks (the Authorization header, JSON bodies, sighting types as
strings "0"/"1"/"2", attribute UUIDs, restSearch filters), is stricter where a mistake
would matter (unknown keys are a 400; a by-value sighting without `filters` is
recorded as `unrestricted`), records everything that arrived, and can misbehave on
demand.

Usage: fake_misp.py --key KEY --attributes ATTRS.json [--port N] [--state FILE]
                    [--tls-cert CERT.pem --tls-key KEY.pem]
  ATTRS.json: [{"uuid": ..., "value": ..., "event_uuid": ..., "type": ...}, ...]
  --state FILE: load and save recorded sightings there (survives a restart: "down").
Prints "PORT <n>" on its first line once listening.

Control (no auth): POST /_control {"mode": M, "times": N, "hang_secs": S,
                                   "old_release": B}
  M: ok | fail (500, nothing recorded) | fail_after_record (records, then 500) |
     hang (records, then answers after S seconds) |
     hang_before_record (waits S seconds, records nothing, then 500) |
     slow (waits S seconds, then records and answers: a server slower than the
           client's timeout that still applies the sighting) |
     fail_search (restSearch answers 500)
  B (kept until changed): an older MISP release whose sightings restSearch takes only
     numeric ids (`id`); a `uuid` filter with a context answers 405 "An id must be
     provided if the context is set." /attributes/restSearch (uuid or value) gives the
     attributes' numeric ids (their position in ATTRS.json, from 1).
  N: how many /sightings/add (or restSearch) requests the mode applies to (default:
     until changed). GET /_state: {"sightings": [...], "requests": [...], "arrived": n}
     (requests list answered ones; arrived counts /sightings/add requests as they come;
     hanging counts requests applied and held by `hang`).
"""

import argparse
import json
import os
import re
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
ADD_KEYS = {"uuid", "id", "value", "values", "type", "source", "timestamp", "date_sighting", "filters"}
SEARCH_KEYS = {"returnFormat", "id", "uuid", "type", "from", "to", "last", "org_id", "source",
               "includeAttribute", "includeEvent", "context"}
AUTH_FAILED = ("Authentication failed. Please make sure you pass the API key of an API "
               "enabled user along in the Authorization header.")
NOT_FOUND = "Could not add the Sighting. Reason: No valid attributes found that match the criteria."


class State:
    def __init__(self, key, attributes, state_file):
        self.key = key
        self.attributes = attributes
        self.state_file = state_file
        self.lock = threading.Lock()
        self.sightings = []
        self.requests = []
        self.arrived = 0
        self.hanging = 0
        self.mode = "ok"
        self.times = None
        self.hang_secs = 30.0
        self.old_release = False
        for i, a in enumerate(self.attributes):
            a.setdefault("id", str(i + 1))
        if state_file:
            try:
                with open(state_file) as f:
                    self.sightings = json.load(f)
            except FileNotFoundError:
                pass

    def take_mode(self, search):
        """The mode for this request (consumes one of `times`)."""
        with self.lock:
            mode = self.mode
            applies = (mode == "fail_search") == search
            if not applies or mode == "ok":
                return "ok"
            if self.times is not None:
                self.times -= 1
                if self.times <= 0:
                    self.mode, self.times = "ok", None
            return mode

    def save(self):
        if self.state_file:
            tmp = self.state_file + ".tmp"
            with open(tmp, "w") as f:
                json.dump(self.sightings, f)
            os.replace(tmp, self.state_file)


def as_int(v):
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and re.fullmatch(r"\d+", v.strip()):
        return int(v)
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None  # set at startup

    def log_message(self, fmt, *args):  # quiet
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def note(self, path, status, raw):
        with self.state.lock:
            self.state.requests.append({
                "at": time.time(),
                "path": path,
                "status": status,
                "authorization_ok": self.headers.get("Authorization") == self.state.key,
                "body": raw.decode("utf-8", "replace"),
            })

    def do_GET(self):
        if self.path.startswith("/_state"):
            with self.state.lock:
                return self.reply(200, {"sightings": self.state.sightings,
                                        "requests": self.state.requests,
                                        "arrived": self.state.arrived,
                                        "hanging": self.state.hanging})
        self.reply(404, {"message": "not found"})

    def do_POST(self):
        raw = self.read_body()
        path = self.path.split("?")[0].rstrip("/")
        if path == "/_control":
            body = json.loads(raw or b"{}")
            with self.state.lock:
                if "old_release" in body:
                    self.state.old_release = bool(body["old_release"])
                self.state.mode = body.get("mode", "ok")
                self.state.times = body.get("times")
                self.state.hang_secs = float(body.get("hang_secs", 30))
            return self.reply(200, {"mode": self.state.mode})
        if self.headers.get("Authorization") != self.state.key:
            self.note(path, 403, raw)
            return self.reply(403, {"name": AUTH_FAILED, "message": AUTH_FAILED, "url": path})
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json" \
                or "application/json" not in self.headers.get("Accept", ""):
            self.note(path, 415, raw)
            return self.reply(415, {"message": "Content-Type and Accept must be application/json"})
        try:
            body = json.loads(raw)
        except ValueError:
            self.note(path, 400, raw)
            return self.reply(400, {"message": "Malformed JSON"})
        if not isinstance(body, dict):
            self.note(path, 400, raw)
            return self.reply(400, {"message": "Expected a JSON object"})
        if path == "/sightings/add":
            with self.state.lock:
                self.state.arrived += 1
            return self.add(body, raw)
        m = re.fullmatch(r"/sightings/restSearch(?:/(attribute|event))?", path)
        if m:
            return self.search(body, m.group(1), raw)
        if path == "/attributes/restSearch":
            return self.attributes_search(body, raw)
        self.note(path, 404, raw)
        self.reply(404, {"message": "Invalid action"})

    def add(self, body, raw):
        st = self.state
        problems = []
        unknown = set(body) - ADD_KEYS
        if unknown:
            problems.append("unknown keys %s" % sorted(unknown))
        ty = body.get("type", "0")
        if not isinstance(ty, str) or ty not in ("0", "1", "2"):
            problems.append("type must be \"0\", \"1\" or \"2\" (got %r)" % (ty,))
        ts = body.get("timestamp")
        if ts is not None and as_int(ts) is None:
            problems.append("timestamp must be a Unix time")
        if "date_sighting" in body and as_int(body["date_sighting"]) != as_int(ts):
            problems.append("date_sighting differs from timestamp")
        if "source" in body and not isinstance(body["source"], str):
            problems.append("source must be a string")
        has_uuid = "uuid" in body
        has_value = "value" in body or "values" in body
        if has_uuid == has_value:
            problems.append("exactly one of uuid and value")
        if has_uuid and not (isinstance(body["uuid"], str) and UUID_RE.match(body["uuid"])):
            problems.append("uuid must be a UUID")
        filters = body.get("filters")
        if filters is not None:
            if not isinstance(filters, dict) or set(filters) - {"uuid", "eventid"} or \
                    not all(isinstance(u, str) and UUID_RE.match(u) for u in filters.get("uuid", [])):
                problems.append("filters must be {\"uuid\": [event UUIDs]}")
            if has_uuid:
                problems.append("filters only with a value")
        if problems:
            self.note("/sightings/add", 400, raw)
            return self.reply(400, {"name": "; ".join(problems), "message": "; ".join(problems),
                                    "url": "/sightings/add"})

        mode = st.take_mode(search=False)
        if mode == "fail":
            self.note("/sightings/add", 500, raw)
            return self.reply(500, {"name": "An Internal Error Has Occurred.", "url": "/sightings/add"})
        if mode == "slow":
            time.sleep(st.hang_secs)
        if mode == "hang_before_record":
            time.sleep(st.hang_secs)
            self.note("/sightings/add", 500, raw)
            return self.reply(500, {"name": "An Internal Error Has Occurred.", "url": "/sightings/add"})

        if has_uuid:
            matched = [a for a in st.attributes if a["uuid"].lower() == body["uuid"].lower()]
            unrestricted = False
        else:
            values = body.get("values") or [body.get("value")]
            values = [v.lower() for v in values if isinstance(v, str)]
            matched = [a for a in st.attributes if a["value"].lower() in values]
            unrestricted = filters is None
            if filters is not None and "uuid" in filters:
                events = {u.lower() for u in filters["uuid"]}
                matched = [a for a in matched if a["event_uuid"].lower() in events]
        if not matched:
            self.note("/sightings/add", 200, raw)
            return self.reply(200, {"message": NOT_FOUND})
        date = str(as_int(ts) if ts is not None else int(time.time()))
        with st.lock:
            for a in matched:
                st.sightings.append({
                    "id": str(len(st.sightings) + 1),
                    "uuid": str(uuid.uuid4()),
                    "attribute_uuid": a["uuid"],
                    "attribute_id": a["id"],
                    "event_uuid": a["event_uuid"],
                    "attribute_value": a["value"],
                    "org_id": "1",
                    "date_sighting": date,
                    "type": ty,
                    "source": body.get("source", "").strip(),
                    "unrestricted": unrestricted,
                    "raw": body,
                })
            st.save()
            last = dict(st.sightings[-1])
        for k in ("raw", "unrestricted", "attribute_value", "event_uuid", "attribute_id"):
            last.pop(k, None)
        if mode == "fail_after_record":
            self.note("/sightings/add", 500, raw)
            return self.reply(500, {"name": "An Internal Error Has Occurred.", "url": "/sightings/add"})
        if mode == "hang":
            with st.lock:
                st.hanging += 1
            time.sleep(st.hang_secs)
        self.note("/sightings/add", 200, raw)
        self.reply(200, {"Sighting": last})

    def search(self, body, context, raw):
        st = self.state
        unknown = set(body) - SEARCH_KEYS
        if unknown:
            self.note("/sightings/restSearch", 400, raw)
            return self.reply(400, {"message": "unknown filters %s" % sorted(unknown)})
        if st.old_release and context and "id" not in body:
            # MISP before restSearch took UUIDs: MethodNotAllowedException.
            self.note("/sightings/restSearch", 405, raw)
            return self.reply(405, {"name": "An id must be provided if the context is set.",
                                    "message": "An id must be provided if the context is set.",
                                    "url": "/sightings/restSearch/" + context})
        if context and "uuid" not in body and "id" not in body:
            self.note("/sightings/restSearch", 400, raw)
            return self.reply(400, {"message": "An ID or UUID must be provided if the context is set."})
        if st.take_mode(search=True) == "fail_search":
            self.note("/sightings/restSearch", 500, raw)
            return self.reply(500, {"name": "An Internal Error Has Occurred."})
        uuids = body.get("uuid")
        if isinstance(uuids, str):
            uuids = [uuids]
        uuids = {u.lower() for u in (uuids or [])}
        ids = body.get("id")
        if ids is not None and not isinstance(ids, list):
            ids = [ids]
        ids = None if ids is None else {str(i) for i in ids}
        frm, to = as_int(body.get("from")), as_int(body.get("to"))
        if frm is None and to is None and "last" not in body:
            frm = int(time.time()) - 30 * 86400  # MISP's default: the last 30 days
        out = []
        with st.lock:
            for s in st.sightings:
                d = int(s["date_sighting"])
                if ids is not None:
                    if context == "attribute" and s.get("attribute_id") not in ids:
                        continue
                elif context == "attribute" and s["attribute_uuid"].lower() not in uuids:
                    continue
                if context == "event" and s["event_uuid"].lower() not in uuids:
                    continue
                if frm is not None and d < frm or to is not None and d > to:
                    continue
                if "type" in body and str(body["type"]) != s["type"]:
                    continue
                if "source" in body and body["source"] != s["source"]:
                    continue
                item = {k: s[k] for k in ("id", "uuid", "org_id", "date_sighting", "type", "source")}
                item["attribute_id"] = s.get("attribute_id", "1")
                item["event_id"] = "1"
                if body.get("includeAttribute"):
                    item["attribute_uuid"] = s["attribute_uuid"]
                    item["attribute_value"] = s["attribute_value"]
                out.append({"Sighting": item})
        self.note("/sightings/restSearch", 200, raw)
        self.reply(200, {"response": out})


    def attributes_search(self, body, raw):
        st = self.state
        out = []
        want_uuid = body.get("uuid")
        want_value = body.get("value")
        for a in st.attributes:
            if want_uuid is not None and a["uuid"].lower() != str(want_uuid).lower():
                continue
            if want_value is not None and a["value"].lower() != str(want_value).lower():
                continue
            out.append({"id": a["id"], "uuid": a["uuid"], "value": a["value"],
                        "type": a.get("type", "domain"), "event_id": "1",
                        "Event": {"uuid": a["event_uuid"]}})
        self.note("/attributes/restSearch", 200, raw)
        self.reply(200, {"response": {"Attribute": out}})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # Clients killed mid-request (the tests do that) are expected; others are not.
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--key", required=True)
    p.add_argument("--attributes", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--state")
    p.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate (chain)")
    p.add_argument("--tls-key")
    a = p.parse_args()
    with open(a.attributes) as f:
        attributes = json.load(f)
    Handler.state = State(a.key, attributes, a.state)
    server = Server(("127.0.0.1", a.port), Handler)
    if a.tls_cert:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print("PORT %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
