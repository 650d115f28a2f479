"""celerytool: see inside and repair Celery brokers and result backends."""

__version__ = "0.1.0"
