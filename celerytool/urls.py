"""Parse and redact broker / result-backend URLs into a typed value.

Only the standard library is used here so that ``--help`` and usage errors
stay fast and never connect anywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from celerytool.errors import UsageError

REDIS_SCHEMES = {"redis", "rediss", "redis+socket", "unix", "sentinel"}
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
    master_name: str | None = None  # sentinel://: the name the sentinels know the master by
    sentinel_password: str | None = None  # sentinel://: AUTH for the sentinels themselves

    @property
    def is_sentinel(self) -> bool:
        return self.scheme == "sentinel"

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

    def kombu_url(self, drop: tuple[str, ...] = ()) -> str:
        """The URL as kombu's ``Connection`` takes it (failover list included).

        A Sentinel URL's ``master_name`` / ``sentinel_password`` are transport
        options for kombu, not connection arguments: they are left out of the
        query (the caller passes them as ``broker_transport_options``); so are the
        query options named in ``drop`` (the caller passes them its own way).
        """
        drop = (*drop, *SENTINEL_QUERY) if self.is_sentinel else drop
        if not drop:
            return self.raw
        from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

        pieces = _FAILOVER.split(self.raw)[::2]
        out = []
        for piece in pieces:
            parts = urlsplit(piece.strip())
            query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                     if k.lower() not in drop]
            out.append(urlunsplit(parts._replace(query=urlencode(query))))
        return ";".join(out)

    def without_alternates(self) -> BrokerURL:
        return replace(self, alternates=())

    def scrub(self, text: str) -> str:
        """Remove every password this URL carries from ``text``; user names stay (``user:***@``)."""
        secrets: set[str] = set()
        for u in (self, *self.alternates):
            query_secrets = [v for k, v in u.query.items() if _SECRET_KEY.search(k)]
            for secret in (u.password, u.sentinel_password, *query_secrets):
                if secret:
                    secrets.update((secret, quote(secret, safe="")))
        return redact_text(text, sorted(secrets, key=len, reverse=True))  # "pw" must not eat into "spw"


def _redact_one(u: BrokerURL) -> str:
    return _strip_inline_password(u.raw)


# A query option whose name says it holds a secret (password=, sentinel_password=,
# ssl_keyfile_password=, sslpassword=, token=, ...): its value is masked whole.
_SECRET_KEY = re.compile(r"(?i)pass|pwd|secret|token|credential")
# key=value in a query; a value runs to the next '&key=' / ';key=', so an unencoded '&' or ';'
# inside a password stays masked.  Keys start only after ?, & or ; (linear: no run is rescanned).
_QUERY_ITEM = re.compile(r"(?<=[?&;])(?P<k>[A-Za-z0-9_.\-]+)=(?P<v>[^&;]*(?:[&;](?![A-Za-z0-9_.\-]+=)[^&;]*)*)")
_PLAIN_USER = re.compile(r"[^:/?#@\s]*")  # a user name shown as is: nothing a password could leak into
# A URL in free text: a scheme starts where no scheme character precedes it and is one run of
# them (so no run is scanned twice: linear time); the URL runs to the next whitespace.
_URL_IN_TEXT = re.compile(r"(?<![a-zA-Z0-9+.\-])[a-zA-Z0-9+.\-]+://\S*")
_FAILOVER = re.compile(r"([;,]\s*)(?=[a-zA-Z][a-zA-Z0-9+.\-]*://)")  # between the URLs of a list
_TRAILING = ":,.;)'\""  # punctuation that ends a sentence rather than the URL


def _userinfo(raw: str) -> tuple[int, int, list[tuple[int, int]]]:
    """Where the user info of ``raw`` starts and ends (end < start: none), and the spans of
    its secret-looking query values.  The user info ends at the LAST '@' that is not in a query
    password, so that an unencoded '@', '/', '?' or '#' in a password leaves no tail visible."""
    values, keys = [], []
    for m in _QUERY_ITEM.finditer(raw):
        if _SECRET_KEY.search(m["k"]) and m["v"]:
            values.append(m.span("v"))
            keys.append(m.start())
    sep = raw.find("://")
    start = sep + 3 if sep >= 0 else 0
    at = raw.rfind("@")
    for (v_start, v_end), key in zip(values, keys, strict=True):
        if v_start <= at < v_end:  # the last '@' is a query password's: user info ends before its key
            at = raw.rfind("@", start, key)
            break
    return start, at, values


def userinfo_past_host(raw: str, netloc: str) -> bool:
    """The user info of ``raw`` runs past ``netloc`` (what urlsplit took for the host): a
    password's unencoded '/', '?' or '#' ended the host early, and the rest holds part of it."""
    return _userinfo(raw)[1] > raw.find("://") + 3 + len(netloc)


