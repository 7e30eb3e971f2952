#!/usr/bin/env python3
"""phpCAS interop checks: a scripted browser logging parents in to a phpCAS service
(`service.php` under `php -S`) through bonenfant in front of the sim ENT.

Started by `tests/interop/phpcas.sh`, which installs phpCAS, starts the sim ENT (random
pick: the wrong-child bug), bonenfant (`--pin observe` and `--pin retry`, https with a
test CA) and the PHP service, then runs this script with the path of a JSON file saying
where everything listens. Prints one line per check, `PASS name (detail)` or
`FAIL name (detail)`, and exits non-zero when any check failed.

It never prints a ticket, a cookie or a password: it compares what the phpCAS page
shows (user and attributes, as JSON) with the directory, with a direct login (phpCAS
talking to the sim ENT without bonenfant) and with bonenfant's trace events.
"""

import argparse
import json
import pathlib
import re
import sys
import time
import urllib.parse

import requests

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from interop import Directory as SimDirectory  # noqa: E402
from interop import HTTP_TIMEOUT, VOLATILE, Browser, LoginForm, Report, Trace, redact  # noqa: E402  (the harness's own module)

# The phpCAS service's pages: the UAI (lower case) first, which is what bonenfant's
# `--establishment-pattern` reads; then which CAS server phpCAS talks to and how.
PAGE = "/{uai}/pronote/{route}-{mode}/{page}.html"
LOGOUT = "/{uai}/pronote/{route}-{mode}/logout"
# phpCAS's protocols and the CAS endpoint each validates at (as bonenfant's events name it).
MODES = (
    ("cas1", "validate"),
    ("cas2", "serviceValidate"),
    ("cas3", "p3/serviceValidate"),
    ("saml", "samlValidate"),
)
ENDPOINTS = dict(MODES)
# A query like Pronote's own (`?fd=1&bydlg=…`), with characters that encode differently:
# phpCAS puts the raw request URI in `service`, the re-logins must keep it byte for byte.
PRONOTE_QUERY = "?fd=1&bydlg=A6ABB224-12DD-4E31-AF8F-1AF1B4D1B3A8&q=a%2Bb+c%20d&e=%C3%A9"


# Report is interop.py's.
class Directory(SimDirectory):
    """The sim ENT's directory (interop.py's reader): what each parent's assertion may
    say, as phpCAS shows it."""

    def by_login(self):
        return sorted(self.parents.values(), key=lambda p: p["login"])

    def siblings_together(self):
        """Parents with two or more children in one establishment (intent ambiguous)."""
        return [
            p for p in self.by_login()
            if len(self.children(p)) >= 2 and len({c["uai"] for c in self.children(p)}) == 1
        ]

    def single_child(self):
        return [p for p in self.by_login() if len(self.children(p)) == 1]

    def check_view(self, view, parent, mode):
        """What phpCAS shows against the directory. phpCAS gives a single value as a
        string and several as a list; CAS 1.0 carries no attributes. Returns (problems,
        designated child or None)."""
        problems = []
        if view.get("user") != parent["login"]:
            problems.append("user is not the parent's login")
        if mode == "cas1":
            if view["attributes"]:
                problems.append(f"attributes over CAS 1.0: {sorted(view['attributes'])}")
            return problems, None
        attributes = {name.upper(): as_list(values) for name, values in view["attributes"].items()}
        for name, want in (("NOM", parent["last_name"]), ("PRENOM", parent["first_name"]), ("CATEGORIES", "National_2")):
            if attributes.get(name) != [want]:
                problems.append(f"{name.lower()} is {attributes.get(name)!r}, expected {[want]!r}")
        vectors = attributes.get("FREDUVECTEUR") or []
        known = {self.vector(parent, child): child for child in self.children(parent)}
        if not vectors:
            return problems + ["no FrEduVecteur value"], None
        unknown = [v for v in vectors if v not in known]
        if unknown:
            return problems + [f"FrEduVecteur values not the parent's children's: {unknown!r}"], None
        designated = known[vectors[0]]
        record = next((r for r in parent["records"] if r["uai"] == designated["uai"]), None)
        want_jointure = [record["jointure"]] if record else None
        if attributes.get("ENTPERSONJOINTURE") != want_jointure:
            problems.append(
                f"ENTPersonJointure is {attributes.get('ENTPERSONJOINTURE')!r}, expected {want_jointure!r}"
            )
        return problems, designated


