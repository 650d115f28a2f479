"""Parse and redact broker / result-backend URLs into a typed value.

Only the standard library is used here so that ``--help`` and usage errors
stay fast and never connect anywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from celerytool.errors import UsageError

REDIS_SCHEMES = {"redis", "rediss", "redis+socket", "unix"}
AMQP_SCHEMES = {"amqp", "amqps", "pyamqp"}
RPC_SCHEMES = {"rpc"}
# Celery's database backend is ``db+<SQLAlchemy URL>``; ``django-db+<URL>`` is celerytool's
# own spelling for the database that django-celery-results writes to (Celery says only "django-db").
SQL_PREFIXES = {"db+": "sql", "django-db+": "django"}
MASK = "***"


@dataclass(frozen=True)
class BrokerURL:
    """One parsed URL.  ``kind`` is ``redis``, ``amqp``, ``rpc``, ``sql`` or ``django``."""

    raw: str
    scheme: str
    kind: str
    host: str = "localhost"
    port: int | None = None
    username: str | None = None
    password: str | None = None
    db: int = 0  # redis database number
    vhost: str = "/"  # amqp virtual host
    socket_path: str | None = None
    query: dict[str, str] = field(default_factory=dict)
    alternates: tuple[BrokerURL, ...] = ()  # failover hosts after this one

    @property
    def tls(self) -> bool:
        return self.scheme in {"rediss", "amqps"} or self.query.get("ssl", "").lower() in {
            "1",
            "true",
            "yes",
        }

    def redacted(self) -> str:
        """The URL as text with the password masked; safe for any output."""
        parts = [_redact_one(self)] + [_redact_one(a) for a in self.alternates]
        return ";".join(parts)

    @property
    def sqlalchemy_url(self) -> str:
        """For ``sql`` / ``django`` kinds: the database URL after ``db+`` / ``django-db+``."""
        return self.raw.split("+", 1)[1] if self.kind in ("sql", "django") else ""

    def without_alternates(self) -> BrokerURL:
        return replace(self, alternates=())

    def scrub(self, text: str) -> str:
        """Remove every password this URL carries from ``text``."""
        for u in (self, *self.alternates):
            if u.password:
                text = text.replace(u.password, MASK)
                text = text.replace(quote(u.password, safe=""), MASK)
        return text


def _redact_one(u: BrokerURL) -> str:
    return _strip_inline_password(u.raw)


_USERINFO = re.compile(r"^(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:@/]*):(?P<pw>[^@]*)@")


def _strip_inline_password(raw: str) -> str:
    raw = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", raw)
    # ?password=... in the query string
    return re.sub(r"(?i)([?&]password=)[^&]*", rf"\g<1>{MASK}", raw)


def redact_text(text: str) -> str:
    """Mask passwords of every URL found inside free text (error messages)."""
    return re.sub(
        r"([a-zA-Z][a-zA-Z0-9+.\-]*://[^:@/\s]*):([^@\s]*)@",
        rf"\1:{MASK}@",
        text,
    )


def parse_url(raw: str) -> BrokerURL:
    """Parse a broker or backend URL; raise UsageError (exit 2) when malformed."""
    if raw is None or not str(raw).strip():
        raise UsageError("empty broker URL")
    raw = str(raw).strip()
    pieces = [p.strip() for p in re.split(r"[;,]\s*(?=[a-zA-Z][a-zA-Z0-9+.\-]*://)", raw) if p.strip()]
    parsed = [_parse_single(p) for p in pieces]
    first = parsed[0]
    if any(p.kind != first.kind for p in parsed[1:]):
        raise UsageError(f"failover URLs mix broker kinds: {_strip_inline_password(raw)}")
    return replace(first, alternates=tuple(parsed[1:]))


def _parse_single(raw: str) -> BrokerURL:
    shown = _strip_inline_password(raw)
    if raw.lower() in ("django-db", "django-db://"):
        raise UsageError("give the Django database's URL as django-db+postgresql://user@host/dbname "
                         "(celerytool's spelling of CELERY_RESULT_BACKEND='django-db')")
    if "://" not in raw:
        raise UsageError(f"not a URL (expected e.g. redis://localhost:6379/0): {shown!r}")
    scheme = raw.split("://", 1)[0].lower()
    sql_kind = next((k for prefix, k in SQL_PREFIXES.items() if scheme.startswith(prefix)), None)
    if sql_kind is not None:
        if scheme.endswith("+"):
            raise UsageError(f"no database after the prefix in {shown!r} (e.g. db+postgresql://user@host/db)")
        kind = sql_kind
    elif scheme in REDIS_SCHEMES:
        kind = "redis"
    elif scheme in AMQP_SCHEMES:
        kind = "amqp"
    elif scheme in RPC_SCHEMES:
        kind = "rpc"
    else:
        raise UsageError(
            f"unsupported URL scheme {scheme!r} in {shown!r} "
            "(use redis://, rediss://, redis+socket://, amqp://, amqps://, pyamqp://, "
            "db+postgresql://, db+mysql://, db+sqlite:/// or django-db+postgresql://)"
        )
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"malformed URL {shown!r}: {exc}") from None
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if "password" in query and password is None:
        password = query["password"]
    host = parts.hostname or "localhost"
    path = unquote(parts.path or "")

    if kind == "redis":
        socket_path = None
        db = 0
        if scheme in {"redis+socket", "unix"}:
            socket_path = path or None
            if not socket_path:
                raise UsageError(f"socket URL has no path: {shown!r}")
            db_text = query.get("virtual_host", query.get("db", "0")) or "0"
        else:
            db_text = path.strip("/") or query.get("db", "0") or "0"
        if not db_text.isdigit():
            raise UsageError(f"Redis database must be a number, not {db_text!r} in {shown!r}")
        db = int(db_text)
        return BrokerURL(
            raw=raw,
            scheme=scheme,
            kind=kind,
            host=host,
            port=port or 6379,
            username=username,
            password=password,
            db=db,
            socket_path=socket_path,
            query=query,
        )
    if kind == "amqp":
        vhost = path[1:] if path.startswith("/") else path
        vhost = vhost or "/"
        return BrokerURL(
            raw=raw,
            scheme=scheme,
            kind=kind,
            host=host,
            port=port or (5671 if scheme == "amqps" else 5672),
            username=username if username is not None else "guest",
            password=password if password is not None else ("guest" if username is None else ""),
            vhost=vhost,
            query=query,
        )
    if kind in ("sql", "django"):
        return BrokerURL(raw=raw, scheme=scheme, kind=kind, host=host, port=port, username=username,
                         password=password, query=query)
    return BrokerURL(raw=raw, scheme=scheme, kind=kind, query=query)

