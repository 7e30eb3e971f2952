"""django-cas-server under /cas/, as its README mounts it (bonenfant's upstream base URL)."""

from django.urls import include, path

urlpatterns = [path("cas/", include("cas_server.urls", namespace="cas_server"))]
