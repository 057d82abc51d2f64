#!/usr/bin/env python3
"""Seeded, reproducible workload for benches/compare.sh.

Writes, under --out:

  iocs-<N>.txt       N indicators, one value a line (domains, IPv4, CIDRs, IPv6,
                     host/path URLs, md5/sha1/sha256), sampled from --iocs-dir.
                     Plain values only: usable by `rg -F -f`, `grep -F -f` and
                     `tripline hunt --intel` as they are.
  log-<MB>.log       about MB MiB of log lines: RFC 3164 syslog (sshd, postfix,
                     kernel UFW), Apache combined, DNS query logs (dnsmasq, BIND),
                     firewall key=value and Suricata EVE-like JSON lines.
  workload-<N>.json  what was planted in the log, and the counts a correct
                     matcher and a plain substring tool should report for iocs-<N>.
  planted-<MB>.tsv   every planted line and near miss: line number (1-based),
                     class (plant/near), type or near-miss kind, form, value.

Invariants the counts rest on:

  * Lists are nested: for each indicator type the sample is a prefix of one
    seeded permutation, so iocs-10000 is a subset of iocs-100000, which is a
    subset of iocs-1000000.  The log is the same file for every N.
  * Planted indicators are drawn from the smallest list (--plant-from, by default
    min(10000, smallest --n)), so every planted line is a true match for every N.
  * Benign values (hosts, IPs, e-mail addresses, user agents, paths, ...) come from
    pools checked against *all* values in --iocs-dir: no substring of a pool value
    is an indicator and no benign IP lies in a listed CIDR.  Benign lines therefore
    match nothing, for any N, neither for a correct matcher nor for `grep -F`.
  * Near misses (`not<domain>`, `<domain>.au`, `1<ip>`, `<ip>5`) are checked to be
    no true match against all values, but they contain an indicator as a substring.

So `true_matching_lines` is exact and the same for every N, and
`fixed_string_expected_lines` (what `rg -F -c` / `grep -F -c` should print) is
computed exactly per N by scanning the planted and near-miss lines.

Same arguments, same bytes: all randomness comes from random.Random seeded with
strings derived from --seed, and no set or dict is iterated in hash order.
Python 3 standard library only.
"""

import argparse
import bisect
import ipaddress
import json
import os
import random
import re
import sys
import time

VERSION = 2

# Share of each indicator type in a list, roughly what a MISP community shares.
# Types with too few values in --iocs-dir are capped; domains take up the rest.
MIX = (
    ("domain", 0.55),
    ("ipv4", 0.25),
    ("cidr", 0.02),
    ("ipv6", 0.01),
    ("url", 0.08),
    ("md5", 0.03),
    ("sha1", 0.02),
    ("sha256", 0.04),
)

P_PLANT = 0.001  # share of lines holding an indicator
P_NEAR = 0.0005  # share of lines holding a near miss
SUBDOMAIN_SHARE = 0.3  # planted domains written as a.b.<domain>
DEFAULT_PLANT_FROM = 10000

HEX_LEN = {"md5": 32, "sha1": 40, "sha256": 64}
IPV4_RE = re.compile(r"^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$")
DOMAIN_RE = re.compile(r"^(?=.*[a-z])[a-z0-9_-]+(\.[a-z0-9_-]+)+$")


# ---------------------------------------------------------------------------
# Indicator sources
# ---------------------------------------------------------------------------