def _secret_spans(raw: str) -> list[tuple[int, int]]:
    """Where the secrets of ``raw`` are: the password and every secret query value."""
    start, at, spans = _userinfo(raw)
    if at >= start:
        user, colon, _ = raw[start:at].partition(":")
        if not _PLAIN_USER.fullmatch(user):
            spans.append((start, at))  # no telling the user name from the password: mask both
        elif colon:
            spans.append((start + len(user) + 1, at))
    return spans


def _strip_inline_password(raw: str) -> str:
    merged: list[list[int]] = []
    for begin, end in sorted(_secret_spans(raw)):
        if merged and begin <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([begin, end])
    out, last = [], 0
    for begin, end in merged:
        out += [raw[last:begin], MASK]
        last = end
    out.append(raw[last:])
    return "".join(out)


def _is_user_name(m: re.Match[str]) -> bool:
    return m.string[max(m.start() - 3, 0):m.start()] == "://" and m.string[m.end():m.end() + 1] in (":", "@")


def _mask(text: str, secrets: list[str]) -> str:
    """Mask every occurrence of ``secrets`` but a user name (``scheme://NAME:``), longest
    first so that "pw" does not eat into "spw"."""
    for secret in secrets:
        text = re.sub(re.escape(secret), lambda m: m.group() if _is_user_name(m) else MASK, text)
    return text


def redact_text(text: str, secrets: list[str] | None = None) -> str:
    """Mask the passwords of every URL inside free text (error messages), as ``user:***@``;
    also every occurrence of ``secrets`` outside the user names."""
    text = _mask(text, secrets or [])

    def one(m: re.Match[str]) -> str:
        token = m.group()
        end = max(len(token.rstrip(_TRAILING)), token.find("://") + 4)
        pieces = _FAILOVER.split(token[:end])  # each URL of a failover list masked on its own
        return "".join(_strip_inline_password(p) if i % 2 == 0 else p for i, p in enumerate(pieces)) + token[end:]

    return _URL_IN_TEXT.sub(one, text)


def _echo(fragment: str, shown: str) -> str:
    """``fragment`` of a URL quoted for an error message, if the masked URL shows it anyway."""
    return repr(fragment) if fragment in shown and MASK not in fragment else "what follows the host"


def _check_host(host: str, shown: str) -> None:
    # what the resolver would refuse later with a UnicodeError
    try:
        host.encode("idna")
    except UnicodeError:
        raise UsageError(f"host name in {shown!r} is not valid: each dot-separated part must be "
                         "1 to 63 characters (253 in all)") from None


SENTINEL_QUERY = ("master_name", "sentinel_password")  # celerytool's spellings, not kombu's