def child_name(parent, child):
    """A child as the checks' details name it: rank among the parent's, establishment."""
    if child is None:
        return "no child shown"
    return f"child {parent['children'].index(child['jointure']) + 1} in {child['uai']}"


def uai_of(child):
    return child["uai"] if child else None


def as_list(value):
    return value if isinstance(value, list) else [value]


# LoginForm and Browser are interop.py's: one scripted browser for every interop check.
def page_view(response):
    """The phpCAS page's JSON (user, attributes), or None when phpCAS did not log in."""
    if response.status_code != 200:
        return None
    try:
        data = response.json()
    except ValueError:
        return None
    if not isinstance(data, dict) or "user" not in data or not isinstance(data.get("attributes"), dict):
        return None
    return data


def describe(response):
    """Where the browser ended, never a secret (the service's JSON error is redacted)."""
    url = urllib.parse.urlsplit(response.url)
    where = f"HTTP {response.status_code} at {url.scheme}://{url.netloc}{url.path}"
    if response.headers.get("Content-Type", "").startswith("application/json"):
        where += f": {response.text[:200].strip()}"
    return redact(where)


def path_of(url):
    """A URL's path and query, for a detail (redacted: no ticket)."""
    return redact(urllib.parse.urlsplit(url)._replace(scheme="", netloc="").geturl())


def canonical(view):
    """User and attributes, order and types kept (a string is not a one-value list); the
    value of an attribute that changes at every login (`authenticationDate`) is left out,
    its presence is not."""
    attributes = {
        name: ("<volatile>" if VOLATILE.search(name) else value) for name, value in view["attributes"].items()
    }
    return json.dumps({"user": view["user"], "attributes": attributes}, ensure_ascii=False)


# Trace is interop.py's too.
def count(values):
    counts = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


