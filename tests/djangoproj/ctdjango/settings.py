"""Django settings: PostgreSQL database CT_DJANGO_DB on 127.0.0.1 (or the SQLite file CT_DJANGO_SQLITE), results via django-db,
django-celery-beat's tables for its DatabaseScheduler."""

import os

SECRET_KEY = "celerytool-tests-only"
INSTALLED_APPS = ["django_celery_results", "django_celery_beat"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("CT_DJANGO_DB", "celerytool_django"),
        "USER": "postgres",
        "HOST": "127.0.0.1",
        "PORT": "5432",
    }
}
if os.environ.get("CT_DJANGO_SQLITE"):  # a file of the test's own instead
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["CT_DJANGO_SQLITE"]}}

CELERY_BROKER_URL = os.environ.get("CT_BROKER_URL", "redis://127.0.0.1:6379/15")
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_RESULT_SERIALIZER = os.environ.get("CT_RESULT_SERIALIZER", "json")
CELERY_ACCEPT_CONTENT = ["json", "pickle"]
CELERY_RESULT_ACCEPT_CONTENT = ["json", "pickle"]
CELERY_TASK_TRACK_STARTED = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
