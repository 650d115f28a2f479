"""A minimal Django project whose Celery results go to django-celery-results (tests only)."""
