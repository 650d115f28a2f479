"""Named connection profiles from a TOML file, and where each effective setting came from.

The file (``$CELERYTOOL_CONFIG``, else ``$XDG_CONFIG_HOME/celerytool/config.toml``,
else ``~/.config/celerytool/config.toml``) holds ``[profiles.NAME]`` tables whose keys
are the long option names::

    [profiles.prod]
    broker = "sentinel://redis-a:26379/0;sentinel://redis-b:26379/0"
    master_name = "mymaster"
    password_command = "pass show celery/prod"
    sentinel_password_env = "PROD_SENTINEL_PW"
    output = "json"

Precedence: command line > profile named with -P > environment > profile from
$CELERYTOOL_PROFILE or ``default`` > built-in default.  Passwords
named by ``*_env`` / ``*_command`` are read only when the URL is used.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from celerytool.errors import UsageError

# option key (as App names it) -> (profile key, environment variable or None)
SETTINGS: list[tuple[str, str, str | None]] = [
    ("broker", "broker", "CELERY_BROKER_URL"),
    ("backend", "backend", "CELERY_RESULT_BACKEND"),
    ("output", "output", "CELERYTOOL_OUTPUT"),
    ("global_keyprefix", "keyprefix", None),
    ("priority_steps", "priority_steps", None),
    ("sep", "sep", None),
    ("max_size", "max_size", None),
    ("connect_timeout", "connect_timeout", None),
    ("management_url", "management_url", None),
    ("master_name", "master_name", "CELERYTOOL_MASTER_NAME"),
]
# where a URL's password may come from instead of the file: target -> keys
SECRETS: dict[str, tuple[str, str, str]] = {
    "broker": ("password", "password_env", "password_command"),
    "backend": ("backend_password", "backend_password_env", "backend_password_command"),
    "sentinel": ("sentinel_password", "sentinel_password_env", "sentinel_password_command"),
}
SENTINEL_PASSWORD_ENV = "CELERYTOOL_SENTINEL_PASSWORD"
KNOWN_KEYS = {k for _, k, _ in SETTINGS} | {k for keys in SECRETS.values() for k in keys}
ALIASES = {"global_keyprefix": "keyprefix", "priority-steps": "priority_steps", "max-size": "max_size",
           "connect-timeout": "connect_timeout", "management-url": "management_url",
           "master-name": "master_name"}
MASK = "***"


def config_path() -> Path:
    explicit = os.environ.get("CELERYTOOL_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "celerytool" / "config.toml"


@dataclass
class Profile:
    name: str
    values: dict[str, Any]  # profile key -> value as written
    path: Path
    lines: dict[str, int] = field(default_factory=dict)  # key -> line in the file

    def where(self, key: str) -> str:
        line = self.lines.get(key)
        return f"{self.path}:{line}" if line else str(self.path)

    def secret(self, target: str) -> str | None:
        """The password for ``target`` (broker, backend, sentinel), read now; None when unset."""
        inline, env, command = SECRETS[target]
        if self.values.get(inline):
            return str(self.values[inline])
        if self.values.get(env):
            var = str(self.values[env])
            value = os.environ.get(var)
            if value is None:
                raise UsageError(f"profile {self.name!r} ({self.where(env)}): {env} names "
                                 f"${var}, which is not set")
            return value
        if self.values.get(command):
            return _run_password_command(self, command)
        return None

    def secret_source(self, target: str) -> str | None:
        inline, env, command = SECRETS[target]
        if self.values.get(inline):
            return f"profile {self.name!r} (in the file)"
        if self.values.get(env):
            return f"profile {self.name!r}: ${self.values[env]}"
        if self.values.get(command):
            return f"profile {self.name!r}: command"
        return None


MAX_CONFIG_BYTES = 1024 * 1024  # a profile file is a few lines: past this it is not one
MAX_SECRET_BYTES = 64 * 1024  # what a password command may print
PASSWORD_COMMAND_TIMEOUT = 60.0  # seconds; then the command and everything it started are killed


def _run_password_command(profile: Profile, key: str) -> str:
    """What ``key``'s command prints, bounded in size and time; its whole process group is
    killed when it prints too much or runs too long (a shell's children included)."""
    import selectors
    import signal
    import time

    command = str(profile.values[key])
    where = f"profile {profile.name!r} ({profile.where(key)}): {key}"
    try:
        proc = subprocess.Popen(command, shell=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError as exc:
        raise UsageError(f"{where} failed: {type(exc).__name__}") from None
    assert proc.stdout is not None
    out = bytearray()
    problem = None
    deadline = time.monotonic() + PASSWORD_COMMAND_TIMEOUT
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                problem = f"ran longer than {PASSWORD_COMMAND_TIMEOUT:g} s"
                break
            if not sel.select(remaining):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            out += chunk
            if len(out) > MAX_SECRET_BYTES:
                problem = f"printed more than {MAX_SECRET_BYTES} bytes"
                break
    if problem is None:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            problem = f"ran longer than {PASSWORD_COMMAND_TIMEOUT:g} s"
    if problem is not None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.wait()
    proc.stdout.close()
    if problem is not None:
        raise UsageError(f"{where} {problem}; it was stopped")
    if proc.returncode != 0:
        raise UsageError(f"{where} exited {proc.returncode}")
    try:
        value = out.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise UsageError(f"{where} printed something that is not UTF-8 text") from None
    if not value:
        raise UsageError(f"{where} printed nothing")
    return value


@dataclass
class ProfileFile:
    path: Path
    profiles: dict[str, Profile]
    warnings: list[str] = field(default_factory=list)


def load_file(path: Path | None = None) -> ProfileFile | None:
    """The parsed file, or None when it does not exist; UsageError naming file and line."""
    path = path or config_path()
    data = _read_config(path)
    if data is None:
        return None
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: malformed TOML: {exc}") from None
    text = data.decode("utf-8")
    unknown = sorted(set(doc) - {"profiles"})
    if unknown:
        raise UsageError(f"{path}:{_line_of(text, None, unknown[0]) or 1}: unknown table or key "
                         f"{unknown[0]!r} (profiles go in [profiles.NAME] tables)")
    tables = doc.get("profiles", {})
    if not isinstance(tables, dict):
        raise UsageError(f"{path}: 'profiles' must be a table of [profiles.NAME] tables")
    profiles: dict[str, Profile] = {}
    for name, values in tables.items():
        if not isinstance(values, dict):
            raise UsageError(f"{path}:{_line_of(text, None, name) or 1}: profiles.{name} must be a "
                             "table ([profiles.NAME] with key = value lines)")
        clean: dict[str, Any] = {}
        lines: dict[str, int] = {}
        for key, value in values.items():
            line = _line_of(text, name, key)
            canon = ALIASES.get(key, key)
            if canon not in KNOWN_KEYS:
                raise UsageError(f"{path}:{line or 1}: profile {name!r} has an unknown key {key!r} "
                                 f"(known: {', '.join(sorted(KNOWN_KEYS))})")
            if isinstance(value, (dict, list)) and canon != "priority_steps":
                raise UsageError(f"{path}:{line or 1}: profile {name!r}: {key} must be a string or "
                                 "a number")
            clean[canon] = value
            if line:
                lines[canon] = line
        profiles[name] = Profile(name, clean, path, lines)
    result = ProfileFile(path, profiles)
    if _holds_password(profiles.values()) and _readable_by_others(path):
        result.warnings.append(f"{path} holds a password and is readable by other users "
                               f"(chmod 600 {path})")
    return result


def _read_config(path: Path) -> bytes | None:
    """The file's bytes, None when it does not exist; a device, a FIFO, a directory or a file
    larger than MAX_CONFIG_BYTES is refused without reading it (exit 2)."""
    try:  # O_NONBLOCK: opening a FIFO must not wait for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"{path} is not a regular file (a config file is a TOML text file)")
        if st.st_size > MAX_CONFIG_BYTES:
            raise UsageError(f"{path} is {st.st_size} bytes, more than a config file's "
                             f"{MAX_CONFIG_BYTES}")
        data = b""
        while chunk := os.read(fd, MAX_CONFIG_BYTES + 1 - len(data)):
            data += chunk
            if len(data) > MAX_CONFIG_BYTES:
                break
        if len(data) > MAX_CONFIG_BYTES:  # it grew while we looked
            raise UsageError(f"{path} is more than a config file's {MAX_CONFIG_BYTES} bytes")
        return data
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _line_of(text: str, profile: str | None, key: str) -> int | None:
    """The line where ``key`` is set (inside [profiles.<profile>] when given), best effort."""
    header = re.compile(r"^\s*\[\s*profiles\s*\.\s*[\"']?" + re.escape(profile) + r"[\"']?\s*\]") \
        if profile is not None else None
    inside = header is None
    keyline = re.compile(r"^\s*[\"']?" + re.escape(key) + r"[\"']?\s*[=.\]]")
    for number, line in enumerate(text.splitlines(), 1):
        if header is not None and header.match(line):
            inside = True
            continue
        if header is not None and inside and re.match(r"^\s*\[", line):
            inside = False
        if inside and keyline.match(line):
            return number
        if profile is None and re.match(r"^\s*\[\s*" + re.escape(key) + r"\b", line):
            return number
    return None


_URL_PASSWORD = re.compile(r"://[^:@/\s]*:[^@\s]+@|[?&](?:sentinel_)?password=[^&\s]")


def _holds_password(profiles: Iterable[Profile]) -> bool:
    for p in profiles:
        if any(p.values.get(keys[0]) for keys in SECRETS.values()):
            return True
        if any(isinstance(p.values.get(k), str) and _URL_PASSWORD.search(p.values[k])
               for k in ("broker", "backend", "management_url")):
            return True
    return False


def _readable_by_others(path: Path) -> bool:
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IRGRP | stat.S_IROTH))


