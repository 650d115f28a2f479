"""Turn stored bytes into a :class:`~celerytool.model.Message`.

``decode_envelope`` reads kombu's virtual-transport envelope (Redis);
``decode_payload`` reads a body with its headers and properties (AMQP, or an
envelope already opened); ``decode_any`` guesses what a pasted blob is.
Nothing here raises on bad input: the message comes back with ``error`` set.

The decoders are imported on first use, so that importing ``codecs.limits``
(every broker adapter does) stays cheap for commands that decode nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from celerytool.codecs.limits import DEFAULT_LIMITS, Limits

if TYPE_CHECKING:
    from celerytool.codecs.message import decode_any, decode_envelope, decode_payload, open_envelope

__all__ = ["decode_any", "decode_envelope", "decode_payload", "open_envelope", "Limits", "DEFAULT_LIMITS"]
_DECODERS = frozenset(__all__[:4])


def __getattr__(name: str) -> Any:
    if name in _DECODERS:
        from celerytool.codecs import message

        return getattr(message, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
