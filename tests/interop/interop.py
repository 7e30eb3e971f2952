#!/usr/bin/env python3
"""Interop checks between real CAS clients, bonenfant and the sim ENT (`docs/interop.md`).

Started by `tests/interop/run.sh`, which installs the clients, starts the sim ENTs,
bonenfant (observe, retry, and one per attribute shape) and Apache with mod_auth_cas,
then runs this script with the path of a JSON file describing where everything listens
and which phases to run. This script is the
scripted browser (a `requests` session: cookie jar, redirects followed, the ENT's login
form filled in like a person would) and the python-cas service. It prints one line per
check, `PASS …` or `FAIL …`, and exits non-zero when any check failed.

It never prints a ticket, a cookie or a password: what it compares is what the client
page shows (the user and the attributes) and bonenfant's trace events.
"""

import argparse
import concurrent.futures
import html
import html.parser
import json
import os
import random
import re
import string
import sys
import threading
import time
import tomllib
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cas
import requests

import chromium
import four_children

# The Pronote stand-in's page; the UAI (lower case) is the first path segment, which is
# what `--establishment-pattern` reads.
PAGE = "/{uai}/pronote/parent.html"
# The python-cas service's pages: which CAS server it validates with and how.
PYCAS_PAGE = "/{uai}/pronote/{route}-{mode}/parent.html"
PYCAS_PATH = re.compile(
    r"^/(?P<uai>\d{7}[a-z])/pronote/(?P<route>[a-z]+)-(?P<mode>cas1|cas2|cas3|saml)/parent\.html$"
)
PYCAS_VERSIONS = {"cas1": 1, "cas2": 2, "cas3": 3, "saml": "CAS_2_SAML_1_0"}
# Each python-cas mode and the CAS endpoint it validates at (as bonenfant's events name it).
PYCAS_ENDPOINTS = (
    ("cas1", "validate"),
    ("cas2", "serviceValidate"),
    ("cas3", "p3/serviceValidate"),
    ("saml", "samlValidate"),
)
# A query like Pronote's own (`?fd=1&bydlg=…`), with characters that encode differently.
PRONOTE_QUERY = "?fd=1&bydlg=A6ABB224-12DD-4E31-AF8F-1AF1B4D1B3A8&q=a%2Bb+c%20d&e=%C3%A9"
# A SAML 1.1 validation request, as python-cas and mod_auth_cas POST it to /samlValidate.
SAML_REQUEST = (
    '<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Header/>'
    '<SOAP-ENV:Body><samlp:Request xmlns:samlp="urn:oasis:names:tc:SAML:1.0:protocol" MajorVersion="1" '
    'MinorVersion="1" RequestID="_interop" IssueInstant="2026-01-01T00:00:00Z">'
    "<samlp:AssertionArtifact>{ticket}</samlp:AssertionArtifact></samlp:Request></SOAP-ENV:Body></SOAP-ENV:Envelope>"
)
# Seconds any one HTTP request may take before the check fails.
HTTP_TIMEOUT = 30

TICKET = re.compile(r"\b(?:ST|PT|PGT|PGTIOU|TGT|TGC|LT)-[A-Za-z0-9.-]+")


def redact(text):
    """Details come from pages and exceptions, which may quote a URL with a ticket."""
    return TICKET.sub("[ticket]", str(text))


class Report:
    """Prints one line per check (and appends it to `log`) and remembers whether any failed."""

    def __init__(self, log=None):
        self.failed = []
        self.passed = 0
        self.log = log

    def emit(self, line):
        print(line, flush=True)
        if self.log:
            self.log.write(line + "\n")
            self.log.flush()

    def check(self, name, ok, detail=""):
        suffix = f" ({redact(detail)})" if detail else ""
        self.emit(f"{'PASS' if ok else 'FAIL'} {name}{suffix}")
        if ok:
            self.passed += 1
        else:
            self.failed.append(name)
        return ok

    def info(self, message):
        self.emit(f"INFO {redact(message)}")


class Directory:
    """The sim ENT's directory, to know what each parent's assertion must say."""

    def __init__(self, path):
        with open(path, "rb") as file:
            data = tomllib.load(file)
        self.kinds = {e["uai"]: e["kind"] for e in data["establishments"]}
        self.pupils = {p["jointure"]: p for p in data["pupils"]}
        self.parents = {p["login"]: p for p in data["parents"]}

    def children(self, parent):
        return [self.pupils[j] for j in parent["children"] if j in self.pupils]

    def vector(self, parent, child):
        """`profil|nom|prénom|ELEVE_ID|UAI`, as `Directory::vector` writes it."""
        profil = 1 if self.kinds.get(child["uai"]) == "ecole" else 2
        return f"{profil}|{parent['last_name']}|{parent['first_name']}|{child['eleve_id']}|{child['uai']}"

    def split_families(self):
        """Parents with children in at least two establishments, one child in each: the
        wrong-child case where the intended child follows from the service alone."""
        found = []
        for parent in self.parents.values():
            uais = [child["uai"] for child in self.children(parent)]
            if len(set(uais)) >= 2 and len(set(uais)) == len(uais):
                found.append(parent)
        return sorted(found, key=lambda p: p["login"])

    def siblings(self):
        """(parent, UAI) pairs where a parent has exactly two children in that school, in
        login order: the case where bonenfant asks which child is meant."""
        return [
            (parent, uai)
            for parent in sorted(self.parents.values(), key=lambda p: p["login"])
            for uai in sorted({c["uai"] for c in self.children(parent)})
            if sum(c["uai"] == uai for c in self.children(parent)) == 2
        ]

    def single_child(self):
        return sorted(
            (p for p in self.parents.values() if len(p["children"]) == 1),
            key=lambda p: p["login"],
        )

    def check_view(self, view, parent, attributes_expected=True):
        """Compares what a client shows (user, attributes as lists of strings, names
        compared case-insensitively because CGI upper-cases them) with the directory.

        Returns (problems, designated UAI or None)."""
        problems = []
        if view.get("user") != parent["login"]:
            problems.append("user differs from the parent's login")
        attributes = {name.upper(): values for name, values in view["attributes"].items()}
        if not attributes_expected:
            return problems, None
        expected_scalars = {
            "NOM": [parent["last_name"]],
            "PRENOM": [parent["first_name"]],
            "CATEGORIES": ["National_2"],
        }
        for name, values in expected_scalars.items():
            got = attributes.get(name)
            if got != values:
                problems.append(f"{name.lower()} is {got!r}, expected {values!r}")
        vectors = attributes.get("FREDUVECTEUR") or []
        known = {self.vector(parent, child): child for child in self.children(parent)}
        if not vectors:
            problems.append("no FrEduVecteur value")
            return problems, None
        unknown = [v for v in vectors if v not in known]
        if unknown:
            problems.append(f"FrEduVecteur values not the parent's children's: {unknown!r}")
            return problems, None
        if len(set(vectors)) != len(vectors):
            problems.append("a FrEduVecteur value repeated")
        designated = known[vectors[0]]
        record = next((r for r in parent["records"] if r["uai"] == designated["uai"]), None)
        want_jointure = [record["jointure"]] if record else None
        if attributes.get("ENTPERSONJOINTURE") != want_jointure:
            problems.append(
                f"ENTPersonJointure is {attributes.get('ENTPERSONJOINTURE')!r}, expected {want_jointure!r}"
            )
        return problems, designated["uai"]


class LoginForm(html.parser.HTMLParser):
    """The ENT's login form: its action and hidden fields."""

    def __init__(self):
        super().__init__()
        self.action = None
        self.hidden = {}
        self.fields = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = attrs.get("action") or ""
        elif tag == "input" and attrs.get("name"):
            self.fields.add(attrs["name"])
            if attrs.get("type") == "hidden":
                self.hidden[attrs["name"]] = attrs.get("value") or ""

    @classmethod
    def find(cls, page):
        form = cls()
        form.feed(page)
        if form.action is None or not {"username", "password"} <= form.fields:
            return None
        return form


class Browser:
    """One browser: its own cookie jar, redirects followed, trusting the test CA."""

    def __init__(self, ca):
        self.session = requests.Session()
        # Only the test CA, whatever REQUESTS_CA_BUNDLE and proxy variables say.
        self.session.trust_env = False
        self.session.verify = ca
        self.session.max_redirects = 100
        self.forms_filled = 0

    def get(self, url, **kwargs):
        return self.session.get(url, timeout=HTTP_TIMEOUT, **kwargs)

    def open(self, url, parent, max_forms=1):
        """Opens `url`; when it lands on the ENT's login form, types the parent's
        credentials there, up to `max_forms` times. Returns the final response."""
        response = self.get(url)
        for _ in range(max_forms):
            form = LoginForm.find(response.text)
            if form is None:
                break
            self.forms_filled += 1
            fields = dict(form.hidden)
            fields.update(username=parent["login"], password=parent["password"])
            response = self.session.post(
                urllib.parse.urljoin(response.url, form.action), data=fields, timeout=HTTP_TIMEOUT
            )
        return response