class PhpCasInterop:
    def __init__(self, env, report):
        self.env = env
        self.report = report
        self.directory = Directory(env["directory"])
        self.ca = env["ca"]
        self.service = env["service"]
        self.traces = {name: Trace(path) for name, path in env["traces"].items()}

    def url(self, uai, route, mode, query="", page="parent"):
        return self.service + PAGE.format(uai=uai.lower(), route=route, mode=mode, page=page) + query

    def login(self, route, mode, parent, uai, query="", page="parent", browser=None, max_forms=1):
        """A browser (a fresh one by default) logs `parent` in to the service of `uai`:
        (response, view, problems against the directory, designated child or None)."""
        browser = browser or Browser(self.ca)
        response = browser.open(self.url(uai, route, mode, query, page), parent, max_forms)
        view = page_view(response)
        if view is None:
            return response, None, [describe(response)], None
        problems, designated = self.directory.check_view(view, parent, mode)
        return response, view, problems, designated

    def event_problems(self, events, endpoint, uai, designated, pin="none"):
        """What is wrong with the validate events of one login through bonenfant:
        `designated` is the UAI the event must name (None: no child known, and then the
        verdict must be `unresolved`)."""
        validates = [e for e in events if e.get("event") == "validate"]
        if len(validates) != 1:
            return [f"{len(validates)} validate events, expected 1"], None
        event = validates[0]
        problems = []
        if event.get("endpoint") != endpoint:
            problems.append(f"endpoint {event.get('endpoint')!r}, expected {endpoint!r}")
        if event.get("uai_expected") != uai:
            problems.append(f"uai_expected {event.get('uai_expected')!r}, expected {uai!r}")
        if event.get("uai_asserted") != designated:
            problems.append(f"uai_asserted {event.get('uai_asserted')!r}, the page shows {designated!r}")
        if designated is None:
            if event.get("verdict") != "unresolved":
                problems.append(f"verdict {event.get('verdict')!r} with no child to read")
        elif (event.get("verdict") == "wrong_establishment") != (designated != uai):
            problems.append(f"verdict {event.get('verdict')!r} for a page showing a child in {designated}")
        if pin is not None and event.get("pin") != pin:
            problems.append(f"pin {event.get('pin')!r}, expected {pin!r}")
        if event.get("error") is not None:
            problems.append(f"error {event.get('error')!r}")
        return problems, event

    # --- checks ---

    def baseline(self):
        """phpCAS against the sim ENT without bonenfant: a later failure is bonenfant's."""
        parent = self.directory.split_families()[0]
        uai = self.directory.children(parent)[0]["uai"]
        for mode, _ in MODES:
            _, view, problems, designated = self.login("direct", mode, parent, uai)
            self.report.check(
                f"baseline: phpCAS {mode}, sim ENT direct (http), {parent['login']} → {uai}",
                view is not None and not problems,
                "; ".join(problems)
                or ("user as the directory says (CAS 1.0: no attributes)" if mode == "cas1"
                    else f"user and attributes as the directory says, {child_name(parent, designated)}"),
            )

    def untrusted(self):
        """phpCAS really verifies bonenfant's certificate: trusting another CA than the
        one that signed it, the validation fails (and the ENT's answer never shows)."""
        parent = self.directory.split_families()[0]
        uai = self.directory.children(parent)[0]["uai"]
        for mode, _ in MODES:
            response = Browser(self.ca).open(self.url(uai, "untrusted", mode), parent)
            self.report.check(
                f"tls: phpCAS {mode} refuses bonenfant's certificate when it trusts another CA",
                page_view(response) is None and response.status_code == 502,
                describe(response),
            )

    def observe(self, parents_per_kind=2, max_pairs=10):
        """(a) phpCAS reads through bonenfant (observe) exactly what it reads directly, and
        (b) each validation through bonenfant gives one validate event agreeing with the page.

        The ENT picks a child at random per ticket, so direct and proxied logins are
        paired until both landed on the same child; those two pages must be identical
        (user, attribute names, order, values, string-or-list types)."""
        trace = self.traces["observe"]
        families = self.directory.split_families()[:parents_per_kind]
        parents = families + self.directory.siblings_together()[:1] + self.directory.single_child()[:1]
        for mode, endpoint in MODES:
            verdicts = []
            event_misses = []
            for parent in parents:
                uais = list(dict.fromkeys(child["uai"] for child in self.directory.children(parent)))
                for uai in uais[:2]:
                    name = f"observe: phpCAS {mode} reads the same through bonenfant as directly, {parent['login']} → {uai}"
                    direct, proxied, problems = {}, {}, []
                    for _ in range(max_pairs):
                        _, view, found, designated = self.login("direct", mode, parent, uai)
                        if view is None or found:
                            problems.append("direct: " + "; ".join(found))
                            break
                        direct.setdefault(child_name(parent, designated), view)
                        trace.take(0, timeout=0)
                        _, view, found, designated = self.login("observe", mode, parent, uai)
                        if view is None or found:
                            problems.append("through bonenfant: " + "; ".join(found))
                            trace.take(1, timeout=2)
                            break
                        proxied.setdefault(child_name(parent, designated), view)
                        # Over CAS 1.0 bonenfant reads no child either: `unresolved`.
                        wrong, event = self.event_problems(trace.take(1), endpoint, uai, uai_of(designated))
                        if event is not None:
                            verdicts.append(event.get("verdict"))
                        if wrong:
                            event_misses.append(f"{parent['login']} → {uai}: " + "; ".join(wrong))
                        if set(direct) & set(proxied):
                            break
                    common = sorted(set(direct) & set(proxied))
                    if not problems and not common:
                        problems.append(f"no common child in {max_pairs} pairs of logins")
                    for child in common:
                        if canonical(direct[child]) != canonical(proxied[child]):
                            problems.append(
                                f"{child}: direct {sorted(direct[child]['attributes'])}, "
                                f"through bonenfant {sorted(proxied[child]['attributes'])} (or values differ)"
                            )
                    self.report.check(
                        name,
                        not problems,
                        "; ".join(problems)
                        or f"identical pages ({', '.join(common)}; "
                        + (f"attributes {', '.join(self.attribute_names(direct))})" if self.attribute_names(direct)
                           else "no attributes)"),
                    )
            # The pairs above may all have landed right (a few logins, each 1 in 2): more
            # logins of a parent with children in two schools until one lands wrong.
            parent = families[0]
            uai = self.directory.children(parent)[0]["uai"]
            for _ in range(0 if mode == "cas1" else 30):
                if "wrong_establishment" in verdicts:
                    break
                trace.take(0, timeout=0)
                _, view, found, designated = self.login("observe", mode, parent, uai)
                if view is None or found:
                    event_misses.append(f"{parent['login']} → {uai}: " + "; ".join(found))
                    break
                wrong, event = self.event_problems(trace.take(1), endpoint, uai, uai_of(designated))
                if event is not None:
                    verdicts.append(event.get("verdict"))
                if wrong:
                    event_misses.append(f"{parent['login']} → {uai}: " + "; ".join(wrong))
            self.report.check(
                f"observe: phpCAS {mode}: one validate event ({endpoint}) per login through bonenfant, "
                + ("verdict unresolved (CAS 1.0 carries no child)" if mode == "cas1" else
                   "naming the child the page shows, wrong_establishment exactly when it is not the service's"),
                not event_misses and len(verdicts) > 0,
                f"{len(verdicts)} logins, verdicts {count(verdicts)}"
                + (f"; {len(event_misses)} off, first: {event_misses[0]}" if event_misses else ""),
            )
            if mode != "cas1":
                self.report.check(
                    f"observe: phpCAS {mode}: the ENT's random pick was seen (some wrong_establishment verdicts)",
                    "wrong_establishment" in verdicts,
                    f"verdicts {count(verdicts)}",
                )

    @staticmethod
    def attribute_names(views):
        return sorted({name for view in views.values() for name in view["attributes"]})

    def retry(self, mode, logins, query="", tag="retry"):
        """(c) --pin retry: every login of a parent with children in two establishments
        lands on the child of the service's establishment, or bonenfant's trace says the
        retry gave up for it; one validate event per login, naming that child. Over
        CAS 1.0 the page shows no child: bonenfant's event (it knows the child from its
        own early validation of the ticket) must name the intended one."""
        trace = self.traces["retry"]
        endpoint = ENDPOINTS[mode]
        plan = []
        families = self.directory.split_families()
        while len(plan) < logins:
            plan.extend((parent, child) for parent in families for child in self.directory.children(parent))
        plan = plan[:logins]
        landed, gave_up, misses, event_misses = 0, 0, [], []
        pins, retries_seen = [], 0
        started = time.monotonic()
        trace.take(0, timeout=0)
        for parent, child in plan:
            uai = child["uai"]
            _, view, problems, designated = self.login("retry", mode, parent, uai, query)
            events = trace.take(1)
            retries_seen += sum(1 for e in events if e.get("event") == "retry")
            gave = any(e.get("event") == "retry_gave_up" for e in events)
            where = f"{parent['login']} → {uai}"
            if view is None or problems:
                misses.append(f"{where}: " + "; ".join(problems))
                continue
            shown = as_list(view["attributes"].get("FrEduVecteur", []))
            if mode == "cas1":
                event = next((e for e in events if e.get("event") == "validate"), {})
                designated = child if event.get("uai_asserted") == uai else None
                shown = [self.directory.vector(parent, child)]
            if designated == child and shown == [self.directory.vector(parent, child)]:
                landed += 1
            elif gave:
                gave_up += 1
            else:
                misses.append(f"{where}: landed on {child_name(parent, designated)}, no retry_gave_up in the trace")
            asserted = uai_of(designated) if mode != "cas1" or not gave else None
            wrong, event = self.event_problems(events, endpoint, uai, asserted, pin=None)
            if event is not None:
                pins.append(event.get("pin"))
                if event.get("pin") not in ("none", "retry", "gave_up"):
                    wrong.append(f"pin {event.get('pin')!r}")
                if event.get("pin") != "gave_up" and event.get("verdict") not in ("ok", "flip"):
                    wrong.append(f"verdict {event.get('verdict')!r}")
            if wrong:
                event_misses.append(f"{where}: " + "; ".join(wrong))
        elapsed = time.monotonic() - started
        label = f"{tag}: phpCAS {mode}, {logins} logins" + (f" (service with query {query})" if query else "")
        self.report.check(
            f"{label} of parents with children in two establishments land on the intended child "
            "(or the trace says the retry gave up)",
            not misses,
            f"{landed} landed, {gave_up} gave up, in {elapsed:.1f} s"
            + (f"; {len(misses)} misses, first: {misses[0]}" if misses else ""),
        )
        self.report.check(
            f"{label}: one validate event ({endpoint}) per login, naming "
            + ("the intended child (known from bonenfant's early validation)" if mode == "cas1" else "the child the page shows"),
            not event_misses,
            f"pin {count(pins)}" + (f"; {len(event_misses)} off, first: {event_misses[0]}" if event_misses else ""),
        )
        return retries_seen, count(pins).get("retry", 0)

    def back_channel(self, logins):
        """Back channel only (`docs/domain.md`, "Deployments"): the browser logs in at
        the ENT itself, phpCAS validates through bonenfant (`--pin retry`). bonenfant
        sees no front channel, so it cannot pin: the login passes as the ENT answered
        (pin none, no browser session), and the event still names the child the page
        shows."""
        trace = self.traces["retry"]
        ent = urllib.parse.urlsplit(self.env["ent"])
        plan = [(p, c) for p in self.directory.split_families() for c in self.directory.children(p)]
        plan = (plan * (logins // len(plan) + 1))[:logins]
        for mode, endpoint in MODES:
            problems, verdicts = [], []
            trace.take(0, timeout=0)
            for parent, child in plan:
                uai = child["uai"]
                where = f"{parent['login']} → {uai}"
                browser = Browser(self.ca)
                response, view, found, designated = self.login("backchannel", mode, parent, uai, browser=browser)
                events = trace.take(1)
                if view is None or found:
                    problems.append(f"{where}: " + "; ".join(found))
                    continue
                logins_seen = [r for r in response.history if urllib.parse.urlsplit(r.url).path == "/cas/login"]
                if not logins_seen or any(urllib.parse.urlsplit(r.url).netloc != ent.netloc for r in logins_seen):
                    problems.append(f"{where}: the browser did not log in at the ENT itself")
                wrong, event = self.event_problems(events, endpoint, uai, uai_of(designated))
                if event is not None:
                    verdicts.append(event.get("verdict"))
                    if event.get("session") is not None:
                        wrong.append("a browser session named without a front channel")
                if wrong:
                    problems.append(f"{where}: " + "; ".join(wrong))
            self.report.check(
                f"back channel only [retry]: phpCAS {mode}, {len(plan)} logins at the ENT validated through "
                "bonenfant: as the ENT answered (pin none), one event each agreeing with the page",
                not problems,
                f"verdicts {count(verdicts)}" + (f"; {len(problems)} off, first: {problems[0]}" if problems else ""),
            )

    def renew(self, route, logins):
        """A service that demands fresh credentials (phpCAS::renewAuthentication():
        renew=true on /login and on validation) must log in with the password typed,
        never through a silent re-login: bonenfant only observes such logins (pin none),
        even under retry, whether or not the browser already has an SSO session."""
        trace = self.traces[route]
        plan = [(parent, child) for parent in self.directory.split_families() for child in self.directory.children(parent)]
        plan = (plan * (logins // len(plan) + 1))[:logins]
        problems = []
        pins = []
        for index, (parent, child) in enumerate(plan):
            uai = child["uai"]
            where = f"{parent['login']} → {uai}"
            browser = Browser(self.ca)
            forms = 1
            if index % 2:
                # An SSO session first: the renew login must still ask for the password.
                _, view, found, _ = self.login(route, "saml", parent, uai, browser=browser)
                if view is None or found:
                    problems.append(f"{where}: first login: " + "; ".join(found))
                    continue
                forms = 2
            trace.take(1 if index % 2 else 0, timeout=5 if index % 2 else 0)
            _, view, found, designated = self.login(route, "cas3", parent, uai, page="renew", browser=browser, max_forms=5)
            if view is None or found:
                problems.append(f"{where}: " + "; ".join(found))
                trace.take(1, timeout=2)
                continue
            if browser.forms_filled != forms:
                problems.append(f"{where}: {browser.forms_filled} login forms filled in, expected {forms}")
            wrong, event = self.event_problems(trace.take(1), ENDPOINTS["cas3"], uai, uai_of(designated))
            if event is not None:
                pins.append(event.get("pin"))
            if wrong:
                problems.append(f"{where}: " + "; ".join(wrong))
        self.report.check(
            f"renew [{route}]: {logins} phpCAS renewAuthentication() logins (half after an SSO login) "
            "ask for the password, succeed, and are observed, not retried",
            not problems,
            f"pin {count(pins)}" + (f"; {len(problems)} off, first: {problems[0]}" if problems else ""),
        )

    def gateway(self, route, logins):
        """phpCAS::checkAuthentication() (gateway=true): without an SSO session the
        browser comes back unauthenticated and no password is asked; with one (a login to
        another service first), the silent gateway login lands on the intended child
        under retry, one validate event each."""
        trace = self.traces[route]
        families = self.directory.split_families()
        parent = families[0]
        uai = self.directory.children(parent)[0]["uai"]
        browser = Browser(self.ca)
        response = browser.open(self.url(uai, route, "cas3", page="gateway"), parent, max_forms=0)
        view = page_view(response)
        self.report.check(
            f"gateway [{route}]: without an SSO session, phpCAS checkAuthentication() comes back "
            "unauthenticated, no password asked",
            view is not None and view.get("user") is None and LoginForm.find(response.text) is None,
            describe(response),
        )
        plan = [(p, c) for p in families for c in self.directory.children(p)]
        plan = (plan * (logins // len(plan) + 1))[:logins]
        problems, pins = [], []
        for parent, child in plan:
            uai = child["uai"]
            where = f"{parent['login']} → {uai}"
            browser = Browser(self.ca)
            _, view, found, _ = self.login(route, "saml", parent, uai, browser=browser)
            trace.take(1, timeout=5)
            if view is None or found:
                problems.append(f"{where}: first login: " + "; ".join(found))
                continue
            _, view, found, designated = self.login(route, "cas3", parent, uai, page="gateway", browser=browser, max_forms=0)
            events = trace.take(1)
            if view is None or found:
                problems.append(f"{where}: gateway login: " + "; ".join(found))
                continue
            if designated != child and not any(e.get("event") == "retry_gave_up" for e in events):
                problems.append(f"{where}: landed on {child_name(parent, designated)}")
            wrong, event = self.event_problems(events, ENDPOINTS["cas3"], uai, uai_of(designated), pin=None)
            if event is not None:
                pins.append(event.get("pin"))
            if wrong:
                problems.append(f"{where}: " + "; ".join(wrong))
        self.report.check(
            f"gateway [{route}]: {logins} silent phpCAS checkAuthentication() logins after an SSO login "
            "land on the intended child, one validate event each",
            not problems,
            f"pin {count(pins)}" + (f"; {len(problems)} off, first: {problems[0]}" if problems else ""),
        )

    def replay(self, route, baseline=None):
        """A ticket is answered with success at most once: the service URL with the
        ticket a browser just used, opened again in a fresh browser (phpCAS, with no
        session there, validates the same ticket a second time), is refused. Through
        bonenfant, the validation is logged with an error, and phpCAS reads the refusal
        as it reads the ENT's own (`baseline`: phpCAS's failure per mode, direct).
        Returns phpCAS's failure per mode. The ticket is never printed."""
        tag = f"replay [{route}]"
        trace = self.traces.get(route)
        parent = self.directory.split_families()[1]
        uai = self.directory.children(parent)[0]["uai"]
        failures = {}
        for mode, endpoint in MODES:
            if trace:
                trace.take(0, timeout=0)
            response = Browser(self.ca).open(self.url(uai, route, mode), parent)
            if trace:
                trace.take(1)
            ticket_url = next(
                (r.headers["Location"] for r in response.history if "ticket=" in r.headers.get("Location", "")), None
            )
            if page_view(response) is None or ticket_url is None:
                self.report.check(f"{tag}: phpCAS {mode} logged in", False, describe(response))
                continue
            again = Browser(self.ca).get(ticket_url)
            refused = page_view(again) is None
            try:
                # The CAS error code counts, not its free text (bonenfant says "ticket
                # already presented" where the ENT says "ticket not recognized").
                failures[mode] = re.sub(r"CAS error: .*", "CAS error", str(again.json().get("error")))
            except ValueError:
                failures[mode] = None
            problems = [] if refused else ["the second validation succeeded"]
            if trace:
                events = [e for e in trace.take(1, timeout=5) if e.get("event") == "validate"]
                if not (len(events) == 1 and events[0].get("error") is not None and events[0].get("endpoint") == endpoint):
                    problems.append(f"validate events {[(e.get('verdict'), e.get('error')) for e in events]}")
            if baseline is not None and failures[mode] != baseline.get(mode):
                problems.append(f"phpCAS reads {failures[mode]!r}, directly from the ENT {baseline.get(mode)!r}")
            self.report.check(
                f"{tag}: phpCAS {mode}: the same ticket validated again is refused"
                + (", bonenfant logs the error, phpCAS reads the refusal as the ENT's own" if trace else ""),
                not problems,
                "; ".join(problems) or f"{describe(again)}"
                + (f"; validate event error {events[0].get('error')}" if trace else ""),
            )
        return failures

    def gateway_relogin(self, route, attempts=30):
        """Regression (bonenfant, fixed): a gateway login (`gateway=true`: the CAS must
        never ask for credentials) that bonenfant retried was sent back to
        `/login?service=…` without `gateway=true`; if the ENT's SSO session had ended in
        between, the parent got the login form the service did not ask for, where the
        ENT alone would have sent the browser back to the service without a ticket.
        Steps, redirects followed by hand: an SSO login; the gateway page until bonenfant
        answers its login with a re-login; the ENT's /cas/logout; then that re-login. Since
        re-rolls are server-side the browser sees such a re-login only when the ENT's
        /login does not answer with a ticket; otherwise the check is that gateway logins
        were re-rolled at the ENT."""
        tag = f"gateway-relogin [{route}]"
        trace = self.traces[route]
        parent = self.directory.split_families()[0]
        uai = self.directory.children(parent)[0]["uai"]
        bonenfant = urllib.parse.urlsplit(self.env["bonenfant"][route])
        rerolled = 0
        for _ in range(attempts):
            browser = Browser(self.ca)
            _, view, found, _ = self.login(route, "saml", parent, uai, browser=browser)
            if view is None or found:
                self.report.check(f"{tag}: SSO login", False, "; ".join(found))
                return
            trace.take(1, timeout=5)
            first = browser.get(self.url(uai, route, "cas3", page="gateway"), allow_redirects=False)
            login = first.headers.get("Location", "")
            if "gateway=true" not in login:
                self.report.check(f"{tag}: phpCAS sends gateway=true", False, describe(first))
                return
            answer = browser.get(login, allow_redirects=False)
            relogin = urllib.parse.urljoin(login, answer.headers.get("Location", ""))
            at = urllib.parse.urlsplit(relogin)
            if at.netloc != bonenfant.netloc or at.path != "/cas/login":
                # Either the first ticket was the right child, or bonenfant re-rolled at
                # the ENT itself (server-side) and the browser saw one redirect.
                rerolled += sum(1 for e in trace.take(0, timeout=1) if e.get("event") == "retry")
                continue
            retry = [e for e in trace.take(0, timeout=1) if e.get("event") == "retry"]
            logout = browser.get(f"{self.env['bonenfant'][route]}/logout")
            final = browser.get(relogin)
            form = LoginForm.find(final.text) is not None
            keeps = "gateway=true" in at.query
            self.report.info(
                f"{tag}: GET {path_of(login)} → HTTP {answer.status_code} Location {path_of(relogin)}; "
                f"trace {[{k: e.get(k) for k in ('event', 'attempt', 'verdict', 'uai_expected', 'uai_asserted')} for e in retry]}; "
                f"GET /cas/logout → HTTP {logout.status_code}; GET {path_of(relogin)} → HTTP {final.status_code}"
                + (" (the ENT's login form)" if form else "")
            )
            self.report.check(
                f"{tag}: the re-login of a gateway login keeps gateway=true, "
                "so an ended SSO session sends the parent back to the service, not to a login form",
                keeps and not form,
                f"re-login query keeps gateway=true: {keeps}; after the SSO session ended the browser "
                f"{'got the ENT login form' if form else 'ended at ' + describe(final)}",
            )
            return
        # Re-rolls are server-side now: the browser never sees a re-login while the ENT
        # answers /login with a ticket. Its query (gateway=true kept) is the unit test
        # retry::tests::retry_relogin_keeps_gateway_and_the_ents_own_parameters.
        self.report.check(
            f"{tag}: gateway logins that needed another ticket were re-rolled at the ENT, one redirect for the browser",
            rerolled > 0,
            f"{rerolled} server-side re-rolls in {attempts} gateway logins",
        )

    def single_logout(self, route):
        """(e) One browser logs in to four phpCAS services (one per protocol) through
        bonenfant; logging out of one (phpCAS::logout → bonenfant's /cas/logout) makes
        the ENT POST a logoutRequest to each, which phpCAS::handleLogoutRequests turns
        into the end of each session: the next visit asks for the password again."""
        tag = f"slo [{route}]"
        trace = self.traces[route]
        parent = self.directory.split_families()[-1]
        uai = self.directory.children(parent)[0]["uai"]
        browser = Browser(self.ca)
        pages = {mode: self.url(uai, route, mode) for mode, _ in MODES}
        for mode, url in pages.items():
            response = browser.open(url, parent)
            view = page_view(response)
            if view is None or view.get("user") != parent["login"]:
                self.report.check(f"{tag}: {parent['login']} logged in to the {mode} service", False, describe(response))
                return
        self.report.check(
            f"{tag}: {parent['login']} logged in to the {', '.join(pages)} services, the password typed once",
            browser.forms_filled == 1,
            f"{browser.forms_filled} login forms filled in",
        )
        kept = {mode: browser.get(url, allow_redirects=False).status_code for mode, url in pages.items()}
        self.report.check(
            f"{tag}: every service keeps its session before logout",
            all(status == 200 for status in kept.values()),
            f"HTTP {kept}",
        )
        trace.take(0, timeout=0)
        slo_before = self.slo_lines()
        logout = browser.get(self.service + LOGOUT.format(uai=uai.lower(), route=route, mode="cas3"))
        bonenfant = urllib.parse.urlsplit(self.env["bonenfant"][route])
        at = urllib.parse.urlsplit(logout.url)
        self.report.check(
            f"{tag}: phpCAS::logout() sends the browser to the ENT's /cas/logout through bonenfant",
            logout.status_code == 200 and at.netloc == bonenfant.netloc and at.path == "/cas/logout"
            and "déconnecté" in logout.text,
            describe(logout),
        )
        delivered = self.slo_lines()[len(slo_before):]
        # One logoutRequest per ticket the ENT issued in this SSO session: under retry,
        # the refused tickets' too (phpCAS has no session for those, nothing happens).
        want = sorted(f"{route} {mode} ticket" for mode, _ in MODES)
        self.report.check(
            f"{tag}: the ENT's logoutRequest reached every phpCAS service (handleLogoutRequests)",
            sorted(set(delivered)) == want,
            f"single-logout callbacks: {count(delivered)}",
        )
        gone = {}
        for mode, url in pages.items():
            again = browser.get(url, allow_redirects=False)
            location = urllib.parse.urlsplit(again.headers.get("Location", ""))
            gone[mode] = again.status_code == 302 and location.netloc == bonenfant.netloc and location.path == "/cas/login"
        self.report.check(
            f"{tag}: every phpCAS session is gone (sent back to the CAS login)",
            all(gone.values()),
            f"sent to the CAS login: {gone}",
        )
        form = LoginForm.find(browser.get(pages["saml"]).text)
        self.report.check(f"{tag}: the next visit asks for the password again", form is not None)
        kinds = [e.get("kind") for e in trace.take(0, timeout=1) if e.get("event") == "logout"]
        self.report.check(f"{tag}: bonenfant logged the browser logout", "browser" in kinds, f"logout events {kinds}")

    def slo_lines(self):
        try:
            with open(self.env["slo_log"], encoding="utf-8") as file:
                return file.read().splitlines()
        except FileNotFoundError:
            return []


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("env", help="JSON file written by tests/interop/phpcas.sh")
    parser.add_argument("--log", required=True, help="append every PASS/FAIL/INFO line here")
    parser.add_argument("--retry-logins", type=int, default=30)
    args = parser.parse_args()
    with open(args.env, encoding="utf-8") as file:
        env = json.load(file)
    with open(args.log, "a", encoding="utf-8") as log:
        report = Report(log)
        interop = PhpCasInterop(env, report)
        report.info(f"phpCAS {env['phpcas_version']} on PHP {env['php_version']}")
        interop.baseline()
        interop.untrusted()
        interop.observe()
        interop.single_logout("observe")
        direct_refusals = interop.replay("direct")
        interop.replay("observe", direct_refusals)
        retries, pinned = interop.retry("cas3", args.retry_logins)
        more = [interop.retry(mode, max(args.retry_logins // 3, 4)) for mode in ("cas1", "cas2", "saml")]
        more.append(interop.retry("cas3", max(args.retry_logins // 5, 4), query=PRONOTE_QUERY, tag="retry-query"))
        retries += sum(r for r, _ in more)
        pinned += sum(p for _, p in more)
        report.check(
            "retry: the ENT's random pick was exercised (some logins needed a silent new login)",
            retries > 0 and pinned > 0,
            f"{retries} retry events, {pinned} validations pinned by retry",
        )
        interop.back_channel(8)
        interop.renew("retry", 10)
        interop.gateway("retry", 10)
        interop.gateway_relogin("retry")
        interop.replay("retry", direct_refusals)
        interop.single_logout("retry")
        report.emit(f"phpCAS: {report.passed} passed, {len(report.failed)} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