def read_lines(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return [line.strip() for line in f]


def usable(value):
    return len(value) >= 4 and value.isascii() and value.isprintable() and " " not in value


def load_sources(iocs_dir):
    """Returns {type: [values]} in file order, deduplicated within and across types."""
    path = lambda name: os.path.join(iocs_dir, name)  # noqa: E731
    raw = {}
    raw["domain"] = [v.lower() for v in read_lines(path("domains.txt"))]
    raw["domain"] = [v for v in raw["domain"] if DOMAIN_RE.match(v)]
    raw["ipv4"] = [v for v in read_lines(path("ipv4.txt")) if IPV4_RE.match(v)]
    cidrs = []
    for v in read_lines(path("cidr.txt")):
        if "/" not in v:
            continue
        try:
            net = ipaddress.IPv4Network(v, strict=True)
        except ValueError:
            continue
        if net.prefixlen >= 8:
            cidrs.append(v)
    raw["cidr"] = cidrs
    ipv6 = []
    for v in read_lines(path("ipv6.txt")):
        try:
            ipaddress.IPv6Address(v)
        except ValueError:
            continue
        ipv6.append(v)
    raw["ipv6"] = ipv6
    urls = []
    for v in read_lines(path("urls.txt")):
        for scheme in ("http://", "https://"):
            if v.startswith(scheme):
                v = v[len(scheme):]
        host, sep, rest = v.partition("/")
        if sep and rest and host:  # host/path form only; bare hosts are domains
            urls.append(v)
    raw["url"] = urls
    for t in ("md5", "sha1", "sha256"):
        n = HEX_LEN[t]
        raw[t] = [
            v.lower()
            for v in read_lines(path(t + ".txt"))
            if len(v) == n and all(c in "0123456789abcdefABCDEF" for c in v)
        ]

    seen = set()
    out = {}
    for t, _ in MIX:
        kept = []
        for v in raw[t]:
            if usable(v) and v not in seen:
                seen.add(v)
                kept.append(v)
        out[t] = kept
    return out


class Intel:
    """All values in --iocs-dir, for checking benign pools and near misses."""

    def __init__(self, sources):
        values = set()
        for t, _ in MIX:
            values.update(sources[t])
        self.values = values
        self.lengths = sorted({len(v) for v in values})
        self.domains = set(sources["domain"])
        self.domains.update(u.partition("/")[0] for u in sources["url"])
        self.ipv4 = set(sources["ipv4"])
        self.cidr = {}  # prefixlen -> set of network ints
        for c in sources["cidr"]:
            net = ipaddress.IPv4Network(c)
            self.cidr.setdefault(net.prefixlen, set()).add(int(net.network_address))
        self.cidr_lens = sorted(self.cidr)

    def has_substring(self, s):
        """True if any indicator value occurs in s as a plain substring."""
        values, lengths, n = self.values, self.lengths, len(s)
        for i in range(n):
            for length in lengths:
                if i + length > n:
                    break
                if s[i : i + length] in values:
                    return True
        return False

    def in_cidr(self, ip):
        x = int(ipaddress.IPv4Address(ip))
        for plen in self.cidr_lens:
            mask = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF
            if x & mask in self.cidr[plen]:
                return True
        return False

    def domain_hit(self, host):
        """True if host or one of its parent domains is a listed domain."""
        labels = host.split(".")
        return any(".".join(labels[i:]) in self.domains for i in range(len(labels) - 1))

    def ipv4_hit(self, s):
        return IPV4_RE.match(s) is not None and (s in self.ipv4 or self.in_cidr(s))


def type_counts(n, avail):
    counts = {}
    for t, share in MIX:
        if t != "domain":
            counts[t] = min(avail[t], int(round(share * n)))
    rest = n - sum(counts.values())
    if rest > avail["domain"]:
        sys.exit(f"gen_workload: only {sum(avail.values())} usable indicators, asked for {n}")
    counts["domain"] = rest
    return {t: counts[t] for t, _ in MIX}


# ---------------------------------------------------------------------------
# Benign pools
# ---------------------------------------------------------------------------

WORDS = (
    "acme alpine amber anchor apex arctic atlas aurora autumn beacon birch blue bolt bright "
    "brook canyon cedar cloud cobalt comet coral crest crystal delta desert dune eagle echo "
    "ember falcon fern field flint forest fox frost galaxy garden glacier golden granite "
    "harbor hawk hazel horizon indigo iron island ivy jade juniper lake lantern lark lemon "
    "linen lotus lunar maple marble meadow mesa metro mint mist nova oak ocean olive onyx "
    "orbit orchid pacific panda pearl pepper pine pixel planet polar prairie prism quartz "
    "quill rapid raven reef ridge river robin ruby sage salt sierra silver slate solar "
    "spruce stone summit swift tango terra thunder tiger timber topaz trail tulip tundra "
    "urban valley velvet vertex violet vista willow winter wolf zen zephyr books news shop "
    "cloudware data labs media games travel health foods finance studio systems solutions"
).split()
TLDS = ("com", "net", "org", "io", "de")
HOST_PREFIXES = ("", "", "", "www.", "www.", "mail.", "api.", "cdn.", "static.", "shop.", "blog.", "m.")
SUB_LABELS = ("www", "cdn", "mail", "api", "login", "secure", "update", "files", "img", "dl")
WELL_KNOWN = (
    "www.google.com fonts.googleapis.com fonts.gstatic.com www.gstatic.com "
    "accounts.google.com www.youtube.com i.ytimg.com www.microsoft.com "
    "login.microsoftonline.com outlook.office365.com graph.microsoft.com "
    "update.microsoft.com github.com api.github.com objects.githubusercontent.com "
    "www.cloudflare.com cdnjs.cloudflare.com www.amazon.com s3.amazonaws.com "
    "www.wikipedia.org en.wikipedia.org upload.wikimedia.org www.apple.com "
    "swscan.apple.com ocsp.digicert.com crl.globalsign.com www.mozilla.org "
    "detectportal.firefox.com deb.debian.org security.debian.org archive.ubuntu.com "
    "registry.npmjs.org pypi.org files.pythonhosted.org crates.io static.crates.io "
    "www.linkedin.com www.facebook.com static.xx.fbcdn.net www.bing.com "
    "ntp.ubuntu.com time.cloudflare.com api.slack.com zoom.us www.reddit.com"
).split()
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.109 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.6167.85 Safari/537.36 Edg/121.0.2277.83",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2.1 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.129 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:122.0) Gecko/20100101 Firefox/122.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "curl/8.5.0",
    "Wget/1.21.4",
    "python-requests/2.31.0",
    "Go-http-client/1.1",
    "Microsoft-CryptoAPI/10.0",
    "Debian APT-HTTP/1.3 (2.6.1)",
)
PATHS = (
    "/ /index.html /index.php /favicon.ico /robots.txt /sitemap.xml /login /logout "
    "/api/v1/users /api/v1/orders /api/v2/search /static/css/main.css /static/js/app.js "
    "/static/js/vendor.bundle.js /images/logo.png /images/banner.jpg /assets/fonts/inter.woff2 "
    "/wp-login.php /wp-admin/admin-ajax.php /xmlrpc.php /.env /.git/config /admin /healthz "
    "/metrics /status /cart /checkout /products /products/view /account/settings "
    "/download/report.pdf /feed /rss.xml /blog/2023/12/year-in-review /search /contact"
).split()
QUERY_KEYS = ("id", "q", "page", "ref", "utm_source", "lang", "session")
SSH_USERS = "root admin ubuntu test oracle postgres deploy git user ftp guest pi www-data jenkins ansible backup".split()
MAIL_USERS = "alice bob carol dave erin frank grace heidi ivan judy mallory oscar peggy sales info support noreply billing hr it-ops".split()
SRC_HOSTS = ("web01", "web02", "mx1", "mx2", "fw01", "ns1", "bastion", "app03", "db01", "proxy1")
MAGIC = (
    "PE32 executable (GUI) Intel 80386, for MS Windows",
    "PDF document, version 1.7",
    "Zip archive data, at least v2.0 to extract",
    "ELF 64-bit LSB executable, x86-64, version 1 (SYSV)",
    "HTML document, ASCII text",
    "JPEG image data, JFIF standard 1.01",
)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
RESERVED_V4 = [
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8 10.0.0.0/8 100.64.0.0/10 127.0.0.0/8 169.254.0.0/16 172.16.0.0/12 "
        "192.0.0.0/24 192.0.2.0/24 192.168.0.0/16 198.18.0.0/15 198.51.100.0/24 "
        "203.0.113.0/24 224.0.0.0/3"
    ).split()
]


