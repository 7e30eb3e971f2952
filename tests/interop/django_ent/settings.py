"""Django settings of the interop test's third-party ENT: django-cas-server, as its own
README sets it up, with the test directory's parents as users (`directory_auth.py`).

Everything variable comes from the environment `tests/interop/run.sh` sets:
DJANGO_ENT_DB (the sqlite file, in the run's temp dir), DJANGO_ENT_SECRET,
DJANGO_ENT_DIRECTORY (the `bonenfant sim directory` export) and DJANGO_ENT_PICK
(`correct` or `random`, see `directory_auth.py`), and DJANGO_ENT_TRUSTED_ORIGINS. Served
by `serve.py`. Loopback only: no
outbound request (django-cas-server's new-version check is off).
"""

import os

SECRET_KEY = os.environ["DJANGO_ENT_SECRET"]
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "urls"
USE_TZ = True
TIME_ZONE = "Europe/Paris"
# The ENT's pages in French, like an ENT of the académie de Bordeaux.
LANGUAGE_CODE = "fr"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "cas_server",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["DJANGO_ENT_DB"],
        # The server answers each request in its own thread; a throw-away database need not
        # wait for the disk at every commit (about 100 ms per login's POST here).
        "OPTIONS": {"timeout": 20, "init_command": "PRAGMA synchronous=OFF; PRAGMA journal_mode=WAL;"},
    }
}
STATIC_URL = "/static/"
# A real browser's credentials POST carries `Origin: https://127.0.0.1:<bonenfant's port>`,
# which is not this server's own address: Django's CSRF check refuses it unless trusted
# (space-separated origins; a real ENT behind bonenfant has one public origin).
CSRF_TRUSTED_ORIGINS = os.environ.get("DJANGO_ENT_TRUSTED_ORIGINS", "").split()
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

CAS_AUTH_CLASS = "directory_auth.DirectoryAuthUser"
CAS_NEW_VERSION_HTML_WARNING = False
CAS_NEW_VERSION_EMAIL_WARNING = False
CAS_SHOW_POWERED = False
CAS_INFO_MESSAGES_ORDER = []
# Single-logout POSTs go to the test's services on 127.0.0.1 and must not wait long.
CAS_SLO_TIMEOUT = 5
