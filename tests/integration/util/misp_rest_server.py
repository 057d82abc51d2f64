#!/usr/bin/env python3
"""A MISP REST stand-in for tripline's intel sync tests: /attributes/restSearch and
/events/index (MISP itself cannot run here).

It serves attributes flattened from real MISP events (their objects' attributes
included), answers in MISP's shapes (`{"response": {"Attribute": [...]}}` with an
`Event` sub-object, `event_uuid` and inherited event tags; `events/index` minimal as a
list of `{id, timestamp, sighting_timestamp, published, uuid, orgc_uuid}`), pages by
`limit`/`page` in attribute id order, and honours `attribute_timestamp`, `deleted`,
`to_ids`, `published`, `tags`, `type`, `eventid` (id or uuid) and
`includeDecayScore`. `X-Result-Count` is deliberately wrong (half the real count), as
MISP's is with decay filters: a client must page until a short page.

Request bodies are checked against MISP's documented parameters (the `Attribute` list
of MISP's RestSearchComponent::$paramArray, and the `events/index` override and
pagination parameters of EventsController::index): an unknown parameter, a missing
`returnFormat`, `timestamp` (MISP tests it against the event timestamp too, so a poll
by it misses changes: `attribute_timestamp` is the one to poll by), a missing
`limit`/`page` (paging is required here), or a wrong Authorization, Accept or
Content-Type header answers 400 (403 for the key) and is recorded as a violation.

Usage: misp_rest_server.py --key KEY [--port N] [--generate N --per-event M] EVENT.json...
Prints "PORT <n>" on its first line once listening.

Control (no auth):
  POST /_control {"op": "fail", "path": P, "page": N|null, "status": S, "times": T}
      the next T requests to P (for page N only, when given) answer S.
  POST /_control {"op": "edit", "uuid": U, "set": {...}, "timestamp": T}
      changes attribute U (fields in "set") with attribute timestamp T; its event's
      timestamp becomes T too (as an edit in MISP does).
  POST /_control {"op": "delete", "uuid": U, "timestamp": T}   soft delete, as MISP.
  POST /_control {"op": "add_event", "event": {...}}
      adds a MISP event keeping its own (old) event and attribute timestamps, as a
      sync from another instance does.
  POST /_control {"op": "remove_event", "uuid": U}   hard delete of an event.
  GET /_state: {"violations": [...], "requests": [{"path", "body", "status"}],
                "attributes": [{"uuid", "event_uuid", "deleted", "type", "value",
                                "timestamp", "to_ids"}]}
  GET /_page?limit=L&page=P: the restSearch answer bytes for a plain full pull (bench).
"""

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# MISP app/Controller/Component/RestSearchComponent.php, $paramArray['Attribute'].
ATTRIBUTE_PARAMS = {
    "returnFormat", "value", "value1", "value2", "type", "category", "org", "tags", "from",
    "to", "last", "eventid", "withAttachments", "uuid", "publish_timestamp", "published",
    "timestamp", "enforceWarninglist", "to_ids", "deleted", "includeEventUuid",
    "event_timestamp", "threat_level_id", "includeEventTags", "includeProposals", "limit",
    "page", "requested_attributes", "includeContext", "headerless",
    "includeWarninglistHits", "attackGalaxy", "object_relation", "includeSightings",
    "includeCorrelations", "includeDecayScore", "decayingModel", "excludeDecayed",
    "modelOverrides", "includeFullModel", "score", "attribute_timestamp", "first_seen",
    "last_seen", "eventinfo", "sharinggroup", "allow_proposal_blocking", "flatten", "list",
    "event_ids", "includeAllTags", "includeAttributeUuid", "includeGalaxy", "order",
    "policy", "walled_garden", "ns", "email", "serial", "refresh", "retry", "expiry",
    "minimum_ttl", "ttl",
}
# MISP app/Controller/EventsController.php index(): $overrideAbleParams + pagination.
INDEX_PARAMS = {
    "all", "attribute", "published", "eventid", "datefrom", "dateuntil", "org", "eventinfo",
    "tag", "tags", "distribution", "sharinggroup", "analysis", "threatlevel", "email",
    "hasproposal", "timestamp", "publishtimestamp", "publish_timestamp", "minimal", "value",
    "limit", "page", "sort", "direction", "order",
}
AUTH_FAILED = ("Authentication failed. Please make sure you pass the API key of an API "
               "enabled user along in the Authorization header.")