def build_pools(rng, intel):
    """Benign values, each checked to hold no indicator (see module docs)."""
    clean = lambda s: not intel.has_substring(s)  # noqa: E731
    dropped = {}

    def keep(name, values):
        out = [v for v in values if clean(v)]
        dropped[name] = len(values) - len(out)
        return out

    def public_ip():
        while True:
            ip = ipaddress.IPv4Address(rng.getrandbits(32))
            if any(ip in n for n in RESERVED_V4):
                continue
            s = str(ip)
            if clean(s) and not intel.in_cidr(s):
                return s

    p = {}
    p["ext_ip"] = [public_ip() for _ in range(6000)]
    internal = []
    for _ in range(600):
        if rng.random() < 0.7:
            s = "10.%d.%d.%d" % (rng.randrange(256), rng.randrange(256), rng.randrange(1, 255))
        else:
            s = "192.168.%d.%d" % (rng.randrange(256), rng.randrange(1, 255))
        internal.append(s)
    p["int_ip"] = keep("int_ip", internal)
    p["resolver"] = [ip for ip in ("8.8.8.8", "1.1.1.1", "9.9.9.9", "208.67.222.222") if clean(ip)]
    v6 = []
    for _ in range(400):
        a = ipaddress.IPv6Address((0x2A00 + rng.randrange(0x200)) << 112 | rng.getrandbits(112))
        v6.append(a.compressed)
    p["ext_ip6"] = keep("ext_ip6", v6)

    bases = []
    for _ in range(4000):
        w1, w2, tld = rng.choice(WORDS), rng.choice(WORDS), rng.choice(TLDS)
        form = rng.random()
        if form < 0.4:
            bases.append(f"{w1}{w2}.{tld}")
        elif form < 0.7:
            bases.append(f"{w1}-{w2}.{tld}")
        else:
            bases.append(f"{w1}{rng.randrange(1, 100)}.{tld}")
    bases = list(dict.fromkeys(bases))
    hosts = [rng.choice(HOST_PREFIXES) + b for b in bases] + list(WELL_KNOWN) * 20
    p["host"] = keep("host", hosts)
    p["mail_domain"] = keep("mail_domain", bases[:1500])
    p["email"] = keep(
        "email",
        [f"{rng.choice(MAIL_USERS)}@{rng.choice(p['mail_domain'])}" for _ in range(3000)],
    )
    paths = []
    for _ in range(3000):
        path = rng.choice(PATHS)
        if rng.random() < 0.35:
            path += "?%s=%d" % (rng.choice(QUERY_KEYS), rng.randrange(1, 100000))
        paths.append(path)
    p["path"] = keep("path", paths)
    p["referer"] = keep(
        "referer",
        [
            "%s://%s%s" % (rng.choice(("http", "https", "https")), rng.choice(p["host"]), rng.choice(p["path"]))
            for _ in range(4000)
        ],
    )
    p["ua"] = keep("ua", list(USER_AGENTS))
    p["ssh_user"] = keep("ssh_user", SSH_USERS)
    p["src_host"] = keep("src_host", list(SRC_HOSTS))
    p["fingerprint"] = keep(
        "fingerprint",
        [
            "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") for _ in range(43))
            for _ in range(64)
        ],
    )
    p["mac"] = keep(
        "mac",
        [
            ":".join("%02x" % rng.randrange(256) for _ in range(12)) + ":08:00"
            for _ in range(64)
        ],
    )
    p["magic"] = keep("magic", list(MAGIC))
    for name, values in p.items():
        if not values:
            sys.exit(f"gen_workload: benign pool {name!r} is empty after checking against the indicators")
    return p, dropped


