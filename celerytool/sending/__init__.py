"""Build Celery task messages from a name and options, as ``app.send_task`` would, and publish
them (``pipeline.py``: the one send pipeline of ``send``, ``retry`` and ``beat run``)."""

from celerytool.sending.build import MessageBuilder, Sent, Template, describe
from celerytool.sending.retry import RetryPolicy, with_retry
from celerytool.sending.spec import (
           TaskSpec,
           normalize,
           parse_datetime,
           parse_value,
           spec_from_record,
)

__all__ = ["MessageBuilder", "Sent", "Template", "describe", "RetryPolicy", "with_retry", "TaskSpec",
           "normalize", "parse_datetime", "parse_value", "spec_from_record"]
