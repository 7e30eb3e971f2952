"""django-cas-server under /cas/, as its README mounts it (bonenfant's upstream base URL).

With DJANGO_ENT_CAS2_ATTRIBUTES=off, the CAS 2.0 `/serviceValidate` answers carry no
attributes, like Apereo CAS's CAS 2.0 view (`casServiceValidationSuccess`: attributes only
on `/p3/serviceValidate`; `docs/domain.md`, "Endpoints and parameters"); `/p3/…` and SAML
keep them."""

import os
import re

from cas_server import views
from django.urls import include, path, re_path

ATTRIBUTES = re.compile(r'\s*<cas:attributes>.*?</cas:attributes>|\s*<cas:attribute name="[^"]*" value="[^"]*"/>', re.S)


def without_attributes(view):
    """`view`, its success answers stripped of attributes (shapes A and C)."""

    def answer(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        response.content = ATTRIBUTES.sub("", response.content.decode()).encode()
        return response

    return answer


urlpatterns = []
if os.environ.get("DJANGO_ENT_CAS2_ATTRIBUTES", "on") == "off":
    urlpatterns.append(
        re_path(r"^cas/serviceValidate$", without_attributes(views.ValidateService.as_view(allow_proxy_ticket=False)))
    )
urlpatterns.append(path("cas/", include("cas_server.urls", namespace="cas_server")))
