"""celerytool profiles: the connection profiles, and where each effective setting comes from."""

from __future__ import annotations

import os
from typing import Any

import click

from celerytool.cli.app import DEFAULT_BROKER
from celerytool.cli.options import with_app


@click.command("profiles")
@with_app
def command(app):
    """List connection profiles and where each effective setting comes from.

    Profiles live in a TOML file ($CELERYTOOL_CONFIG, else
    $XDG_CONFIG_HOME/celerytool/config.toml, else ~/.config/celerytool/config.toml),
    one [profiles.NAME] table each, keys named like the long options. -P NAME
    or $CELERYTOOL_PROFILE picks one; else the profile named "default" applies.
    Precedence: command line (-b, ...) > profile named with -P > environment
    (CELERY_BROKER_URL, ...) > profile from $CELERYTOOL_PROFILE or "default"
    > built-in default; the source column says which won.
    A password can come from password_env / password_command (also
    backend_password_* and sentinel_password_*) instead of the file.
    Passwords are shown as ***.

    \b
    Example config.toml:
      [profiles.prod]
      broker = "sentinel://10.0.0.5:26379/0;sentinel://10.0.0.6:26379/0"
      master_name = "mymaster"
      password_command = "pass show celery/prod"
      output = "json"

    \b
    Examples:
      celerytool profiles
      celerytool profiles -P prod -o json | jq '.settings[] | select(.source != "default")'
      celerytool -P prod queues
    """
    from celerytool.profiles import config_path, load_file, masked
    from celerytool.render import note

    loaded = load_file()
    active = app.profile.name if app.profile is not None else None
    rows = []
    for name, profile in (loaded.profiles.items() if loaded else []):
        settings = {k: (MASK if _is_inline_secret(k) else masked(v)) for k, v in profile.values.items()}
        rows.append({"name": name, "active": name == active, "settings": settings})
    settings = effective(app)
    path = str(loaded.path if loaded else config_path())
    if app.fmt == "table":
        note(f"config: {path}" + ("" if loaded else " (does not exist)") +
             (f"; profile in use: {active}" if active else "; no profile in use"))
        if rows:
            app.emit(rows, "profile")
            click.echo("")
        app.emit(settings, "setting")
        return 0
    app.emit_one({"config": path, "exists": loaded is not None, "active": active,
                  "profiles": rows, "settings": settings}, "profiles")
    return 0


MASK = "***"


def _is_inline_secret(key: str) -> bool:
    from celerytool.profiles import SECRETS

    # a command's text may hold the password itself (echo ...): not shown either
    return any(key in (keys[0], keys[2]) for keys in SECRETS.values())


def effective(app: Any) -> list[dict[str, Any]]:
    """One row per setting: its value (passwords masked) and where it came from."""
    from celerytool.cli.settings import DEFAULTS
    from celerytool.profiles import SENTINEL_PASSWORD_ENV, SETTINGS, masked

    out = []
    for key, pkey, env in SETTINGS:
        source = app.sources.get(key, "default")
        value = getattr(app, key)
        if value is None and env and source.startswith("$"):
            value = os.environ.get(env)
        if value is None:
            value = DEFAULTS[key] if key != "broker" else DEFAULT_BROKER
        if isinstance(value, tuple):
            value = ",".join(str(v) for v in value)
        row = {"setting": pkey, "value": masked(value), "source": source}
        out.append(row)
    profile = app.profile
    for target in ("broker", "backend", "sentinel"):
        if target == "sentinel":
            if os.environ.get(SENTINEL_PASSWORD_ENV):
                out.append({"setting": "sentinel_password", "value": MASK,
                            "source": f"${SENTINEL_PASSWORD_ENV}"})
                continue
        elif not app.sources.get(target, "").startswith("profile"):
            continue
        where = profile.secret_source(target) if profile is not None else None
        if where:
            name = "password" if target == "broker" else f"{target}_password"
            out.append({"setting": name, "value": MASK, "source": where})
    return out
