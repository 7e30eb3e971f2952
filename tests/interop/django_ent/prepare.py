"""Prepares django-cas-server's database for the interop test: `migrate`, then one
service pattern that admits every service on 127.0.0.1, releases every attribute (`*`)
and has single logout on. Run with DJANGO_SETTINGS_MODULE=settings and this folder on
the Python path (`tests/interop/run.sh` does)."""

import django
from django.core.management import call_command

django.setup()
call_command("migrate", verbosity=0, interactive=False)

from cas_server.models import ReplaceAttributName, ServicePattern  # noqa: E402 - needs django.setup()

pattern = ServicePattern.objects.create(
    pos=1,
    name="interop services",
    pattern=r"^https?://127\.0\.0\.1(:\d+)?/",
    single_log_out=True,
)
ReplaceAttributName.objects.create(name="*", service_pattern=pattern)