def parse_url(raw: str) -> BrokerURL:
    """Parse a broker or backend URL; raise UsageError (exit 2) when malformed."""
    if raw is None or not str(raw).strip():
        raise UsageError("empty broker URL")
    raw = str(raw).strip()
    pieces = [p.strip() for p in _FAILOVER.split(raw)[::2] if p.strip()]
    parsed = [_parse_single(p) for p in pieces]
    first = parsed[0]
    if any(p.kind != first.kind for p in parsed[1:]):
        raise UsageError(f"failover URLs mix broker kinds: {_strip_inline_password(raw)}")
    if any(p.is_sentinel != first.is_sentinel for p in parsed[1:]):
        raise UsageError(f"sentinel:// and other URLs mixed: {_strip_inline_password(raw)}")
    if first.is_sentinel:  # ?master_name=... may end the list, so it sits on the last piece
        query = {k: v for p in parsed for k, v in p.query.items()}
        named: dict[str, Any] = {k: next((getattr(p, k) for p in parsed if getattr(p, k)), None)
                                 for k in ("master_name", "sentinel_password")}
        first = replace(first, query=query, **named)
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
            "(use redis://, rediss://, redis+socket://, sentinel://, amqp://, amqps://, pyamqp://, "
            "db+postgresql://, db+mysql://, db+sqlite:/// or django-db+postgresql://)"
        )
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:  # its text can hold part of a password: never shown
        what = "the [IPv6] host is not valid" if "IPv6" in str(exc) else "the port is not a number from 0 to 65535"
        raise UsageError(f"malformed URL {shown!r}: {what} (percent-encode '@', ':', '/', '?' "
                         "and '#' in a user name or password, e.g. %40 for '@')") from None
    if any("#" in raw[begin:end] for begin, end in _userinfo(raw)[2]):
        raise UsageError(f"malformed URL {shown!r}: a '#' in a query password (percent-encode it as %23)")
    ambiguous = "@" in parts.netloc or scheme in {"redis+socket", "unix"}
    if ambiguous and userinfo_past_host(raw, parts.netloc):
        # 'u:p@ss/w@host' or 'unix://p/w@/path': a password's '/', '?' or '#' ended the host
        # early; whatever celerytool would make of the rest (host, database, vhost, socket path)
        # holds part of the password
        raise UsageError(f"malformed URL {shown!r}: an '@' after the host (percent-encode '@', ':', '/', "
                         "'?' and '#' in a user name or password, e.g. %40 for '@' and %2F for '/')")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if "password" in query and password is None:
        password = query["password"]
    host = parts.hostname or "localhost"
    _check_host(host, shown)
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
            raise UsageError(f"Redis database must be a number, not {_echo(db_text, shown)} in {shown!r}")
        db = int(db_text)
        check_redis_query(query, shown)
        sentinel = scheme == "sentinel"
        return BrokerURL(
            raw=raw,
            scheme=scheme,
            kind=kind,
            host=host,
            port=port or (26379 if sentinel else 6379),
            username=username,
            password=password,
            db=db,
            socket_path=socket_path,
            query=query,
            master_name=(query.get("master_name") or None) if sentinel else None,
            sentinel_password=(query.get("sentinel_password") or None) if sentinel else None,
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


# --- the values of a Redis URL's query options ------------------------------------------
# What Celery, kombu and redis-py read from a Redis URL's query.  Each command reads only some
# of them (and kombu's Connection fails on a value it cannot convert), so every value is checked
# here, once, for every command: a bad one is a usage error that names the option.
_NUMBERS = ("socket_timeout", "socket_connect_timeout", "connect_timeout", "heartbeat",
            "health_check_interval")
_COUNTS = ("db", "virtual_host", "max_connections")
_FLAGS = ("ssl", "ssl_check_hostname", "check_hostname", "socket_keepalive", "retry_on_timeout")
FLAG_WORDS = frozenset({"1", "0", "true", "false", "yes", "no", "on", "off"})
# ssl_cert_reqs: each spelling (kombu's, redis-py's, RabbitMQ's) -> the level it names
CERT_REQS = {"cert_none": "none", "none": "none", "verify_none": "none", "false": "none",
             "cert_optional": "optional", "optional": "optional",
             "cert_required": "required", "required": "required", "verify_peer": "required"}
CERT_REQS_NAMES = frozenset(CERT_REQS)


def check_redis_query(query: dict[str, str], shown: str) -> None:
    """Raise UsageError for the first query option whose value its reader would refuse."""
    for key, value in query.items():
        name, text = key.lower(), value.strip().lower()
        if not text:  # an empty value is no value (the default), as everywhere else
            continue
        # the value only as the masked URL shows it (never what masking hid)
        option = f"{key}={value!r}" if value in shown and MASK not in value else key
        if name in _NUMBERS:
            try:
                number = float(text)
            except ValueError:
                number = float("nan")
            if not 0 <= number < float("inf"):
                raise UsageError(f"query option {option} in {shown!r} must be a number of seconds")
        elif name in _COUNTS and not text.isdigit():
            raise UsageError(f"query option {option} in {shown!r} must be a whole number")
        elif name in _FLAGS and text not in FLAG_WORDS:
            raise UsageError(f"query option {option} in {shown!r} must be true or false")
        elif name in ("ssl_cert_reqs", "cert_reqs", "verify") and text not in CERT_REQS_NAMES:
            raise UsageError(f"query option {option} in {shown!r}: use CERT_NONE, CERT_OPTIONAL "
                             "or CERT_REQUIRED")
