"""Effective connection settings: command line > profile named with -P > environment >
profile from $CELERYTOOL_PROFILE or ``default`` > built-in default.

``resolve`` picks the profile (-P, $CELERYTOOL_PROFILE, else ``default``), converts
its values with the same checks as the options, and records where each setting
came from (for ``celerytool profiles``).  ``finish_url`` adds what a URL takes
from elsewhere: a profile's password, and for sentinel:// the master's name
and the sentinels' password.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

import click

from celerytool.errors import UsageError
from celerytool.kombu_layout import DEFAULT_SEP_SHOWN

if TYPE_CHECKING:
    from celerytool.profiles import Profile, ProfileFile
    from celerytool.urls import BrokerURL

DEFAULTS = {
    "broker": "redis://localhost:6379/0",
    "backend": "the broker, when it is Redis",
    "output": "table",
    "global_keyprefix": "(none)",
    "priority_steps": "0,3,6,9",
    "sep": DEFAULT_SEP_SHOWN,
    "max_size": "64M",
    "connect_timeout": "5",
    "management_url": "http://<broker host>:15672",
    "master_name": "(none)",
}


@dataclass
class Resolved:
    values: dict[str, Any]
    sources: dict[str, str]
    profile: Profile | None = None
    file: ProfileFile | None = None
    warnings: list[str] = field(default_factory=list)


def resolve(cli: dict[str, Any], types: dict[str, click.ParamType | None]) -> Resolved:
    """``types``: setting -> the click ParamType of its option (None: text), to check profile values."""
    from celerytool.profiles import SETTINGS, select

    name, named_by = cli.get("profile"), "-P/--profile"
    if not name and os.environ.get("CELERYTOOL_PROFILE"):
        name, named_by = os.environ["CELERYTOOL_PROFILE"], "$CELERYTOOL_PROFILE"
    profile, loaded = select(name, named_by)
    from_command_line = named_by == "-P/--profile" and bool(name)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, pkey, env in SETTINGS:
        if cli.get(key) is not None:
            values[key], sources[key] = cli[key], "command line"
        elif from_command_line and profile is not None and pkey in profile.values:
            # a profile named with -P is part of the command line: it beats the environment
            values[key] = _convert(profile, key, pkey, types.get(key))
            sources[key] = f"profile {profile.name!r} (-P)"
            if env and os.environ.get(env):
                sources[key] += f", over ${env}"
        elif env and os.environ.get(env):
            # the App reads these variables itself; master_name it is given
            values[key], sources[key] = (os.environ[env] if key == "master_name" else None), f"${env}"
        elif profile is not None and pkey in profile.values:
            values[key] = _convert(profile, key, pkey, types.get(key))
            sources[key] = f"profile {profile.name!r}"
        else:
            values[key], sources[key] = None, "default"
    return Resolved(values, sources, profile, loaded, list(loaded.warnings) if loaded else [])


def _convert(profile: Profile, key: str, pkey: str, kind: click.ParamType | None) -> Any:
    value = profile.values[pkey]
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    elif isinstance(value, (bool, int)) or (isinstance(value, float) and key != "connect_timeout"):
        value = str(value)
    try:
        return str(value) if kind is None else kind.convert(value, None, None)
    except click.BadParameter as exc:
        raise UsageError(f"{profile.where(pkey)}: profile {profile.name!r}: {pkey}: "
                         f"{exc.message}") from None


class _Settings(Protocol):
    """What ``finish_url`` reads of the App (options.py, which imports this module)."""

    profile: Profile | None
    sources: dict[str, str]
    master_name: str | None


def finish_url(url: BrokerURL, which: str, app: _Settings) -> BrokerURL:
    """``url`` (parsed) completed with the profile's password and the sentinel settings."""
    from celerytool.profiles import SENTINEL_PASSWORD_ENV, with_password
    from celerytool.urls import parse_url

    profile = app.profile
    if profile is not None and app.sources.get(which, "").startswith("profile"):
        password = profile.secret(which)
        if password and not url.password:
            url = parse_url(with_password(url.raw, password))
    if not url.is_sentinel:
        return url
    name = url.master_name
    if app.sources.get("master_name") == "command line" or not name:
        name = app.master_name or name
    secret = url.sentinel_password or os.environ.get(SENTINEL_PASSWORD_ENV)
    if not secret and profile is not None:
        secret = profile.secret("sentinel")
    return replace(url, master_name=name, sentinel_password=secret or None)
