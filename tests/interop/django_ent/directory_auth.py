"""django-cas-server's user source for the interop test: the parents of the directory
`bonenfant sim directory` wrote, with OSE-like attributes (see `src/sim/ent.rs`, dialect
`ose`, and `tests/fixtures/cas/xml/ose-parent.xml`).

django-cas-server builds a ticket's attributes once, when it creates the ticket:
`User.get_ticket` reads the `User.attributs` property, which instantiates
`settings.CAS_AUTH_CLASS` and calls `attributs()`, and stores the result in the ticket;
validation answers from what was stored. So each call here is one ticket, and
DJANGO_ENT_PICK chooses what it asserts:

* `correct`: every child's `FrEduVecteur`, in the directory's order, and the
  `ENTPersonJointure` of the first child's record (a parent's attributes, nothing picked);
* `random`: ONE child drawn at random for each ticket, and that child's record's
  jointure: OSE's wrong-child bug, which bonenfant detects and pins.
"""

import hmac
import os
import random
import threading
import tomllib

from cas_server.auth import AuthUser

PICKS = ("correct", "random")


class Directory:
    """The directory export, loaded once per process."""

    _loaded = None
    _lock = threading.Lock()

    def __init__(self, path):
        with open(path, "rb") as file:
            data = tomllib.load(file)
        self.kinds = {e["uai"]: e["kind"] for e in data["establishments"]}
        self.pupils = {p["jointure"]: p for p in data["pupils"]}
        self.parents = {p["login"]: p for p in data["parents"]}

    @classmethod
    def get(cls):
        with cls._lock:
            if cls._loaded is None:
                cls._loaded = cls(os.environ["DJANGO_ENT_DIRECTORY"])
            return cls._loaded

    def children(self, parent):
        return [self.pupils[j] for j in parent["children"] if j in self.pupils]

    def vector(self, parent, child):
        """`profil|nom|prénom|ELEVE_ID|UAI`, as the sim's `Directory::vector` writes it:
        profil 1 for a parent of a primary-school pupil, 2 otherwise."""
        profil = 1 if self.kinds.get(child["uai"]) == "ecole" else 2
        return f"{profil}|{parent['last_name']}|{parent['first_name']}|{child['eleve_id']}|{child['uai']}"

    @staticmethod
    def record_for(parent, uai):
        return next((r for r in parent["records"] if r["uai"] == uai), None)


class DirectoryAuthUser(AuthUser):
    """`CAS_AUTH_CLASS`: a parent's login and password, and their OSE-like attributes."""

    # One draw sequence per process; the server answers requests from several threads.
    _rng = random.Random(os.environ.get("DJANGO_ENT_SEED"))
    _rng_lock = threading.Lock()

    def __init__(self, username):
        super().__init__(username)
        self.directory = Directory.get()
        self.parent = self.directory.parents.get(username)

    def test_password(self, password):
        if self.parent is None:
            return False
        return hmac.compare_digest(self.parent["password"].encode(), password.encode())

    def attributs(self):
        if self.parent is None:
            return {}
        pick = os.environ.get("DJANGO_ENT_PICK", "correct")
        if pick not in PICKS:
            raise ValueError(f"DJANGO_ENT_PICK must be one of {PICKS}, not {pick!r}")
        children = self.directory.children(self.parent)
        if pick == "random" and children:
            with self._rng_lock:
                children = [self._rng.choice(children)]
        attributes = {}
        record = self.directory.record_for(self.parent, children[0]["uai"]) if children else None
        if record is not None:
            attributes["ENTPersonJointure"] = record["jointure"]
        attributes["nom"] = self.parent["last_name"]
        attributes["prenom"] = self.parent["first_name"]
        attributes["categories"] = "National_2"
        attributes["FrEduVecteur"] = [self.directory.vector(self.parent, c) for c in children]
        return attributes
