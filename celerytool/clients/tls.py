"""The one TLS set-up: kombu/Celery-style query options of a URL -> settings and an SSLContext.

Redis (``rediss://``, ``?ssl=true``) and RabbitMQ (``amqps://``) read the same
option names, with the aliases each world uses::

    ssl_cert_reqs   CERT_NONE | CERT_OPTIONAL | CERT_REQUIRED (default)
                    (also none / optional / required, verify_none / verify_peer)
    ssl_ca_certs    CA bundle            (aliases: ca_certs, cacertfile)
    ssl_certfile    client certificate   (alias: certfile)
    ssl_keyfile     client key           (alias: keyfile)
    ssl_check_hostname  true / false     (default: true unless CERT_NONE)
    server_hostname name to verify (SNI) (alias: ssl_server_hostname)
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from celerytool.errors import UsageError
from celerytool.urls import CERT_REQS, BrokerURL

_TRUE = {"1", "true", "yes", "on"}
# every query option this module reads (a client given our SSLContext must not see them again)
TLS_QUERY = ("ssl", "ssl_cert_reqs", "cert_reqs", "verify", "ssl_check_hostname", "check_hostname",
             "ssl_ca_certs", "ca_certs", "cacertfile", "ssl_certfile", "certfile", "ssl_keyfile",
             "keyfile", "server_hostname", "ssl_server_hostname")
_LEVELS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
_CERT_REQS = {name: _LEVELS[level] for name, level in CERT_REQS.items()}  # the spellings: urls.CERT_REQS
_NAMES = {ssl.CERT_NONE: "none", ssl.CERT_OPTIONAL: "optional", ssl.CERT_REQUIRED: "required"}


@dataclass(frozen=True)
class TLSSettings:
    verify_mode: ssl.VerifyMode = ssl.CERT_REQUIRED
    check_hostname: bool = True
    ca_certs: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    server_hostname: str | None = None

    @property
    def cert_reqs_name(self) -> str:
        """``none`` / ``optional`` / ``required``, as redis-py spells it."""
        return _NAMES[self.verify_mode]


def _option(url: BrokerURL, *names: str) -> str | None:
    query = {k.lower(): v for k, v in url.query.items()}
    for name in names:
        if query.get(name):
            return query[name]
    return None


def tls_settings(url: BrokerURL) -> TLSSettings | None:
    """The TLS settings of ``url``, or None for a plain connection."""
    if not url.tls:
        return None
    reqs = _option(url, "ssl_cert_reqs", "cert_reqs", "verify")
    verify = ssl.CERT_REQUIRED
    if reqs is not None:
        if reqs.lower() not in _CERT_REQS:
            raise UsageError(f"ssl_cert_reqs={reqs!r}: use CERT_NONE, CERT_OPTIONAL or CERT_REQUIRED")
        verify = _CERT_REQS[reqs.lower()]
    check = _option(url, "ssl_check_hostname", "check_hostname")
    check_hostname = verify != ssl.CERT_NONE and (check is None or check.lower() in _TRUE)
    return TLSSettings(
        verify_mode=verify,
        check_hostname=check_hostname,
        ca_certs=_option(url, "ssl_ca_certs", "ca_certs", "cacertfile"),
        certfile=_option(url, "ssl_certfile", "certfile"),
        keyfile=_option(url, "ssl_keyfile", "keyfile"),
        server_hostname=_option(url, "server_hostname", "ssl_server_hostname") or url.host,
    )


def ssl_context(settings: TLSSettings, url: BrokerURL) -> ssl.SSLContext:
    """An SSLContext for ``settings`` (read from ``url``); a missing or bad file is a usage error."""
    try:
        context = ssl.create_default_context(cafile=settings.ca_certs)
        context.check_hostname = settings.check_hostname
        context.verify_mode = settings.verify_mode
        if settings.certfile:
            context.load_cert_chain(settings.certfile, settings.keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(url.scrub(f"bad TLS options in {url.redacted()}: {exc}")) from None
    return context