def flag(v):
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return v != 0
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true")
    return False


def as_list(v):
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


class Store:
    def __init__(self):
        self.lock = threading.Lock()
        self.events = {}      # uuid -> event dict
        self.attributes = []  # in id order
        self.by_uuid = {}
        self.next_attr_id = 1
        self.next_event_id = 1
        self.generated = 0
        self.per_event = 1000

    def add_event(self, ev):
        ev = ev.get("Event", ev)
        uuid = ev["uuid"].lower()
        e = {
            "id": self.next_event_id,
            "uuid": uuid,
            "info": ev.get("info", ""),
            # Feed-format events carry no distribution: MISP gives them the instance
            # default on import ("3", all communities, here).
            "distribution": str(ev.get("distribution", "3")),
            "published": flag(ev.get("published", False)),
            "timestamp": int(ev.get("timestamp", 0)),
            "publish_timestamp": str(ev.get("publish_timestamp", ev.get("timestamp", 0))),
            "orgc_uuid": (ev.get("Orgc") or {}).get("uuid", "5d0a8fd6-0000-4000-8000-000000000001"),
            "tags": [t["name"] for t in ev.get("Tag", []) if t.get("name")],
        }
        self.next_event_id += 1
        self.events[uuid] = e
        attrs = list(ev.get("Attribute", []))
        for obj in ev.get("Object", []):
            for a in obj.get("Attribute", []):
                a = dict(a)
                a["object_id"] = str(obj.get("id", "1"))
                attrs.append(a)
        for a in attrs:
            if not a.get("uuid"):
                continue
            self.add_attribute(e, a)

    def add_attribute(self, e, a):
        rec = {
            "id": self.next_attr_id,
            "event": e["uuid"],
            "uuid": a["uuid"].lower(),
            "type": a["type"],
            "category": a.get("category", "Other"),
            "value": a["value"],
            "to_ids": flag(a.get("to_ids", False)),
            "distribution": str(a.get("distribution", "5")),
            "timestamp": int(a.get("timestamp", e["timestamp"])),
            "deleted": flag(a.get("deleted", False)),
            "comment": a.get("comment", ""),
            "object_id": str(a.get("object_id", "0")),
            "object_relation": a.get("object_relation"),
            "first_seen": a.get("first_seen"),
            "last_seen": a.get("last_seen"),
            "tags": [t["name"] for t in (a.get("Tag") or []) if t.get("name")],
        }
        self.next_attr_id += 1
        self.attributes.append(rec)
        self.by_uuid[rec["uuid"]] = rec

    def generate(self, count, per_event):
        """Synthetic attributes, made on the fly per page (bench): ids 1..count."""
        self.generated = count
        self.per_event = per_event

    def gen_attr(self, i):
        ev = (i - 1) // self.per_event
        return {
            "id": i, "event": "%08x-0000-4000-8000-%012x" % (ev, ev),
            "uuid": "%08x-1111-4000-8000-%012x" % (i >> 32, i & 0xFFFFFFFFFFFF),
            "type": "ip-dst", "category": "Network activity",
            "value": "%d.%d.%d.%d" % (11 + (i >> 24) % 200, (i >> 16) & 255, (i >> 8) & 255, i & 255),
            "to_ids": True, "distribution": "5", "timestamp": 1700000000 + i // 100,
            "deleted": False, "comment": "", "object_id": "0", "object_relation": None,
            "first_seen": None, "last_seen": None, "tags": ["tlp:green"],
        }

    def gen_event(self, uuid):
        return {"id": int(uuid[:8], 16) + 1, "uuid": uuid, "info": "generated event",
                "distribution": "1", "published": True, "timestamp": 1700000000,
                "publish_timestamp": "1700000000", "orgc_uuid": "5d0a8fd6-0000-4000-8000-000000000001",
                "tags": ["tlp:green"]}


def tag_json(name, i, inherited=False):
    t = {"id": str(1000 + i), "name": name, "colour": "#004577", "numerical_value": None,
         "local": 0}
    if inherited:
        t["inherited"] = True
    return t