def mod_auth_cas_view(response, delimiter=";"):
    """What the CGI behind mod_auth_cas printed: REMOTE_USER and the CAS-* headers."""
    if response.status_code != 200 or not response.text.startswith("REMOTE_USER="):
        return None
    lines = response.text.splitlines()
    values = dict(line.split("=", 1) for line in lines if "=" in line)
    attributes = {}
    for key, value in values.items():
        if key.startswith("HTTP_CAS_") and key != "HTTP_CAS_USER":
            attributes[key[len("HTTP_CAS_"):]] = value.split(delimiter)
    return {
        "user": values.get("REMOTE_USER"),
        "header_user": values.get("HTTP_CAS_USER"),
        "attributes": attributes,
    }


def pycas_view(response):
    """What the python-cas service printed (JSON of verify_ticket's result)."""
    if response.status_code != 200:
        return None
    try:
        data = response.json()
    except ValueError:
        return None
    return pycas_data_view(data)


def pycas_data_view(data):
    """The view of what the python-cas service printed, once parsed."""
    attributes = {}
    for name, value in (data.get("attributes") or {}).items():
        attributes[name] = value if isinstance(value, list) else [value]
    return {"user": data.get("user"), "attributes": attributes}


# Attributes whose value changes at every login (SAML's authentication instant).
VOLATILE = re.compile(r"(?i)instant|date")


def compare_views(direct, proxied, multi_valued):
    """Whether two logins of the same parent read the same, values sorted when the ENT
    shuffles multi-valued attributes; a client that keeps only one value of several
    then shows one of the parent's values each time, not always the same."""
    problems = []
    if direct["user"] != proxied["user"]:
        problems.append("user differs")
    names = set(direct["attributes"]) | set(proxied["attributes"])
    for name in sorted(names):
        a = direct["attributes"].get(name)
        b = proxied["attributes"].get(name)
        if a is None or b is None:
            problems.append(f"{name} only {'directly' if b is None else 'through bonenfant'}")
        elif VOLATILE.search(name):
            continue
        elif multi_valued and (sorted(a) != sorted(b)) and not (len(a) == len(b) == 1):
            problems.append(f"{name}: {len(a)} values directly, {len(b)} through bonenfant")
        elif not multi_valued and a != b:
            problems.append(f"{name} differs")
    return not problems, "; ".join(problems) or f"{len(names)} attributes"


def compare_canonical_saml(direct, proxied):
    """Like `compare_views`, for a django-cas-server SAML answer re-serialised by bonenfant
    (`--answer canonical`). django-cas-server states each value of a multi-valued attribute
    in an `Attribute` of its own and adds an `authenticationDate` attribute; bonenfant's
    parser keeps the instant from `AuthenticationStatement` only, and its SAML states all
    values in one `Attribute`. So through it a client sees no `authenticationDate`, and may
    see more values (python-cas keeps only the last `Attribute` of a name); every value
    seen directly must still be there. Returns (same, detail with the differences)."""
    problems = [] if direct["user"] == proxied["user"] else ["user differs"]
    notes = []
    for name in sorted(set(direct["attributes"]) | set(proxied["attributes"])):
        a = direct["attributes"].get(name)
        b = proxied["attributes"].get(name)
        if name.lower() == "authenticationdate" and b is None:
            notes.append(f"{name} dropped")
        elif a is None or b is None:
            problems.append(f"{name} only {'directly' if b is None else 'through bonenfant'}")
        elif VOLATILE.search(name):
            continue
        elif not set(a) <= set(b):
            problems.append(f"{name}: a value seen directly is missing")
        elif sorted(a) != sorted(b):
            notes.append(f"{name}: {len(a)} value(s) directly, {len(b)} through bonenfant")
    return not problems, "; ".join(problems + notes) or "no difference"


def summarize(view, parent):
    """What a client kept, without the values: attribute names and value counts."""
    user = "the right user" if view["user"] == parent["login"] else "ANOTHER user"
    if not view["attributes"]:
        return f"{user}, no attributes"
    parts = []
    for name, values in sorted(view["attributes"].items()):
        nonempty = [v for v in values if v and v.strip()]
        parts.append(f"{name}×{len(nonempty)}" if nonempty else f"{name}(empty)")
    return f"{user}, attributes " + ", ".join(parts)


def describe(response):
    """A failure detail that names where the browser ended, never a secret."""
    url = urllib.parse.urlsplit(response.url)
    where = f"HTTP {response.status_code} at {url.scheme}://{url.netloc}{url.path}"
    if response.headers.get("Content-Type", "").startswith("application/json"):
        where += f": {response.text[:200]}"
    return where


class Trace:
    """Follows bonenfant's trace log (JSON lines) from where it stood when created."""

    def __init__(self, path):
        self.path = path
        try:
            with open(path, "rb") as file:
                self.offset = len(file.read())
        except FileNotFoundError:
            self.offset = 0
        self.partial = b""

    def _read(self):
        try:
            with open(self.path, "rb") as file:
                file.seek(self.offset)
                data = file.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        data = self.partial + data
        *lines, self.partial = data.split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]

    def take(self, validations, timeout=10.0):
        """Every event since the last call, waiting until `validations` validate events
        arrived (the writer may lag behind the answer) or `timeout` seconds passed."""
        events = []
        deadline = time.monotonic() + timeout
        while True:
            events.extend(self._read())
            count = sum(1 for e in events if e.get("event") == "validate")
            if count >= validations or time.monotonic() > deadline:
                return events
            time.sleep(0.05)


class PyCasService:
    """A CAS-protected service written with python-cas, on 127.0.0.1: the page
    redirects to the CAS login, and with a ticket validates it with python-cas (CAS 1, 2,
    3 or SAML 1.1) and answers the user and attributes python-cas returned, as JSON."""

    def __init__(self, port, servers, ca):
        self.port = port
        self.servers = servers
        self.ca = ca
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                service.handle(self)

            def log_message(self, *args):
                """Quiet: the request line holds the ticket."""

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, uai, route, mode):
        return f"http://127.0.0.1:{self.port}" + PYCAS_PAGE.format(uai=uai, route=route, mode=mode)

    def handle(self, request):
        path, _, query = request.path.partition("?")
        match = PYCAS_PATH.match(path)
        if not match or match["route"] not in self.servers:
            return self.reply(request, 404, {"error": "no such page"})
        session = requests.Session()
        session.trust_env = False
        session.verify = self.ca
        client = cas.CASClient(
            version=PYCAS_VERSIONS[match["mode"]],
            service_url=f"http://127.0.0.1:{self.port}{path}",
            server_url=self.servers[match["route"]],
            # CAS 1/2/3 pass this to requests as `verify`, over the session's own; SAML
            # does not (it uses the session's).
            verify_ssl_certificate=self.ca,
            session=session,
        )
        ticket = urllib.parse.parse_qs(query).get("ticket", [None])[0]
        if not ticket:
            request.send_response(302)
            request.send_header("Location", client.get_login_url())
            request.send_header("Content-Length", "0")
            request.end_headers()
            return None
        try:
            user, attributes, _ = client.verify_ticket(ticket)
        except Exception as error:  # noqa: BLE001 - any client failure is a refused login
            return self.reply(request, 502, {"error": redact(f"{type(error).__name__}: {error}")})
        if not user:
            return self.reply(request, 403, {"user": None})
        return self.reply(request, 200, {"user": user, "attributes": attributes or {}})

    @staticmethod
    def reply(request, status, body):
        data = json.dumps(body, ensure_ascii=False).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json; charset=utf-8")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)


