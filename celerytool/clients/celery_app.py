"""The one bare Celery app celerytool builds (messages, remote control, events): never the user's.

Celery's settings prefer the environment over ``Celery(broker=...)``
(``CELERY_BROKER_URL``, ``_READ_URL``, ``_WRITE_URL``, ``CELERY_RESULT_BACKEND``),
and ``CELERY_LOADER`` can make it import a config module.  So the app gets
Celery's plain ``AppLoader`` whatever the environment says, and every
connection is made from the URL celerytool was given, passed explicitly
(``app.connection_for_write(url=...)``), never from ``app.conf``.
"""

from __future__ import annotations

from typing import Any

APP_LOADER = "celery.loaders.app:AppLoader"


def bare_app(broker_url: str | None = None) -> Any:
    from celery import Celery

    return Celery("celerytool", broker=broker_url, loader=APP_LOADER, set_as_current=False)
