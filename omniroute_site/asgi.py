"""ASGI entry point: Channels routes every protocol and path.

/v1, /v1beta and /api/tags go to the gateway's plain ASGI handlers (data plane); everything
else goes to Django (admin, /api, dashboard).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omniroute_site.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402

from gateway.app import application as gateway_app  # noqa: E402
from gateway.lifespan import lifespan  # noqa: E402
from omniroute_site.body_limit import BodyLimit  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": URLRouter(
            [
                re_path(r"^v1(?:beta)?(?:/|$)", gateway_app),  # type: ignore[arg-type]
                re_path(r"^api/tags/?$", gateway_app),  # type: ignore[arg-type]
                re_path(r"", BodyLimit(django_asgi_app)),  # type: ignore[arg-type]
            ]
        ),
        "lifespan": lifespan,
    }
)
