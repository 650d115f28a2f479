"""The Celery app of the Django project: ``celery -A ctdjango.tasks worker``."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ctdjango.settings")
django.setup()

from celery import Celery  # noqa: E402
from celery.signals import worker_ready  # noqa: E402

app = Celery("ctdjango")
app.config_from_object("django.conf:settings", namespace="CELERY")


class CustomError(Exception):
    pass


@worker_ready.connect
def _ready(**_):
    path = os.environ.get("CT_READY_FILE")
    if path:
        with open(path, "w") as fh:
            fh.write(str(os.getpid()))


@app.task(name="ctdjango.add")
def add(x, y):
    return x + y


@app.task(name="ctdjango.fail")
def fail(message="boom"):
    raise CustomError(message, 42)


@app.task(name="ctdjango.save_group")
def save_group(group_id, child_ids):
    from celery.result import AsyncResult, GroupResult

    GroupResult(group_id, [AsyncResult(c, app=app) for c in child_ids], app=app).save(backend=app.backend)
    return group_id