class Interop:
    def __init__(self, env, report):
        self.env = env
        self.report = report
        self.directory = Directory(env["directory"])
        self.ca = env["ca"]
        self.ports = env["ports"]

    # --- helpers ---

    def apache(self, vhost, uai, query=""):
        return f"http://127.0.0.1:{self.ports[vhost]}" + PAGE.format(uai=uai.lower()) + query

    def bonenfant(self, which):
        return f"https://127.0.0.1:{self.ports[which]}/cas"

    def login_mod_auth_cas(self, vhost, parent, uai, query=""):
        browser = Browser(self.ca)
        response = browser.open(self.apache(vhost, uai, query), parent)
        return browser, response, mod_auth_cas_view(response)

    def check_login(self, name, parent, view, response, attributes_expected=True):
        """One PASS/FAIL line for a login's page; returns the designated UAI shown."""
        if view is None:
            self.report.check(name, False, describe(response))
            return None, False
        problems, designated = self.directory.check_view(view, parent, attributes_expected)
        ok = not problems
        detail = "; ".join(problems) if problems else (
            f"user and attributes intact, child in {designated}" if designated else "user intact"
        )
        self.report.check(name, ok, detail)
        return designated, ok

    def check_event(self, name, trace, uai_expected, designated, endpoint):
        """Exactly one validate event for the login just done, matching the page."""
        events = [e for e in trace.take(1) if e.get("event") == "validate"]
        if len(events) != 1:
            return self.report.check(name, False, f"{len(events)} validate events, expected 1")
        event = events[0]
        problems = []
        if event.get("endpoint") != endpoint:
            problems.append(f"endpoint {event.get('endpoint')!r}, expected {endpoint!r}")
        if event.get("uai_expected") != uai_expected:
            problems.append(f"uai_expected {event.get('uai_expected')!r}, expected {uai_expected!r}")
        if event.get("uai_asserted") != designated:
            problems.append(f"uai_asserted {event.get('uai_asserted')!r}, page shows {designated!r}")
        if designated is not None:
            wrong = designated != uai_expected
            if (event.get("verdict") == "wrong_establishment") != wrong:
                problems.append(
                    f"verdict {event.get('verdict')!r} for a page showing a child in {designated}"
                )
        if event.get("pin") != "none":
            problems.append(f"pin {event.get('pin')!r} in observe mode")
        if event.get("error") is not None:
            problems.append(f"error {event.get('error')!r}")
        detail = "; ".join(problems) or f"verdict {event.get('verdict')}, uai_asserted {designated}"
        return self.report.check(name, not problems, detail)

    # --- checks ---

    def baseline(self, parents):
        """The chain without bonenfant, so a failure further down is bonenfant's."""
        parent = parents[0]
        uai = self.directory.children(parent)[0]["uai"]
        _, response, view = self.login_mod_auth_cas("direct", parent, uai)
        self.check_login("baseline: mod_auth_cas serviceValidate, ENT behind plain TLS", parent, view, response)
        with PyCasService(self.ports["pycas"], self.pycas_servers(), self.ca) as service:
            for mode in ("cas1", "cas2", "cas3", "saml"):
                browser = Browser(self.ca)
                response = browser.open(service.url(uai.lower(), "direct", mode), parent)
                self.check_login(
                    f"baseline: python-cas {mode}, ENT direct",
                    parent,
                    pycas_view(response),
                    response,
                    attributes_expected=mode != "cas1",
                )

    def pycas_servers(self):
        """python-cas's CAS server per route (the first path segment after `pronote/`)."""
        return {
            "direct": f"http://127.0.0.1:{self.ports['ent']}/cas/",
            "proxy": self.bonenfant("observe") + "/",
            "pin": self.bonenfant("pin") + "/",
            "shapedirect": f"http://127.0.0.1:{self.ports['shape_ent']}/cas/",
            "shapeproxy": self.bonenfant("shape_proxy") + "/",
            "djdirect": f"http://127.0.0.1:{self.ports['dj_correct']}/cas/",
            "djproxy": self.bonenfant("dj_observe") + "/",
            "djrandom": self.bonenfant("dj_random_observe") + "/",
            "djpin": self.bonenfant("dj_retry") + "/",
            "djcanon": self.bonenfant("dj_canonical") + "/",
            "djpinall": self.bonenfant("dj_retry_all") + "/",
            "djbare": f"http://127.0.0.1:{self.ports['dj_bare']}/cas/",
            "djbarepin": self.bonenfant("dj_bare_retry") + "/",
            "djbrowser": self.bonenfant("dj_browser") + "/",
        }

    def observe(self, parents):
        """Logins through bonenfant (observe) with each client and protocol; one validate
        event each, agreeing with the page."""
        trace = Trace(self.env["traces"]["observe"])
        for parent in parents:
            for child in self.directory.children(parent)[:2]:
                uai = child["uai"]
                for vhost, protocol, endpoint in (
                    ("sv", "serviceValidate", "serviceValidate"),
                    ("saml", "SAML 1.1", "samlValidate"),
                ):
                    trace.take(0, timeout=0)
                    _, response, view = self.login_mod_auth_cas(vhost, parent, uai)
                    name = f"observe: mod_auth_cas {protocol}, {parent['login']} → {uai}"
                    designated, ok = self.check_login(name, parent, view, response)
                    if ok:
                        self.check_event(f"{name}: trace event", trace, uai, designated, endpoint)
        with PyCasService(self.ports["pycas"], self.pycas_servers(), self.ca) as service:
            for parent in parents:
                for child in self.directory.children(parent)[:2]:
                    uai = child["uai"]
                    for mode, endpoint in PYCAS_ENDPOINTS:
                        trace.take(0, timeout=0)
                        browser = Browser(self.ca)
                        response = browser.open(service.url(uai.lower(), "proxy", mode), parent)
                        name = f"observe: python-cas {mode}, {parent['login']} → {uai}"
                        designated, ok = self.check_login(
                            name, parent, pycas_view(response), response, attributes_expected=mode != "cas1"
                        )
                        if ok:
                            self.check_event(f"{name}: trace event", trace, uai, designated, endpoint)

    def shapes(self, variant):
        """The same login with each client, directly from the ENT and through bonenfant
        (observe): bonenfant must not change what a client reads, whatever the attribute
        shape; and it must read the designated child even where the client cannot."""
        parts = variant.split(":")
        dialect, pick, answer, pin = parts + ["verbatim", "observe"][len(parts) - 2 :]
        tag = f"shapes [{dialect}, pick {pick}, answer {answer}, pin {pin}]"
        trace = Trace(self.env["traces"]["shape"])
        parent = self.directory.split_families()[0]
        children = self.directory.children(parent)
        uai = children[0]["uai"]
        uais = {child["uai"] for child in children}

        def mod_auth_cas(vhost):
            return lambda: self.login_mod_auth_cas(vhost, parent, uai)[1:]

        def python_cas(route, mode):
            def login():
                response = Browser(self.ca).open(service.url(uai.lower(), route, mode), parent)
                return response, pycas_view(response)

            return login

        with PyCasService(self.ports["pycas"], self.pycas_servers(), self.ca) as service:
            clients = [
                ("mod_auth_cas serviceValidate", "serviceValidate",
                 mod_auth_cas("shape_direct_sv"), mod_auth_cas("shape_sv")),
                ("mod_auth_cas SAML 1.1", "samlValidate",
                 mod_auth_cas("shape_direct_saml"), mod_auth_cas("shape_saml")),
            ] + [
                (f"python-cas {mode}", endpoint,
                 python_cas("shapedirect", mode), python_cas("shapeproxy", mode))
                for mode, endpoint in PYCAS_ENDPOINTS
            ]
            for client, endpoint, direct, proxied in clients:
                direct_response, direct_view = direct()
                trace.take(0, timeout=0)
                proxied_response, proxied_view = proxied()
                name = f"{tag}: {client} reads the same through bonenfant as directly"
                if direct_view is None or proxied_view is None:
                    self.report.check(
                        name, False,
                        f"direct {describe(direct_response)}, through bonenfant {describe(proxied_response)}",
                    )
                    continue
                same, detail = compare_views(direct_view, proxied_view, multi_valued=pick == "shuffled")
                self.report.check(name, same, detail)
                self.report.info(f"{tag}: {client} sees {summarize(proxied_view, parent)}")
                if pin == "rewrite" and endpoint != "validate":
                    problems, designated = self.directory.check_view(proxied_view, parent)
                    self.report.check(
                        f"{tag}: {client} reads the intended child first",
                        not problems and designated == uai,
                        "; ".join(problems) or f"first value in {designated}",
                    )
                events = [e for e in trace.take(1, timeout=5) if e.get("event") == "validate"]
                event = events[0] if len(events) == 1 else {}
                asserted = event.get("uai_asserted")
                if endpoint == "validate" and pin == "observe":
                    ok = asserted is None  # CAS 1 carries no attributes to read
                elif endpoint == "validate":
                    ok = asserted in uais  # known from bonenfant's own early validation
                elif pick == "first":
                    ok = asserted == uai
                else:
                    ok = asserted in uais
                self.report.check(
                    f"{tag}: {client}: bonenfant logs one validate event naming the designated child",
                    len(events) == 1 and event.get("endpoint") == endpoint and event.get("error") is None and ok,
                    f"{len(events)} events, endpoint {event.get('endpoint')}, verdict {event.get('verdict')}, "
                    f"uai_asserted {asserted}, error {event.get('error')}",
                )

    def retry(self, families, logins, workers=1, query="", vhost="retry", trace_name="retry", tag="retry"):
        """With --pin retry, every login lands on the child of the service's establishment,
        `workers` browsers at a time; `query` is added to the service URL (Pronote's own
        URLs carry some, and the re-login must send the service back unchanged). `vhost`,
        `trace_name` and `tag` name the service, bonenfant's trace and the checks."""
        trace = Trace(self.env["traces"][trace_name])
        plan = []
        while len(plan) < logins:
            for parent in families:
                for child in self.directory.children(parent):
                    plan.append((parent, child))
        plan = plan[:logins]

        def login(step):
            parent, child = step
            _, response, view = self.login_mod_auth_cas(vhost, parent, child["uai"], query)
            if view is None:
                return f"{parent['login']} → {child['uai']}: {describe(response)}"
            problems, designated = self.directory.check_view(view, parent)
            shown = view["attributes"].get("FREDUVECTEUR")
            if problems or designated != child["uai"] or shown != [self.directory.vector(parent, child)]:
                return f"{parent['login']} → {child['uai']}: landed in {designated}" + (
                    f" ({'; '.join(problems)})" if problems else ""
                )
            return None

        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            misses = [miss for miss in pool.map(login, plan) if miss]
        landed = logins - len(misses)
        elapsed = time.monotonic() - started
        self.report.check(
            f"{tag}: {logins} mod_auth_cas {'SAML 1.1' if vhost.endswith('saml') else 'serviceValidate'} "
            f"logins ({workers} at a time"
            + (f", service with query {query}" if query else "")
            + f") of {len(families)} parents with children in two establishments land on the intended child",
            landed == logins,
            f"{landed}/{logins} in {elapsed:.1f} s" + (f"; first misses: {misses[:3]}" if misses else ""),
        )
        events = trace.take(logins, timeout=15)
        validates = [e for e in events if e.get("event") == "validate"]
        verdicts = {}
        for event in validates:
            verdicts[event.get("verdict")] = verdicts.get(event.get("verdict"), 0) + 1
        pins = {}
        for event in validates:
            pins[event.get("pin")] = pins.get(event.get("pin"), 0) + 1
        retries = [e for e in events if e.get("event") == "retry"]
        gave_up = [e for e in events if e.get("event") == "retry_gave_up"]
        self.report.check(
            f"{tag}: one validate event per login, every verdict ok",
            len(validates) == logins
            and all(e.get("verdict") in ("ok", "flip") and e.get("uai_asserted") == e.get("uai_expected") for e in validates),
            f"{len(validates)} validate events, verdicts {verdicts}, pin {pins}",
        )
        self.report.check(
            f"{tag}: the ENT's random pick was exercised (some logins needed a new silent login)",
            len(retries) > 0 and pins.get("retry", 0) > 0 and not gave_up,
            f"{len(retries)} retry events, {pins.get('retry', 0)} validations pinned by retry, "
            f"{len(gave_up)} gave up",
        )

    def retry_python_cas(self, families, rounds, route="pin", trace_name="retry", tag="retry", modes=None):
        """With --pin retry, python-cas lands on the intended child in every protocol: the
        early validation bonenfant did must not show in the client's own validation.
        `route` is the python-cas service's CAS server (see `pycas_servers`)."""
        trace = Trace(self.env["traces"][trace_name])
        with PyCasService(self.ports["pycas"], self.pycas_servers(), self.ca) as service:
            for mode, endpoint in modes or PYCAS_ENDPOINTS:
                logins = landed = 0
                misses = []
                for _ in range(rounds):
                    for parent in families:
                        for child in self.directory.children(parent):
                            logins += 1
                            response = Browser(self.ca).open(service.url(child["uai"].lower(), route, mode), parent)
                            view = pycas_view(response)
                            if view is None:
                                misses.append(describe(response))
                                continue
                            problems, designated = self.directory.check_view(view, parent, mode != "cas1")
                            if problems or (mode != "cas1" and designated != child["uai"]):
                                misses.append(f"{parent['login']} → {child['uai']}: landed in {designated}")
                            else:
                                landed += 1
                events = [e for e in trace.take(logins, timeout=10) if e.get("event") == "validate"]
                # Even for CAS 1 (no attributes), bonenfant knows the child from its own
                # early validation of the ticket.
                wrong = [e for e in events if e.get("endpoint") != endpoint or e.get("error") is not None
                         or e.get("uai_asserted") != e.get("uai_expected") or e.get("verdict") != "ok"]
                self.report.check(
                    f"{tag}: python-cas {mode}, {logins} logins land on the intended child, one clean validate event each",
                    landed == logins and len(events) == logins and not wrong,
                    f"{landed}/{logins} landed, {len(events)} validate events, {len(wrong)} off"
                    + (f"; first misses: {misses[:2]}" if misses else "")
                    + (f"; first off event: {wrong[0]}" if wrong else ""),
                )

    def retry_renew(self, families, logins, vhost="retry_renew", trace_name="retry", tag="retry"):
        """A service that demands fresh credentials (mod_auth_cas `CASRenew`: renew=true on
        /login and on validation) must never accept a ticket the ENT issued from its SSO
        session, which is what a silent re-login yields. Under retry, bonenfant must either
        leave such logins alone or keep renew=true on the re-login (the parent then types
        the password again); either way the login succeeds."""
        trace = Trace(self.env["traces"][trace_name])
        plan = [(parent, child) for parent in families for child in self.directory.children(parent)]
        plan = (plan * (logins // len(plan) + 1))[:logins]
        silent = []
        failed = []
        for parent, child in plan:
            browser = Browser(self.ca)
            response = browser.open(self.apache(vhost, child["uai"]), parent, max_forms=25)
            events = [e for e in trace.take(1, timeout=5) if e.get("event") == "validate"]
            if mod_auth_cas_view(response) is None:
                failed.append(describe(response))
            elif browser.forms_filled == 1 and any(e.get("pin") == "retry" for e in events):
                silent.append(f"{parent['login']} → {child['uai']}")
        self.report.check(
            f"{tag}: {logins} logins on a CASRenew service succeed, none through a silent re-login",
            not silent and not failed,
            f"{len(silent)} accepted a ticket from a silent re-login, {len(failed)} failed"
            + (f"; first: {(silent + failed)[0]}" if silent or failed else ""),
        )

    def rewrite(self, families, visits):
        """With --pin rewrite, once a browser session has landed on the intended child,
        every later login of that browser to the same service lands there too, with an
        assertion that agrees with itself. Each visit drops the service's own cookie, so
        mod_auth_cas goes back to the CAS (silently: the ENT's SSO session stays)."""
        trace = Trace(self.env["traces"]["rewrite"])
        logins = 0
        misses = []
        for parent in families:
            for child in self.directory.children(parent):
                browser = Browser(self.ca)
                landed_once = False
                for visit in range(visits):
                    for cookie in [c for c in browser.session.cookies if c.name == "MAC_REWRITE"]:
                        browser.session.cookies.clear(cookie.domain, cookie.path, cookie.name)
                    response = browser.open(self.apache("rewrite", child["uai"]), parent)
                    logins += 1
                    view = mod_auth_cas_view(response)
                    if view is None:
                        misses.append(f"{parent['login']} → {child['uai']} visit {visit}: {describe(response)}")
                        continue
                    problems, designated = self.directory.check_view(view, parent)
                    right = not problems and designated == child["uai"]
                    if landed_once and not right:
                        misses.append(
                            f"{parent['login']} → {child['uai']} visit {visit}: landed in {designated}"
                            + (f" ({'; '.join(problems)})" if problems else "")
                        )
                    landed_once = landed_once or right
        events = [e for e in trace.take(logins, timeout=10) if e.get("event") == "validate"]
        pins = {}
        for event in events:
            pins[event.get("pin")] = pins.get(event.get("pin"), 0) + 1
        self.report.check(
            f"rewrite: {logins} mod_auth_cas logins, {visits} per browser and service: after the first "
            "landing on the intended child, every later one lands there, consistently",
            not misses and len(events) == logins,
            f"{len(misses)} misses, {len(events)} validate events, pin {pins}"
            + (f"; first: {misses[0]}" if misses else ""),
        )
        self.report.check(
            "rewrite: the ENT's random pick was exercised (some answers were rewritten)",
            pins.get("rewrite", 0) > 0,
            f"pin {pins}",
        )

    def single_logout(self, parent, vhost, proxy, bonenfant=None):
        """Logging out at the ENT through bonenfant ends the mod_auth_cas session (which
        the ENT tells the service directly, by a single-logout POST). `proxy` names
        bonenfant's trace, `bonenfant` its port (by default the one `proxy` says)."""
        trace = Trace(self.env["traces"][proxy])
        uai = self.directory.children(parent)[-1]["uai"]
        browser, response, view = self.login_mod_auth_cas(vhost, parent, uai)
        tag = f"slo [{proxy}]"
        if not self.check_login(f"{tag}: {parent['login']} logged in at the service", parent, view, response)[1]:
            return
        page = self.apache(vhost, uai)
        base = self.bonenfant(bonenfant or ("observe" if proxy == "observe" else "pin"))
        again = browser.get(page, allow_redirects=False)
        self.report.check(
            f"{tag}: the service keeps its session before logout",
            again.status_code == 200 and mod_auth_cas_view(again) is not None,
            f"HTTP {again.status_code}",
        )
        logout = browser.get(base + "/logout")
        self.report.check(
            f"{tag}: the ENT's /cas/logout answers through bonenfant",
            logout.status_code == 200 and "déconnecté" in logout.text,
            describe(logout),
        )
        after = browser.get(page, allow_redirects=False)
        location = after.headers.get("Location", "")
        self.report.check(
            f"{tag}: the service's session is gone after logout (sent back to the CAS login)",
            after.status_code in (302, 303) and location.startswith(base + "/login"),
            f"HTTP {after.status_code}" + (" to the CAS login" if location.startswith(base) else ""),
        )
        relogin = browser.open(page, parent)
        self.report.check(
            f"{tag}: the next visit asks for the password again (ENT session gone too)",
            browser.forms_filled == 2 and mod_auth_cas_view(relogin) is not None,
            f"login forms filled: {browser.forms_filled}",
        )
        events = trace.take(1, timeout=3)
        kinds = [e.get("kind") for e in events if e.get("event") == "logout"]
        self.report.check(
            f"{tag}: bonenfant logged the browser logout",
            "browser" in kinds,
            f"logout events {kinds}",
        )

    # --- django-cas-server: a CAS server written by others, behind bonenfant ---

    def django_clients(self, service, direct_route, proxied_route, direct_vhosts, proxied_vhosts, modes=PYCAS_ENDPOINTS):
        """(client, endpoint, direct login, login through bonenfant) for mod_auth_cas
        (serviceValidate and SAML vhosts, given as (direct, proxied) names; None when only one
        path is wanted) and python-cas (`modes`); each login is `login(parent, uai)` →
        (response, view)."""

        def mod_auth_cas(vhost):
            return lambda parent, uai: self.login_mod_auth_cas(vhost, parent, uai)[1:]

        def python_cas(route, mode):
            def login(parent, uai):
                response = Browser(self.ca).open(service.url(uai.lower(), route, mode), parent)
                return response, pycas_view(response)

            return login

        clients = []
        for (protocol, endpoint), direct, proxied in zip(
            (("serviceValidate", "serviceValidate"), ("SAML 1.1", "samlValidate")), direct_vhosts, proxied_vhosts
        ):
            if proxied:
                clients.append((f"mod_auth_cas {protocol}", endpoint, direct and mod_auth_cas(direct), mod_auth_cas(proxied)))
        for mode, endpoint in modes:
            clients.append((
                f"python-cas {mode}", endpoint,
                direct_route and python_cas(direct_route, mode), python_cas(proxied_route, mode),
            ))
        return clients

    def django_view_problems(self, view, parent, attributes_expected):
        """What is wrong in a client's view of a login at the `correct` django-cas-server:
        the user, the parent's names, every FrEduVecteur value one of the parent's children's
        (a client may keep only some of several values), ENTPersonJointure one of the
        parent's records."""
        problems = []
        if view.get("user") != parent["login"]:
            problems.append("user differs from the parent's login")
        if not attributes_expected:
            return problems
        attributes = {name.upper(): values for name, values in view["attributes"].items()}
        for name, want in (("NOM", parent["last_name"]), ("PRENOM", parent["first_name"]), ("CATEGORIES", "National_2")):
            if attributes.get(name) != [want]:
                problems.append(f"{name.lower()} is {attributes.get(name)!r}, expected {[want]!r}")
        known = {self.directory.vector(parent, child) for child in self.directory.children(parent)}
        vectors = attributes.get("FREDUVECTEUR") or []
        if not vectors or not set(vectors) <= known:
            problems.append(f"FrEduVecteur is {vectors!r}, not values of the parent's children")
        jointures = {record["jointure"] for record in parent["records"]}
        got = attributes.get("ENTPERSONJOINTURE") or []
        if len(got) != 1 or not set(got) <= jointures:
            problems.append(f"ENTPersonJointure is {got!r}, not one of the parent's records")
        return problems

    def django_observe(self, parents, tag="django-observe", trace_name="django_observe", route="djproxy",
                       vhosts=("dj_sv", "dj_saml"), canonical=False):
        """The `correct` django-cas-server (every child's FrEduVecteur, in the directory's
        order) directly and through bonenfant (observe; `route` and `vhosts` name the
        python-cas route and mod_auth_cas vhosts through it): each client reads exactly the
        same both ways, as the directory says (with `canonical`, SAML as
        `compare_canonical_saml` allows); one validate event per login naming the first
        child (the one the assertion designates), `wrong_establishment` exactly when that
        child is not in the service's establishment."""
        trace = Trace(self.env["traces"][trace_name])
        seen = set()
        with PyCasService(self.ports["pycas"], self.pycas_servers(), self.ca) as service:
            clients = self.django_clients(service, "djdirect", route, ("dj_direct_sv", "dj_direct_saml"), vhosts)
            for parent in parents:
                children = self.directory.children(parent)
                designated = children[0]["uai"]
                for child in children[:2]:
                    uai = child["uai"]
                    for client, endpoint, direct, proxied in clients:
                        name = f"{tag}: {client}, {parent['login']} → {uai}"
                        direct_response, direct_view = direct(parent, uai)
                        trace.take(0, timeout=0)
                        proxied_response, proxied_view = proxied(parent, uai)
                        if direct_view is None or proxied_view is None:
                            self.report.check(
                                f"{name}: logs in directly and through bonenfant", False,
                                f"direct {describe(direct_response)}, through bonenfant {describe(proxied_response)}",
                            )
                            continue
                        problems = self.django_view_problems(direct_view, parent, endpoint != "validate")
                        if canonical and endpoint == "samlValidate":
                            same, detail = compare_canonical_saml(direct_view, proxied_view)
                            claim = "every value it reads directly, as the directory says (canonical SAML)"
                        else:
                            same, detail = compare_views(direct_view, proxied_view, multi_valued=False)
                            claim = "the same through bonenfant as directly, as the directory says"
                        self.report.check(
                            f"{name}: reads {claim}",
                            same and not problems,
                            "; ".join(problems + ([] if same else [detail])) or detail,
                        )
                        if (client, len(children)) not in seen:
                            seen.add((client, len(children)))
                            self.report.info(
                                f"{tag}: {client}, parent of {len(children)}: sees {summarize(proxied_view, parent)}"
                            )
                        asserted = None if endpoint == "validate" else designated
                        if endpoint == "validate":
                            verdicts = ("unresolved",)  # CAS 1 carries no attributes
                        elif designated != uai:
                            verdicts = ("wrong_establishment",)
                        else:
                            verdicts = ("ok", "flip")
                        self.check_django_event(f"{name}: trace event", trace, endpoint, uai, asserted, verdicts)

    def check_django_event(self, name, trace, endpoint, uai_expected, uai_asserted, verdicts, pin="none"):
        """One PASS/FAIL line: exactly one validate event for the login just done, at
        `endpoint`, naming `uai_asserted`, with one of `verdicts`; returns the event."""
        events = [e for e in trace.take(1, timeout=5) if e.get("event") == "validate"]
        event = events[0] if len(events) == 1 else {}
        problems = [] if len(events) == 1 else [f"{len(events)} validate events, expected 1"]
        for field, want in (("endpoint", endpoint), ("uai_expected", uai_expected), ("uai_asserted", uai_asserted),
                            ("error", None), ("pin", pin)):
            if events and event.get(field) != want:
                problems.append(f"{field} {event.get(field)!r}, expected {want!r}")
        if events and event.get("verdict") not in verdicts:
            problems.append(f"verdict {event.get('verdict')!r}, expected {' or '.join(verdicts)}")
        self.report.check(name, not problems, "; ".join(problems) or f"verdict {event.get('verdict')}, rule {event.get('rule')}")
        return event

    def django_random(self, families, rounds):
        """The `random` django-cas-server (ONE child drawn per ticket: OSE's bug) through
        bonenfant (observe): each page shows one of the parent's children with a consistent
        assertion, and bonenfant's one validate event names that same child, with
        `wrong_establishment` exactly when it is not in the service's establishment."""
        trace = Trace(self.env["traces"]["django_random"])
        totals = {}
        with PyCasService(self.ports["pycas"], self.pycas_servers(), self.ca) as service:
            clients = self.django_clients(
                service, None, "djrandom", (None, None), ("dj_random_sv", None),
                modes=[m for m in PYCAS_ENDPOINTS if m[0] in ("cas3", "saml")],
            )
            for client, endpoint, _, login in clients:
                logins = 0
                misses = []
                verdicts = {}
                for _ in range(rounds):
                    for parent in families:
                        for child in self.directory.children(parent):
                            logins += 1
                            trace.take(0, timeout=0)
                            response, view = login(parent, child["uai"])
                            events = [e for e in trace.take(1, timeout=5) if e.get("event") == "validate"]
                            if view is None:
                                misses.append(f"{parent['login']} → {child['uai']}: {describe(response)}")
                                continue
                            problems, shown = self.directory.check_view(view, parent)
                            event = events[0] if len(events) == 1 else {}
                            verdict = event.get("verdict")
                            verdicts[verdict] = verdicts.get(verdict, 0) + 1
                            totals[verdict] = totals.get(verdict, 0) + 1
                            right = ("wrong_establishment",) if shown != child["uai"] else ("ok", "flip")
                            if problems or len(events) != 1 or event.get("uai_asserted") != shown \
                                    or event.get("endpoint") != endpoint or verdict not in right:
                                misses.append(
                                    f"{parent['login']} → {child['uai']}: page shows {shown}, {len(events)} events, "
                                    f"uai_asserted {event.get('uai_asserted')}, verdict {verdict}"
                                    + (f" ({'; '.join(problems)})" if problems else "")
                                )
                self.report.check(
                    f"django-random: {client}, {logins} logins through bonenfant (observe): one validate event "
                    "each, naming the child the page shows, wrong_establishment exactly when it is another school's",
                    not misses,
                    f"verdicts {verdicts}" + (f"; {len(misses)} off, first: {misses[:2]}" if misses else ""),
                )
        self.report.check(
            "django-random: the ENT's random pick was exercised (logins landed on both sides)",
            totals.get("wrong_establishment", 0) > 0 and totals.get("ok", 0) + totals.get("flip", 0) > 0,
            f"verdicts {totals}",
        )

    def django_sticky(self, visits):
        """One browser of a parent with two children in the same establishment visits a
        mod_auth_cas service (its cookie dropped each time) through bonenfant (observe) in
        front of the `random` django-cas-server: the first landing sets the session's sticky
        intent, then each later landing on the other child is `wrong_child` and each on the
        same child `ok` (or `flip` after a miss)."""
        parent, uai = self.directory.siblings()[0]
        trace = Trace(self.env["traces"]["django_random"])
        browser = Browser(self.ca)
        first = None
        misses = []
        outcomes = {}
        for visit in range(visits):
            for cookie in [c for c in browser.session.cookies if c.name == "MAC_DJ_RANDOM_SV"]:
                browser.session.cookies.clear(cookie.domain, cookie.path, cookie.name)
            trace.take(0, timeout=0)
            response = browser.open(self.apache("dj_random_sv", uai), parent)
            view = mod_auth_cas_view(response)
            events = [e for e in trace.take(1, timeout=5) if e.get("event") == "validate"]
            if view is None or len(events) != 1:
                misses.append(f"visit {visit}: {describe(response)}, {len(events)} validate events")
                continue
            problems, shown = self.directory.check_view(view, parent)
            eleve_id = view["attributes"]["FREDUVECTEUR"][0].split("|")[3]
            if shown != uai:
                landing, right = "a child in another school", ("wrong_establishment",)
            elif eleve_id == (first := first or eleve_id):
                landing, right = "the first child", ("ok", "flip")
            else:
                landing, right = "the sibling in the same school", ("wrong_child",)
            verdict = events[0].get("verdict")
            outcomes[(landing, verdict)] = outcomes.get((landing, verdict), 0) + 1
            if problems or verdict not in right:
                misses.append(f"visit {visit}: {landing}, verdict {verdict}, rule {events[0].get('rule')}"
                              + (f" ({'; '.join(problems)})" if problems else ""))
        self.report.check(
            f"django-sticky: {visits} visits of one browser of {parent['login']} (two children in {uai}): after "
            "the first landing there, the sibling is wrong_child (intent.sticky), the same child ok, "
            "another school's child wrong_establishment",
            not misses and browser.forms_filled == 1,
            f"{', '.join(f'{k[0]} {k[1]}: {n}' for k, n in sorted(outcomes.items()))}; forms filled {browser.forms_filled}"
            + (f"; first misses: {misses[:2]}" if misses else ""),
        )

    def django_retry_all(self, parent):
        """--pin retry in front of the `correct` ENT, which names every child, always in the
        same order. At the first child's school the login lands at once. At the second
        child's, bonenfant reads the first value as the designated child: no re-login can
        change that answer, so it spends its --retry-max re-logins and gives up with its
        "continue anyway" page, whose link must still reach the service through one fresh
        login let through unpinned (the parent is not locked out); the cost is reported."""
        trace = Trace(self.env["traces"]["django_retry_all"])
        first, second = self.directory.children(parent)[:2]
        with PyCasService(self.ports["pycas"], self.pycas_servers(), self.ca) as service:
            response = Browser(self.ca).open(service.url(first["uai"].lower(), "djpinall", "cas3"), parent)
            events = trace.take(1, timeout=5)
            view = pycas_view(response)
            problems, shown = self.directory.check_view(view, parent) if view else ([describe(response)], None)
            retries = [e for e in events if e.get("event") == "retry"]
            self.report.check(
                f"django-retry-all: {parent['login']} at the first child's school ({first['uai']}) lands at once",
                not problems and shown == first["uai"] and not retries,
                "; ".join(problems) or f"child in {shown}, {len(retries)} re-logins",
            )
            url = service.url(second["uai"].lower(), "djpinall", "cas3")
            browser = Browser(self.ca)
            started = time.monotonic()
            page = browser.open(url, parent)
            elapsed = time.monotonic() - started
            # The link is bonenfant's own (it carries no ticket, which would be dead when
            # a parent clicks): it lets one fresh login through unpinned.
            link = next((urllib.parse.urljoin(page.url, html.unescape(href))
                         for href in re.findall(r'href="([^"]+)"', page.text)
                         if "/give-up?" in href and "choice=continue" in href), None)
            response = browser.get(link) if link else page
            view = pycas_view(response)
            events = trace.take(1, timeout=5)
            retries = [e for e in events if e.get("event") == "retry"]
            gave_up = [e for e in events if e.get("event") == "retry_gave_up"]
            validates = [e for e in events if e.get("event") == "validate"]
            problems, shown = self.directory.check_view(view, parent) if view else ([describe(response)], None)
            self.report.check(
                f"django-retry-all: at the second child's school ({second['uai']}) bonenfant gives up and its "
                "continue-anyway link still reaches the service with the ENT's assertion",
                bool(link) and not problems and len(gave_up) == 1 and len(validates) == 1
                and validates[0].get("verdict") == "wrong_establishment",
                "; ".join(problems + [f"{'a' if link else 'NO'} continue link, {len(retries)} re-logins"]) + ", "
                f"{len(gave_up)} retry_gave_up ({gave_up[0].get('reason') if gave_up else None}), "
                f"validate verdicts {[e.get('verdict') for e in validates]}",
            )
            self.report.info(
                f"django-retry-all: an ENT that names every child in a fixed order cost {len(retries)} silent "
                f"re-logins ({elapsed:.2f} s) for a login whose answer could not change"
            )

    def django_cas2_bare(self, parent):
        """Regression (bonenfant, fixed): under --pin retry, bonenfant validated each
        front-channel ticket early at the ENT's CAS 2.0 `/serviceValidate`; behind an ENT
        whose CAS 2.0 answers carry no attributes (Apereo CAS's default; `django-bare`
        here) the service then got a bare user through bonenfant and no child could be
        pinned. bonenfant now validates early at `/p3/serviceValidate`: every mode reads
        at least what it reads directly, CAS 1/2 clients also the attributes the ENT
        released for that ticket over CAS 3, and bonenfant names the child. Each
        python-cas mode, a parent with one child: directly, then through retry."""
        trace = Trace(self.env["traces"]["django_bare"])
        uai = self.directory.children(parent)[0]["uai"]
        with PyCasService(self.ports["pycas"], self.pycas_servers(), self.ca) as service:
            for mode, endpoint in PYCAS_ENDPOINTS:
                direct = Browser(self.ca).open(service.url(uai.lower(), "djbare", mode), parent)
                trace.take(0, timeout=0)
                proxied = Browser(self.ca).open(service.url(uai.lower(), "djbarepin", mode), parent)
                events = [e for e in trace.take(1, timeout=5) if e.get("event") == "validate"]
                direct_view, proxied_view = pycas_view(direct), pycas_view(proxied)
                name = (f"django-cas2-bare: python-cas {mode} reads through bonenfant (retry) at least what it "
                        "reads directly from an ENT whose CAS 2.0 answers carry no attributes, and bonenfant names the child")
                if direct_view is None or proxied_view is None:
                    self.report.check(name, False, f"direct {describe(direct)}, through bonenfant {describe(proxied)}")
                    continue
                extra = sorted(set(proxied_view["attributes"]) - set(direct_view["attributes"]))
                for name_only in extra:
                    direct_view["attributes"][name_only] = proxied_view["attributes"][name_only]
                same, detail = compare_views(direct_view, proxied_view, multi_valued=False)
                asserted = events[0].get("uai_asserted") if len(events) == 1 else "?"
                self.report.check(
                    name,
                    same and asserted == uai,
                    f"{detail}; through bonenfant also {extra or 'nothing'}; validate event uai_asserted {asserted}",
                )

    def django_retry_verbatim(self, parent):
        """Regression (bonenfant, fixed): `--answer verbatim` (the default) promises the
        ENT's own bytes, but under --pin retry the service's validation was answered
        from bonenfant's early validation, re-serialised. A parent with one child (no
        re-login needed) logs in at the `correct` ENT directly and through retry: each
        python-cas mode must read the same, and the CAS 3 answer keep django-cas-server's
        shape (its `<cas:attribute name= value=/>` copy)."""
        uai = self.directory.children(parent)[0]["uai"]
        with PyCasService(self.ports["pycas"], self.pycas_servers(), self.ca) as service:
            for mode, _ in PYCAS_ENDPOINTS:
                direct = pycas_view(Browser(self.ca).open(service.url(uai.lower(), "djdirect", mode), parent))
                proxied = pycas_view(Browser(self.ca).open(service.url(uai.lower(), "djpinall", mode), parent))
                name = f"django-retry-verbatim: python-cas {mode} reads the same through bonenfant (retry) as directly"
                if direct is None or proxied is None:
                    self.report.check(name, False, f"direct {direct is not None}, through bonenfant {proxied is not None}")
                    continue
                self.report.check(name, *compare_views(direct, proxied, multi_valued=False))
        client = requests.Session()
        client.trust_env = False
        client.verify = self.ca
        service_url = f"http://127.0.0.1:{self.ports['pycas']}/{uai.lower()}/pronote/verbatim/parent.html"
        shapes = {}
        for route, base in (("directly", f"http://127.0.0.1:{self.ports['dj_correct']}/cas"),
                            ("through bonenfant", self.bonenfant("dj_retry_all"))):
            ticket = self.front_channel_ticket(Browser(self.ca), base, service_url, parent)
            answer = client.get(f"{base}/p3/serviceValidate", params={"service": service_url, "ticket": ticket},
                                timeout=HTTP_TIMEOUT) if ticket else None
            shapes[route] = answer is not None and "<cas:attribute name=" in answer.text
        self.report.check(
            "django-retry-verbatim: with --answer verbatim, the CAS 3 answer through "
            "retry keeps django-cas-server's shape (attributes in cas:attributes and as cas:attribute name/value)",
            shapes.get("directly") and shapes.get("through bonenfant"),
            ", ".join(f"{route}: {'A + C' if c else 'no cas:attribute copy'}" for route, c in shapes.items()),
        )

    def front_channel_ticket(self, browser, base, service, parent):
        """Logs `parent` in at `base` (bonenfant) for `service`, following redirects by hand
        (retries included) until the one to the service: returns its ticket, never shown."""
        response = browser.get(f"{base}/login", params={"service": service}, allow_redirects=False)
        for _ in range(60):
            form = LoginForm.find(response.text) if response.status_code == 200 else None
            if form is not None:
                fields = dict(form.hidden)
                fields.update(username=parent["login"], password=parent["password"])
                response = browser.session.post(
                    urllib.parse.urljoin(response.url, form.action), data=fields,
                    allow_redirects=False, timeout=HTTP_TIMEOUT,
                )
                continue
            location = response.headers.get("Location")
            if response.status_code not in (301, 302, 303, 307) or not location:
                return None
            location = urllib.parse.urljoin(response.url, location)
            if location.startswith(service + "?"):
                return urllib.parse.parse_qs(urllib.parse.urlsplit(location).query).get("ticket", [None])[0]
            response = browser.get(location, allow_redirects=False)
        return None

    def django_new_login_flag(self, families, logins=12):
        """What `isFromNewLogin` a client reads under retry (an observation, not a check):
        django-cas-server says `true` only for a ticket issued on typed credentials, and a
        pinned login's ticket comes from a silent re-login."""
        trace = Trace(self.env["traces"]["django_retry"])
        base = self.bonenfant("dj_retry")
        client = requests.Session()
        client.trust_env = False
        client.verify = self.ca
        seen = {}
        plan = [(parent, child) for parent in families for child in self.directory.children(parent)][:logins]
        for parent, child in plan:
            service = self.apache("dj_retry_sv", child["uai"])
            ticket = self.front_channel_ticket(Browser(self.ca), base, service, parent)
            if not ticket:
                continue
            answer = client.get(f"{base}/p3/serviceValidate", params={"service": service, "ticket": ticket}, timeout=HTTP_TIMEOUT)
            flag = re.search(r"<cas:isFromNewLogin>(\w+)</cas:isFromNewLogin>", answer.text)
            events = [e for e in trace.take(1, timeout=5) if e.get("event") == "validate"]
            retried = "after a re-login" if events and events[0].get("retries") else "first ticket"
            key = (retried, flag[1] if flag else None)
            seen[key] = seen.get(key, 0) + 1
        self.report.info(
            "django-replay: isFromNewLogin under retry: "
            + ", ".join(f"{where}: {flag} ×{count}" for (where, flag), count in sorted(seen.items()))
        )

    def django_replay(self, parent):
        """A ticket is answered with success once: validated twice through bonenfant, the
        second answer is a failure (observe and retry); and a ticket-shaped value that
        django-cas-server quotes in its failure answer stays out of bonenfant's trace."""
        uai = self.directory.children(parent)[0]["uai"]
        service = f"http://127.0.0.1:{self.ports['pycas']}/{uai.lower()}/pronote/replay/parent.html"
        for proxy, port in (("django_observe", "dj_observe"), ("django_retry", "dj_retry")):
            trace = Trace(self.env["traces"][proxy])
            base = self.bonenfant(port)
            browser = Browser(self.ca)
            ticket = self.front_channel_ticket(browser, base, service, parent)
            if not self.report.check(f"django-replay [{proxy}]: the login yields a ticket for the service", bool(ticket)):
                continue
            client = requests.Session()
            client.trust_env = False
            client.verify = self.ca
            answers = [
                client.get(f"{base}/p3/serviceValidate", params={"service": service, "ticket": ticket}, timeout=HTTP_TIMEOUT)
                for _ in range(2)
            ]
            events = [e for e in trace.take(2, timeout=5) if e.get("event") == "validate"]
            first_ok = "authenticationSuccess" in answers[0].text
            second_refused = "authenticationFailure" in answers[1].text and "authenticationSuccess" not in answers[1].text
            self.report.check(
                f"django-replay [{proxy}]: the first validation succeeds, the same ticket's second one is refused",
                first_ok and second_refused and len(events) == 2,
                f"first {'success' if first_ok else 'NOT a success'}, second {'refused' if second_refused else 'NOT refused'}; "
                f"{len(events)} validate events, errors {[e.get('error') for e in events]}",
            )
            # django-cas-server's SAML failure for an unknown ticket quotes it ("ticket ST-… not
            # found"): bonenfant may hand that answer on, but never log the value.
            bogus = "ST-" + "".join(random.choice(string.ascii_letters + string.digits) for _ in range(40))
            answer = client.post(
                f"{base}/samlValidate", params={"TARGET": service}, data=SAML_REQUEST.format(ticket=bogus).encode(),
                headers={"Content-Type": "text/xml"}, timeout=HTTP_TIMEOUT,
            )
            events = [e for e in trace.take(1, timeout=5) if e.get("event") == "validate"]
            with open(self.env["traces"][proxy], encoding="utf-8") as file:
                in_trace = bogus in file.read()
            self.report.check(
                f"django-replay [{proxy}]: an unknown ticket is refused over SAML, and the ticket django-cas-server "
                "quotes in its failure stays out of bonenfant's trace",
                "samlp:Success" not in answer.text and "AuthnFailed" in answer.text and not in_trace and len(events) == 1,
                f"HTTP {answer.status_code}, django's failure quotes it: {bogus in answer.text}; in the trace: {in_trace}; "
                f"{len(events)} validate events, error {events[0].get('error') if events else None}",
            )

    def django_browser(self, logins=3):
        """A parent in headless Chromium (`chromium.py`) through bonenfant (--pin retry,
        with the directory) in front of the `random` django-cas-server, at the python-cas
        service (CAS 3). The mother of four (`four_children.py`) opens the school of the
        one child there: each of at least `logins` logins lands on him, and the browser follows one
        redirect from bonenfant per login however many re-rolls it took. A parent of two
        children in one school taps one on the chooser and lands on that one. No
        Content-Security-Policy violation; screenshots in target/browser-screenshots/."""
        missing = chromium.available()
        if missing:
            if os.environ.get("CI") == "true":
                self.report.check("django-browser: headless Chromium runs", False, missing)
            else:
                self.report.info(f"django-browser: skipped, {missing}")
            return
        trace = Trace(self.env["traces"]["django_browser"])
        origin = f"https://127.0.0.1:{self.ports['dj_browser']}"
        parent = self.directory.parents[four_children.LOGIN]
        child = self.directory.children(parent)[-1]
        with PyCasService(self.ports["pycas"], self.pycas_servers(), self.ca) as service, \
                chromium.Chromium(self.env["screenshots"], "django") as browser:
            url = service.url(child["uai"].lower(), "djbrowser", "cas3")
            path = urllib.parse.urlsplit(url).path
            rerolls, misses = [], []
            # The server draws at random: go on (up to 10 logins) until one needed re-rolls.
            while len(rerolls) < logins or (not any(rerolls) and len(rerolls) < 10):
                browser.clear_cookies()
                before = browser.redirects_from(origin)
                trace.take(0, timeout=0)
                browser.goto(url)
                browser.sign_in(parent["login"], parent["password"])
                view = pycas_data_view(browser.json_page(path))
                followed = browser.redirects_from(origin) - before
                answers = [e for e in trace.take(1, timeout=5) if e.get("event") == "login_redirect"]
                retries = answers[0].get("retries") if len(answers) == 1 else None
                shown = (view["attributes"].get("FrEduVecteur") or [None])[0]
                if view["user"] != parent["login"] or shown != self.directory.vector(parent, child):
                    misses.append(f"login {len(rerolls)}: {summarize(view, parent)}, not the intended child")
                if len(answers) != 1 or answers[0].get("action") != "delivered" or followed != 1:
                    misses.append(f"login {len(rerolls)}: {len(answers)} login_redirect events "
                                  f"({[e.get('action') for e in answers]}), {followed} redirects from bonenfant")
                rerolls.append(retries or 0)
            browser.screenshot("landed")
            self.report.check(
                f"django-browser: {parent['login']} ({len(parent['children'])} children) lands in Chromium on the "
                f"child alone at {child['uai']} at every login, one redirect from bonenfant each, re-rolls or not",
                not misses and any(rerolls),
                f"re-rolls per login {rerolls}" + (f"; {misses[:2]}" if misses else ""),
            )

            sibling_parent, uai = self.directory.siblings()[0]
            meant = [c for c in self.directory.children(sibling_parent) if c["uai"] == uai][-1]
            url = service.url(uai.lower(), "djbrowser", "cas3")
            browser.clear_cookies()
            trace.take(0, timeout=0)
            browser.goto(url)
            browser.sign_in(sibling_parent["login"], sibling_parent["password"])
            browser.wait_for("form button[name=child]")
            browser.screenshot("chooser")
            browser.tap("form button[name=child]", meant["first_name"])
            view = pycas_data_view(browser.json_page(urllib.parse.urlsplit(url).path))
            events = trace.take(1, timeout=5)
            shown = (view["attributes"].get("FrEduVecteur") or [None])[0]
            pins = [e for e in events if e.get("event") == "pin_set"]
            verdicts = [e.get("verdict") for e in events if e.get("event") == "validate"]
            self.report.check(
                f"django-browser: {sibling_parent['login']} (two children at {uai}) taps one on the chooser in "
                "Chromium and lands on that child",
                view["user"] == sibling_parent["login"] and shown == self.directory.vector(sibling_parent, meant)
                and len(pins) == 1 and verdicts == ["ok"],
                f"{summarize(view, sibling_parent)}, {len(pins)} pin_set, validate verdicts {verdicts}",
            )
            violations = browser.csp_violations()
            self.report.check(
                "django-browser: no Content-Security-Policy violation in Chromium's console",
                not violations,
                "; ".join(violations[:3]) or "none",
            )

def django_retry(interop, families, logins):
    """--pin retry in front of the `random` django-cas-server: mod_auth_cas (serviceValidate,
    also 8 browsers at a time, and SAML) and python-cas (CAS 1, 2, 3 and SAML) logins all land on
    the intended child; a CASRenew service's logins succeed, none by a silent re-login."""
    where = {"trace_name": "django_retry", "tag": "django-retry"}
    interop.retry(families, logins, vhost="dj_retry_sv", **where)
    interop.retry(families, 56, workers=8, vhost="dj_retry_sv", **where)
    interop.retry(families, 14, vhost="dj_retry_saml", **where)
    interop.retry_python_cas(families, 1, route="djpin", **where)
    # Last: renew logins are observed, not pinned, so they may land on the wrong child, and
    # the next right landing of that parent at that service is then a `flip`.
    interop.retry_renew(families, 7, vhost="dj_retry_renew", **where)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("env", help="JSON file written by run.sh")
    parser.add_argument("--retry-logins", type=int, default=100)
    parser.add_argument("--django-logins", type=int, default=100, help="django-retry: mod_auth_cas logins")
    parser.add_argument("--log", help="also append every line to this file")
    parser.add_argument("--variant", default="ose:shuffled", help="shapes phase: DIALECT:PICK[:ANSWER] of the ENT and bonenfant")
    parser.add_argument(
        "--phases",
        default="baseline,observe,slo,retry,retry-concurrent,retry-query,retry-saml,retry-python-cas,retry-renew,slo-retry,rewrite",
        help="comma-separated subset to run (django-observe, django-random, django-sticky, "
        "django-retry, django-slo and django-replay need the django-cas-server run.sh starts)",
    )
    args = parser.parse_args()
    with open(args.env) as file:
        env = json.load(file)
    log = open(args.log, "a", encoding="utf-8") if args.log else None
    report = Report(log)
    interop = Interop(env, report)
    families = interop.directory.split_families()
    if not report.check("setup: the directory has parents with children in two establishments", len(families) >= 2, f"{len(families)} such parents"):
        return 1
    sample = families[:2] + interop.directory.single_child()[:1]
    phases = [
        ("baseline", lambda: interop.baseline(families)),
        ("observe", lambda: interop.observe(sample)),
        ("slo", lambda: interop.single_logout(families[0], "sv", "observe")),
        ("retry", lambda: interop.retry(families, args.retry_logins)),
        ("retry-concurrent", lambda: interop.retry(families, args.retry_logins, workers=8)),
        ("retry-query", lambda: interop.retry(families, 28, query=PRONOTE_QUERY)),
        ("retry-saml", lambda: interop.retry(families, 28, vhost="retry_saml")),
        ("retry-python-cas", lambda: interop.retry_python_cas(families, 2)),
        ("retry-renew", lambda: interop.retry_renew(families, 20)),
        ("rewrite", lambda: interop.rewrite(families, 6)),
        ("slo-retry", lambda: interop.single_logout(families[1], "retry", "retry")),
        ("shapes", lambda: interop.shapes(args.variant)),
        # django-cas-server behind bonenfant (run.sh runs them in a call of their own).
        ("django-observe", lambda: interop.django_observe(sample[2:] + families[:1])),
        ("django-canonical", lambda: interop.django_observe(
            families[:1], "django-canonical", "django_canonical", "djcanon", ("dj_canon_sv", "dj_canon_saml"), True)),
        ("django-random", lambda: interop.django_random(families[:3], 2)),
        ("django-sticky", lambda: interop.django_sticky(8)),
        ("django-retry", lambda: django_retry(interop, families, args.django_logins)),
        ("django-retry-all", lambda: interop.django_retry_all(families[5])),
        ("django-retry-verbatim", lambda: interop.django_retry_verbatim(sample[2])),
        ("django-cas2-bare", lambda: interop.django_cas2_bare(sample[2])),
        ("django-slo", lambda: (
            interop.single_logout(families[2], "dj_sv", "django_observe", "dj_observe"),
            interop.single_logout(families[3], "dj_retry_sv", "django_retry", "dj_retry"),
        )),
        ("django-replay", lambda: (interop.django_replay(families[4]), interop.django_new_login_flag(families))),
        ("django-browser", interop.django_browser),
    ]
    wanted = set(args.phases.split(","))
    for name, phase in phases:
        if name not in wanted:
            continue
        started = time.monotonic()
        try:
            phase()
        except Exception as error:  # noqa: BLE001 - a crashed phase is a failed check, the others still run
            report.check(f"{name}: ran to the end", False, f"{type(error).__name__}: {error}")
        report.info(f"{name} took {time.monotonic() - started:.1f} s")
    report.emit(f"{report.passed} passed, {len(report.failed)} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