def render(a, e, body):
    out = {
        "id": str(a["id"]), "event_id": str(e["id"]), "object_id": a["object_id"],
        "object_relation": a["object_relation"], "category": a["category"], "type": a["type"],
        "to_ids": a["to_ids"], "uuid": a["uuid"], "timestamp": str(a["timestamp"]),
        "distribution": a["distribution"], "sharing_group_id": "0", "comment": a["comment"],
        "deleted": a["deleted"], "disable_correlation": False, "first_seen": a["first_seen"],
        "last_seen": a["last_seen"], "value": a["value"],
        "Event": {"org_id": "1", "distribution": e["distribution"], "id": str(e["id"]),
                  "info": e["info"], "orgc_id": "1", "uuid": e["uuid"],
                  "publish_timestamp": e["publish_timestamp"]},
    }
    if flag(body.get("includeEventUuid")):
        out["event_uuid"] = e["uuid"]
    tags = [tag_json(n, i) for i, n in enumerate(a["tags"])]
    if flag(body.get("includeEventTags")):
        tags += [tag_json(n, 100 + i, True) for i, n in enumerate(e["tags"])]
    if tags:
        out["Tag"] = tags
    if flag(body.get("includeDecayScore")):
        out["decay_score"] = [{"DecayingModel": {"id": "1", "name": "NIDS Simple Decaying Model"},
                               "score": 72.5, "base_score": 80, "decayed": False}]
    return out


class State:
    def __init__(self, key):
        self.key = key
        self.store = Store()
        self.violations = []
        self.requests = []
        self.failures = []


def matches(a, e, body):
    deleted = body.get("deleted", 0)
    dl = [flag(x) for x in as_list(deleted)]
    if deleted == "only":
        dl = [True]
    if a["deleted"] not in (dl or [False]):
        return False
    if "attribute_timestamp" in body and a["timestamp"] < int(body["attribute_timestamp"]):
        return False
    if "to_ids" in body and a["to_ids"] != flag(body["to_ids"]):
        return False
    if "published" in body and e["published"] != flag(body["published"]):
        return False
    types = as_list(body.get("type"))
    if types and a["type"] not in types:
        return False
    tags = as_list(body.get("tags"))
    if tags:
        have = set(a["tags"]) | set(e["tags"])
        want = [t for t in tags if not t.startswith("!")]
        nots = [t[1:] for t in tags if t.startswith("!")]
        if want and not have.intersection(want):
            return False
        if have.intersection(nots):
            return False
    ids = [str(x).lower() for x in as_list(body.get("eventid"))]
    if ids and e["uuid"] not in ids and str(e["id"]) not in ids:
        return False
    return True


