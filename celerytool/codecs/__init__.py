"""Turn stored bytes into a :class:`~celerytool.model.Message`.

``decode_envelope`` reads kombu's virtual-transport envelope (Redis);
``decode_payload`` reads a body with its headers and properties (AMQP, or an
envelope already opened); ``decode_any`` guesses what a pasted blob is.
Nothing here raises on bad input: the message comes back with ``error`` set.
"""

from celerytool.codecs.limits import DEFAULT_LIMITS, Limits
from celerytool.codecs.message import decode_any, decode_envelope, decode_payload, open_envelope

__all__ = ["decode_any", "decode_envelope", "decode_payload", "open_envelope", "Limits", "DEFAULT_LIMITS"]