def esc(s):
    """JSON string body with slashes escaped, as some emitters write them."""
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("/", "\\/")


def jstr(s):
    return s.replace("\\", "\\\\").replace('"', '\\"')


# ---------------------------------------------------------------------------
# Log lines
# ---------------------------------------------------------------------------


class Clock:
    """Log time, advancing a fixed step a line; formatted strings cached per second."""

    START = 1704067200  # 2024-01-01T00:00:00Z
    LINES_PER_SEC = 200

    def __init__(self):
        self.i = 0
        self.sec = -1
        self.tick()

    def tick(self):
        self.i += 1
        sec = self.START + self.i // self.LINES_PER_SEC
        self.frac = (self.i % self.LINES_PER_SEC) * (1000000 // self.LINES_PER_SEC)
        if sec != self.sec:
            self.sec = sec
            t = time.gmtime(sec)
            mon = MONTHS[t.tm_mon - 1]
            hms = "%02d:%02d:%02d" % (t.tm_hour, t.tm_min, t.tm_sec)
            self.syslog = "%s %2d %s" % (mon, t.tm_mday, hms)
            self.apache = "%02d/%s/%04d:%s +0000" % (t.tm_mday, mon, t.tm_year, hms)
            self.date = "%04d-%02d-%02d" % (t.tm_year, t.tm_mon, t.tm_mday)
            self.hms = hms
            self.iso = "%sT%s" % (self.date, hms)
            self.bind = "%02d-%s-%04d %s" % (t.tm_mday, mon, t.tm_year, hms)
            self.uptime = sec - self.START + 86400


class Lines:
    """One method per log format; keyword arguments put a chosen value in a field."""

    def __init__(self, rng, pools, clock):
        self.rng = rng
        self.r = rng.random
        self.p = pools
        self.c = clock

    def pick(self, name):
        pool = self.p[name]
        return pool[int(self.r() * len(pool))]

    # -- syslog -----------------------------------------------------------
    def sshd(self, ip=None):
        r, c = self.r, self.c
        ip = ip or self.pick("ext_ip")
        user = self.pick("ssh_user")
        port = 1024 + int(r() * 64000)
        v = r()
        if v < 0.4:
            msg = f"Failed password for {user} from {ip} port {port} ssh2"
        elif v < 0.6:
            msg = f"Failed password for invalid user {user} from {ip} port {port} ssh2"
        elif v < 0.7:
            msg = f"Accepted publickey for {user} from {ip} port {port} ssh2: ED25519 SHA256:{self.pick('fingerprint')}"
        elif v < 0.85:
            msg = f"Connection closed by authenticating user {user} {ip} port {port} [preauth]"
        else:
            msg = f"Disconnected from invalid user {user} {ip} port {port} [preauth]"
        return f"{c.syslog} {self.pick('src_host')} sshd[{1000 + int(r() * 60000)}]: {msg}"

    def postfix(self, ip=None, domain=None):
        r, c = self.r, self.c
        qid = "%010X" % int(r() * 0xFFFFFFFFFF)
        pid = 1000 + int(r() * 60000)
        # A chosen IP only goes in messages that carry one (the first 60%).
        v = r() * (0.6 if ip else 1.0)
        ip = ip or self.pick("ext_ip")
        if domain:
            rhost, email = domain, f"{MAIL_USERS[int(r() * len(MAIL_USERS))]}@{domain}"
        else:
            rhost = "unknown" if r() < 0.2 else self.pick("host")
            email = self.pick("email")
        if v < 0.2:
            msg = f"postfix/smtpd[{pid}]: connect from {rhost}[{ip}]"
        elif v < 0.35:
            msg = f"postfix/smtpd[{pid}]: {qid}: client={rhost}[{ip}]"
        elif v < 0.45:
            msg = f"postfix/smtpd[{pid}]: disconnect from {rhost}[{ip}] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5"
        elif v < 0.6:
            msg = (
                f"postfix/smtp[{pid}]: {qid}: to=<{email}>, relay={rhost}[{ip}]:25, delay={int(r() * 9)}.{int(r() * 10)}, "
                f"delays=0.{int(r() * 10)}/0/0.{int(r() * 10)}/0.{int(r() * 10)}, dsn=2.0.0, status=sent (250 2.0.0 OK)"
            )
        elif v < 0.85:
            msg = f"postfix/qmgr[{pid}]: {qid}: from=<{email}>, size={300 + int(r() * 90000)}, nrcpt=1 (queue active)"
        else:
            msg = f"postfix/cleanup[{pid}]: {qid}: message-id=<{int(r() * 1e12)}.{qid}@{email.partition('@')[2]}>"
        return f"{c.syslog} {self.pick('src_host')} {msg}"

    def ufw(self, src=None, dst=None):
        r, c = self.r, self.c
        v6 = (src or dst or "").count(":") > 1 or (src is None and dst is None and r() < 0.05)
        if v6:
            src = src or self.pick("ext_ip6")
            dst = dst or self.pick("ext_ip6")
            net = f"LEN={60 + int(r() * 1400)} TC=0 HOPLIMIT={int(r() * 64) + 1} FLOWLBL={int(r() * 1048576)}"
        else:
            src = src or self.pick("ext_ip")
            dst = dst or self.pick("int_ip")
            net = f"LEN={40 + int(r() * 1460)} TOS=0x00 PREC=0x00 TTL={32 + int(r() * 96)} ID={int(r() * 65536)} DF"
        spt, dpt = 1024 + int(r() * 64000), (22, 23, 80, 443, 445, 3389, 8080, 5900)[int(r() * 8)]
        if r() < 0.8:
            tail = f"PROTO=TCP SPT={spt} DPT={dpt} WINDOW={1024 + int(r() * 64000)} RES=0x00 SYN URGP=0"
        else:
            tail = f"PROTO=UDP SPT={spt} DPT={dpt} LEN={20 + int(r() * 500)}"
        action = "BLOCK" if r() < 0.85 else "ALLOW"
        return (
            f"{c.syslog} {self.pick('src_host')} kernel: [{c.uptime}.{c.frac:06d}] [UFW {action}] IN=eth0 OUT= "
            f"MAC={self.pick('mac')} SRC={src} DST={dst} {net} {tail}"
        )

    # -- web --------------------------------------------------------------
    def apache(self, client=None, referer=None, request_url=None):
        r, c = self.r, self.c
        client = client or self.pick("ext_ip")
        if request_url:
            req = f"GET {request_url} HTTP/1.1"
        else:
            req = f"{'GET' if r() < 0.85 else 'POST'} {self.pick('path')} HTTP/1.1"
        if referer is None:
            referer = "-" if r() < 0.4 else self.pick("referer")
        status = (200, 200, 200, 200, 304, 301, 404, 403, 500)[int(r() * 9)]
        size = int(r() * 50000) if status != 304 else 0
        return f'{client} - - [{c.apache}] "{req}" {status} {size} "{referer}" "{self.pick("ua")}"'

    # -- DNS --------------------------------------------------------------
    def dnsmasq(self, qname=None, client=None, answer=None):
        r, c = self.r, self.c
        qname = qname or self.pick("host")
        v = r()
        if answer is not None:
            v = 0.8
        elif client is not None:
            v = 0.0
        if v < 0.5:
            msg = f"query[{'A' if r() < 0.8 else 'AAAA'}] {qname} from {client or self.pick('int_ip')}"
        elif v < 0.7:
            msg = f"forwarded {qname} to {self.pick('resolver')}"
        elif v < 0.9:
            answer = answer or self.pick("ext_ip6" if r() < 0.1 else "ext_ip")
            msg = f"reply {qname} is {answer}"
        else:
            msg = f"cached {qname} is {self.pick('ext_ip')}"
        return f"{c.syslog} {self.pick('src_host')} dnsmasq[{100 + int(r() * 30000)}]: {msg}"

    def bind(self, qname=None, client=None):
        r, c = self.r, self.c
        qname = qname or self.pick("host")
        client = client or self.pick("int_ip")
        rr = ("A", "A", "A", "AAAA", "HTTPS", "MX", "TXT")[int(r() * 7)]
        return (
            f"{c.bind}.{c.frac // 1000:03d} queries: info: client @0x7f{int(r() * 0xFFFFFFFFF):09x} "
            f"{client}#{1024 + int(r() * 64000)} ({qname}): query: {qname} IN {rr} +E(0)K (10.0.0.53)"
        )

    # -- firewall key=value -----------------------------------------------
    def kv(self, src=None, dst=None, sni=None):
        r, c = self.r, self.c
        out = r() < 0.6
        src = src or (self.pick("int_ip") if out else self.pick("ext_ip"))
        dst = dst or (self.pick("ext_ip") if out else self.pick("int_ip"))
        dpt = (443, 443, 80, 53, 22, 25, 123, 8443)[int(r() * 8)]
        proto = "udp" if dpt in (53, 123) else "tcp"
        action = "allow" if r() < 0.8 else ("deny" if r() < 0.7 else "drop")
        line = (
            f"{c.iso}Z {self.pick('src_host')} filterlog: rule={1 + int(r() * 200)} iface=igb{int(r() * 4)} "
            f"action={action} proto={proto} src={src} dst={dst} spt={1024 + int(r() * 64000)} dpt={dpt} "
            f"bytes={40 + int(r() * 200000)}"
        )
        if sni or (dpt == 443 and r() < 0.5):
            line += f" app=ssl sni={sni or self.pick('host')}"
        return line

    # -- Suricata EVE-like JSON ---------------------------------------------
    def _eve_head(self, event, src, dst, sport, dport, proto):
        c = self.c
        return (
            f'{{"timestamp":"{c.iso}.{c.frac:06d}+0000","flow_id":{int(self.r() * 2**51)},'
            f'"in_iface":"eth0","event_type":"{event}","src_ip":"{src}","src_port":{sport},'
            f'"dest_ip":"{dst}","dest_port":{dport},"proto":"{proto}"'
        )

    def eve_dns(self, rrname=None, src=None):
        r = self.r
        rrname = rrname or self.pick("host")
        head = self._eve_head("dns", src or self.pick("int_ip"), "10.0.0.53", 1024 + int(r() * 64000), 53, "UDP")
        return (
            f'{head},"dns":{{"type":"query","id":{int(r() * 65536)},"rrname":"{rrname}",'
            f'"rrtype":"{"A" if r() < 0.8 else "AAAA"}","tx_id":0}}}}'
        )

    def eve_http(self, hostname=None, src=None, dst=None, refer=None, escaped=None):
        r = self.r
        if escaped is None:
            escaped = r() < 0.3
        e = esc if escaped else jstr
        hostname = hostname or self.pick("host")
        head = self._eve_head(
            "http", src or self.pick("int_ip"), dst or self.pick("ext_ip"), 1024 + int(r() * 64000), 80, "TCP"
        )
        refer = refer if refer is not None else (self.pick("referer") if r() < 0.5 else None)
        refer_field = f',"http_refer":"{e(refer)}"' if refer else ""
        return (
            f'{head},"http":{{"hostname":"{hostname}","url":"{e(self.pick("path"))}",'
            f'"http_user_agent":"{e(self.pick("ua"))}"{refer_field},"http_method":"GET",'
            f'"protocol":"{e("HTTP/1.1")}","status":200,"length":{int(r() * 90000)}}}}}'
        )

    def eve_tls(self, sni=None, src=None, dst=None):
        r = self.r
        sni = sni or self.pick("host")
        head = self._eve_head(
            "tls", src or self.pick("int_ip"), dst or self.pick("ext_ip"), 1024 + int(r() * 64000), 443, "TCP"
        )
        return (
            f'{head},"tls":{{"sni":"{sni}","version":"{"TLS 1.3" if r() < 0.7 else "TLS 1.2"}",'
            f'"ja3":{{"hash":"{self.rng.getrandbits(128):032x}"}}}}}}'
        )

    def eve_flow(self, src=None, dst=None):
        r, c = self.r, self.c
        ip6 = (src or dst or "").count(":") > 1
        src = src or self.pick("ext_ip6" if ip6 else "int_ip")
        dst = dst or self.pick("ext_ip6" if ip6 else "ext_ip")
        head = self._eve_head("flow", src, dst, 1024 + int(r() * 64000), (443, 80, 53, 22)[int(r() * 4)], "TCP")
        p1, p2 = 1 + int(r() * 500), 1 + int(r() * 500)
        return (
            f'{head},"flow":{{"pkts_toserver":{p1},"pkts_toclient":{p2},"bytes_toserver":{p1 * 90},'
            f'"bytes_toclient":{p2 * 700},"start":"{c.iso}.000000+0000","age":{int(r() * 120)},'
            f'"state":"closed","reason":"timeout","alerted":false}}}}'
        )

    def eve_fileinfo(self, hashes=None):
        r, g = self.r, self.rng.getrandbits
        h = {"md5": "%032x" % g(128), "sha1": "%040x" % g(160), "sha256": "%064x" % g(256)}
        if hashes:
            h.update(hashes)
        head = self._eve_head(
            "fileinfo", self.pick("ext_ip"), self.pick("int_ip"), 80, 1024 + int(r() * 64000), "TCP"
        )
        path = self.pick("path").partition("?")[0]
        return (
            f'{head},"http":{{"hostname":"{self.pick("host")}","url":"{esc(path)}"}},'
            f'"fileinfo":{{"filename":"{esc(path)}","magic":"{self.pick("magic")}","state":"CLOSED",'
            f'"md5":"{h["md5"]}","sha1":"{h["sha1"]}","sha256":"{h["sha256"]}","stored":false,'
            f'"size":{int(r() * 5000000)},"tx_id":0}}}}'
        )

    # -- mix ----------------------------------------------------------------
    def benign_kinds(self):
        """(weight, method) for benign lines: syslog 30, apache 25, DNS 20, kv 10, JSON 15."""
        return (
            (8, self.sshd),
            (10, self.postfix),
            (12, self.ufw),
            (25, self.apache),
            (12, self.dnsmasq),
            (8, self.bind),
            (10, self.kv),
            (4, self.eve_dns),
            (4, self.eve_http),
            (3, self.eve_tls),
            (3, self.eve_flow),
            (1, self.eve_fileinfo),
        )


class Planter:
    """Lines that hold a chosen indicator, or a near miss, in a field where it belongs."""

    def __init__(self, rng, lines, intel, base):
        self.rng = rng
        self.L = lines
        self.intel = intel
        self.base = base  # [(type, value)]
        self.base_domains = [v for t, v in base if t == "domain"]
        self.base_ipv4 = [v for t, v in base if t == "ipv4"]

    def plant(self):
        """Returns (line, type, form, value)."""
        rng, L = self.rng, self.L
        t, v = rng.choice(self.base)
        form = "verbatim"
        if t == "domain":
            host = v
            if rng.random() < SUBDOMAIN_SHARE:
                host = f"{rng.choice(SUB_LABELS)}.{rng.choice(SUB_LABELS)}.{v}"
                form = "subdomain"
            k = rng.randrange(9)
            line = (
                L.dnsmasq(qname=host) if k == 0 else
                L.bind(qname=host) if k == 1 else
                L.eve_dns(rrname=host) if k == 2 else
                L.eve_tls(sni=host) if k == 3 else
                L.eve_http(hostname=host) if k == 4 else
                L.apache(referer=f"https://{host}/") if k == 5 else
                L.postfix(domain=host) if k == 6 else
                L.kv(sni=host) if k == 7 else
                L.dnsmasq(qname=host)
            )
            return line, t, form, host
        if t in ("ipv4", "cidr"):
            ip = v
            if t == "cidr":
                net = ipaddress.IPv4Network(v)
                hosts = max(1, net.num_addresses - 2)
                offset = rng.randrange(hosts) + (1 if net.num_addresses > 2 else 0)
                ip = str(net.network_address + offset)
                form = "cidr_member"
            return self._ip_line(ip), t, form, ip
        if t == "ipv6":
            k = rng.randrange(4)
            line = (
                L.sshd(ip=v) if k == 0 else
                L.ufw(src=v) if k == 1 else
                L.eve_flow(src=v) if k == 2 else
                L.dnsmasq(answer=v)
            )
            return line, t, form, v
        if t == "url":
            scheme = rng.choice(("http", "https"))
            k = rng.randrange(4)
            if k == 0:
                return L.apache(referer=f"{scheme}://{v}"), t, form, v
            if k == 1:
                return L.apache(request_url=f"http://{v}"), t, form, v
            escaped = k == 3
            line = L.eve_http(hostname=v.partition("/")[0], refer=f"{scheme}://{v}", escaped=escaped)
            return line, t, ("json_escaped" if escaped else form), v
        # hashes
        return L.eve_fileinfo(hashes={t: v}), t, form, v

    def _ip_line(self, ip):
        rng, L = self.rng, self.L
        k = rng.randrange(10)
        return (
            L.sshd(ip=ip) if k == 0 else
            L.ufw(src=ip) if k == 1 else
            L.apache(client=ip) if k == 2 else
            L.kv(src=ip) if k == 3 else
            L.kv(dst=ip) if k == 4 else
            L.eve_flow(dst=ip) if k == 5 else
            L.eve_tls(dst=ip) if k == 6 else
            L.postfix(ip=ip) if k == 7 else
            L.dnsmasq(answer=ip) if k == 8 else
            L.ufw(src=ip)
        )

    def near_miss(self):
        """Returns (line, kind, value): a superstring of an indicator that is no match."""
        rng, L, intel = self.rng, self.L, self.intel
        for _ in range(1000):
            use_domain = self.base_domains and (not self.base_ipv4 or rng.random() < 0.65)
            if use_domain:
                d = rng.choice(self.base_domains)
                if rng.random() < 0.5:
                    kind, s = "domain_prefix", rng.choice(("not", "my", "get", "x")) + d
                else:
                    kind, s = "domain_suffix", d + rng.choice((".au", ".br", ".uk", ".example"))
                if intel.domain_hit(s):
                    continue
                k = rng.randrange(4)
                line = (
                    L.dnsmasq(qname=s) if k == 0 else
                    L.bind(qname=s) if k == 1 else
                    L.eve_dns(rrname=s) if k == 2 else
                    L.eve_tls(sni=s)
                )
                return line, kind, s
            ip = rng.choice(self.base_ipv4)
            if rng.random() < 0.5:
                kind, s = "ip_prefix", rng.choice("12") + ip
            else:
                kind, s = "ip_suffix", ip + rng.choice("0123456789")
            if intel.ipv4_hit(s):
                continue
            return self._ip_line(s), kind, s
        sys.exit("gen_workload: could not build a near miss in 1000 tries")


# ---------------------------------------------------------------------------
# Counting what substring tools will see
# ---------------------------------------------------------------------------


class SubstringCounter:
    """Does a line contain any value of one list as a plain substring (what grep -F does)."""

    def __init__(self, values):
        self.values = set(values)
        self.lengths = sorted({len(v) for v in values})
        chars = sorted(set("".join(values)))
        self.token = re.compile("[" + re.escape("".join(chars)) + "]+")

    def hit(self, line):
        values, lengths = self.values, self.lengths
        for m in self.token.finditer(line):
            s = m.group()
            n = len(s)
            for i in range(n):
                for length in lengths:
                    if i + length > n:
                        break
                    if s[i : i + length] in values:
                        return True
        return False


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--iocs-dir", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "iocs"))
    ap.add_argument("--n", type=int, nargs="+", required=True, help="indicator list sizes (one file each)")
    ap.add_argument("--log-mb", type=int, required=True, help="log size in MiB (0: lists only)")
    ap.add_argument("--plant-from", type=int, default=None,
                    help="plant indicators from the first K of each list (default: min(10000, smallest --n))")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    t0 = time.time()
    os.makedirs(args.out, exist_ok=True)
    sources = load_sources(args.iocs_dir)
    avail = {t: len(v) for t, v in sources.items()}
    intel = Intel(sources)

    perms = {}
    for t, _ in MIX:
        perm = list(sources[t])
        random.Random(f"{args.seed}/perm/{t}").shuffle(perm)
        perms[t] = perm

    def sample(n):
        counts = type_counts(n, avail)
        return [(t, v) for t, _ in MIX for v in perms[t][: counts[t]]], counts

    sizes = sorted(set(args.n))
    plant_from = args.plant_from or min(DEFAULT_PLANT_FROM, sizes[0])
    lists = {}
    for n in sizes:
        items, counts = sample(n)
        values = [v for _, v in items]
        random.Random(f"{args.seed}/order/{n}").shuffle(values)
        with open(os.path.join(args.out, f"iocs-{n}.txt"), "w", encoding="ascii", newline="\n") as f:
            f.write("\n".join(values))
            f.write("\n")
        lists[n] = (values, counts)
        print(f"gen_workload: iocs-{n}.txt: {json.dumps(counts)}", file=sys.stderr)
    if args.log_mb <= 0:
        return

    rng = random.Random(f"{args.seed}/log")
    pools, dropped = build_pools(random.Random(f"{args.seed}/pools"), intel)
    print(f"gen_workload: benign values dropped for holding an indicator: {json.dumps(dropped)}", file=sys.stderr)
    base, _ = sample(plant_from)
    clock = Clock()
    lines = Lines(rng, pools, clock)
    planter = Planter(rng, lines, intel, base)
    kinds = lines.benign_kinds()
    total_w = sum(w for w, _ in kinds)
    cum, acc = [], 0
    for w, _ in kinds:
        acc += w
        cum.append(acc / total_w)
    fns = [f for _, f in kinds]

    target = args.log_mb * 1024 * 1024
    log_name = f"log-{args.log_mb}.log"
    special = []  # (line, "plant"|"near", category, form)
    written = n_lines = 0
    r = rng.random
    bis = bisect.bisect_right
    chunk_lines = 20000
    with open(os.path.join(args.out, log_name), "wb", buffering=1 << 20) as out:
        while written < target:
            buf = []
            size = 0
            for _ in range(chunk_lines):
                clock.tick()
                x = r()
                if x < P_PLANT:
                    line, t, form, v = planter.plant()
                    special.append((line, "plant", t, form, v, n_lines + len(buf) + 1))
                elif x < P_PLANT + P_NEAR:
                    line, kind, v = planter.near_miss()
                    special.append((line, "near", kind, "-", v, n_lines + len(buf) + 1))
                else:
                    line = fns[bis(cum, r())]()
                buf.append(line)
                size += len(line) + 1
                if written + size >= target:
                    break
            data = ("\n".join(buf) + "\n").encode("ascii")
            out.write(data)
            written += len(data)
            n_lines += len(buf)

    with open(os.path.join(args.out, f"planted-{args.log_mb}.tsv"), "w", encoding="ascii", newline="\n") as f:
        f.write("line\tclass\ttype\tform\tvalue\n")
        for line, cls, t, form, v, no in special:
            f.write(f"{no}\t{cls}\t{t}\t{form}\t{v}\n")
    planted = [s for s in special if s[1] == "plant"]
    near = [s for s in special if s[1] == "near"]

    def tally(items, key):
        out = {}
        for it in items:
            out[it[key]] = out.get(it[key], 0) + 1
        return dict(sorted(out.items()))

    for n in sizes:
        values, counts = lists[n]
        sc = SubstringCounter(values)
        p_vis = sum(1 for s in planted if sc.hit(s[0]))
        n_vis = sum(1 for s in near if sc.hit(s[0]))
        meta = {
            "generator": "benches/gen_workload.py",
            "version": VERSION,
            "seed": args.seed,
            "n": n,
            "log_mb": args.log_mb,
            "iocs_file": f"iocs-{n}.txt",
            "log_file": log_name,
            "log_bytes": written,
            "log_lines": n_lines,
            "indicators_by_type": counts,
            "plant_from": plant_from,
            "true_matching_lines": len(planted),
            "planted_by_type": tally(planted, 2),
            "planted_by_form": tally(planted, 3),
            "near_miss_lines": len(near),
            "near_miss_by_kind": tally(near, 2),
            "fixed_string_expected_lines": p_vis + n_vis,
            "fixed_string_breakdown": {
                "planted_found": p_vis,
                "planted_missed": len(planted) - p_vis,
                "near_miss_found": n_vis,
            },
            "notes": (
                "true_matching_lines: lines holding a planted indicator (verbatim, as a subdomain, "
                "an IP inside a listed CIDR, or a URL with JSON-escaped slashes); benign lines match nothing. "
                "fixed_string_expected_lines: lines a plain substring search (rg -F -c / grep -F -c) "
                "with iocs-N.txt counts; planted_missed are CIDR members and escaped URLs it cannot see, "
                "near_miss_found are superstrings it wrongly counts."
            ),
        }
        with open(os.path.join(args.out, f"workload-{n}.json"), "w", encoding="ascii", newline="\n") as f:
            json.dump(meta, f, indent=2)
            f.write("\n")
    print(
        f"gen_workload: {log_name}: {written} bytes, {n_lines} lines, {len(planted)} planted, "
        f"{len(near)} near misses, {time.time() - t0:.1f}s",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