def make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def answer(self, status, obj, headers=None, raw=None):
            data = raw if raw is not None else json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def violation(self, what):
            state.violations.append({"path": self.path, "what": what})
            return what

        def do_GET(self):
            if self.path == "/_state":
                with state.store.lock:
                    attrs = [{"uuid": a["uuid"], "event_uuid": a["event"], "deleted": a["deleted"],
                              "type": a["type"], "value": a["value"], "timestamp": a["timestamp"],
                              "to_ids": a["to_ids"]} for a in state.store.attributes]
                    return self.answer(200, {"violations": state.violations,
                                             "requests": state.requests, "attributes": attrs})
            if self.path.startswith("/_page?"):
                q = dict(p.split("=", 1) for p in self.path.split("?", 1)[1].split("&"))
                body = {"returnFormat": "json", "limit": int(q["limit"]), "page": int(q["page"]),
                        "includeEventUuid": True, "includeEventTags": True, "deleted": [0, 1]}
                return self.answer(200, None, raw=self.search(body)[0])
            self.answer(404, {"message": "not found"})

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if self.path == "/_control":
                return self.control(json.loads(raw or b"{}"))
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = None
            status, obj, headers, data = self.route(body)
            with state.store.lock:
                state.requests.append({"path": self.path, "body": body, "status": status})
            self.answer(status, obj, headers, data)

        def route(self, body):
            if self.headers.get("Authorization") != state.key:
                return 403, {"name": AUTH_FAILED, "message": AUTH_FAILED, "url": self.path}, None, None
            problems = []
            if self.headers.get("Accept") != "application/json":
                problems.append(self.violation("Accept is not application/json"))
            if self.headers.get("Content-Type") != "application/json":
                problems.append(self.violation("Content-Type is not application/json"))
            if not isinstance(body, dict):
                problems.append(self.violation("body is not a JSON object"))
                body = {}
            if self.path == "/attributes/restSearch":
                allowed, scope = ATTRIBUTE_PARAMS, "attributes/restSearch"
                if "returnFormat" not in body:
                    problems.append(self.violation("returnFormat missing (mandatory)"))
                elif body["returnFormat"] != "json":
                    problems.append(self.violation("returnFormat is not json"))
                if "timestamp" in body:
                    problems.append(self.violation(
                        "timestamp used: it also tests the event timestamp; poll by attribute_timestamp"))
                for k in ("limit", "page"):
                    if not isinstance(body.get(k), int) or body.get(k) < 1:
                        problems.append(self.violation(k + " missing or not a positive integer"))
            elif self.path == "/events/index":
                allowed, scope = INDEX_PARAMS, "events/index"
            else:
                return 404, {"message": "not found"}, None, None
            for k in body:
                if k not in allowed:
                    problems.append(self.violation("unknown %s parameter %r" % (scope, k)))
            if problems:
                return 400, {"name": "; ".join(problems), "message": "; ".join(problems)}, None, None
            page = body.get("page") if self.path == "/attributes/restSearch" else None
            with state.store.lock:
                for f in state.failures:
                    if f["times"] > 0 and f["path"] == self.path and f.get("page") in (None, page):
                        f["times"] -= 1
                        return f["status"], {"message": "stand-in failure"}, None, None
            if self.path == "/events/index":
                return 200, self.index(body), None, None
            data, count = self.search(body)
            return 200, None, {"X-Result-Count": str(count // 2)}, data

        def search(self, body):
            s = state.store
            limit, page = int(body["limit"]), int(body["page"])
            with s.lock:
                if s.generated:
                    lo = (page - 1) * limit + 1
                    hi = min(s.generated, page * limit)
                    out = []
                    for i in range(lo, hi + 1):
                        a = s.gen_attr(i)
                        out.append(render(a, s.gen_event(a["event"]), body))
                    count = s.generated
                else:
                    hits = [a for a in s.attributes if matches(a, s.events[a["event"]], body)]
                    count = len(hits)
                    out = [render(a, s.events[a["event"]], body)
                           for a in hits[(page - 1) * limit: page * limit]]
            return json.dumps({"response": {"Attribute": out}}).encode(), count

        def index(self, body):
            s = state.store
            with s.lock:
                out = []
                for e in s.events.values():
                    live = [a for a in s.attributes if a["event"] == e["uuid"] and not a["deleted"]]
                    if flag(body.get("minimal")) and not live:
                        continue
                    if "published" in body and e["published"] != flag(body["published"]):
                        continue
                    out.append({"id": str(e["id"]), "timestamp": str(e["timestamp"]),
                                "sighting_timestamp": "0", "published": e["published"],
                                "uuid": e["uuid"], "orgc_uuid": e["orgc_uuid"]})
            return out

        def control(self, c):
            s = state.store
            op = c.get("op")
            with s.lock:
                if op == "fail":
                    state.failures.append({"path": c["path"], "page": c.get("page"),
                                           "status": c.get("status", 500), "times": c.get("times", 1)})
                elif op == "edit":
                    a = s.by_uuid[c["uuid"]]
                    a.update(c.get("set", {}))
                    a["timestamp"] = c["timestamp"]
                    s.events[a["event"]]["timestamp"] = c["timestamp"]
                elif op == "delete":
                    a = s.by_uuid[c["uuid"]]
                    a["deleted"] = True
                    a["timestamp"] = c["timestamp"]
                    s.events[a["event"]]["timestamp"] = c["timestamp"]
                elif op == "add_event":
                    s.add_event(c["event"])
                elif op == "remove_event":
                    u = c["uuid"]
                    s.events.pop(u, None)
                    s.attributes = [a for a in s.attributes if a["event"] != u]
                else:
                    return self.answer(400, {"message": "unknown op %r" % op})
            self.answer(200, {"ok": True})

    return Handler


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--key", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--generate", type=int, default=0)
    p.add_argument("--per-event", type=int, default=1000)
    p.add_argument("events", nargs="*")
    args = p.parse_args()
    state = State(args.key)
    for path in args.events:
        with open(path, encoding="utf-8") as f:
            state.store.add_event(json.load(f))
    if args.generate:
        state.store.generate(args.generate, args.per_event)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(state))
    print("PORT %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