def select(name: str | None, source: str | None) -> tuple[Profile | None, ProfileFile | None]:
    """The named profile (``source`` says who named it), else ``default`` when it exists."""
    loaded = load_file()
    if name:
        if loaded is None:
            raise UsageError(f"no profile {name!r} ({source}): {config_path()} does not exist")
        if name not in loaded.profiles:
            known = ", ".join(sorted(loaded.profiles)) or "none"
            raise UsageError(f"no profile {name!r} ({source}) in {loaded.path} (profiles: {known})")
        return loaded.profiles[name], loaded
    if loaded is not None and "default" in loaded.profiles:
        return loaded.profiles["default"], loaded
    return None, loaded


def with_password(raw: str, password: str) -> str:
    """``raw`` with ``password`` put in its first URL's user info (when it has none)."""
    m = re.match(r"^([a-zA-Z][a-zA-Z0-9+.\-]*://)(?:([^:@/;]*)(?::([^@/;]*))?@)?", raw)
    if not m or m.group(3):
        return raw
    user = m.group(2) or ""
    return f"{m.group(1)}{user}:{quote(password, safe='')}@{raw[m.end():]}"


def masked(value: Any) -> Any:
    """A profile value safe to show: passwords in URLs become ***."""
    if not isinstance(value, str):
        return value
    from celerytool.urls import redact_text

    text = redact_text(value)
    return re.sub(r"(?i)([?&](?:sentinel_)?password=)[^&]*", rf"\g<1>{MASK}", text)
