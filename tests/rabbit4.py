"""A RabbitMQ 4.0.x node for the tests, beside the machine's RabbitMQ 3.x.

How other test files use it (the cluster and delayed-task tests build on this):

- ``ensure_rabbit4()`` returns the ``RabbitNode`` (services.py) of the 4.x node, built and
  started when needed; ``new_vhost(node=RABBIT4)`` gives a vhost of your own on it.
- In conftest.py, the ``rabbit_vhost`` / ``amqp_url`` / ``pika_channel`` fixtures are
  parametrized over ``RABBIT_NODES`` (ids ``rabbit3`` / ``rabbit4``): a test that takes them
  runs on both brokers. ``rabbit_node`` is the node of the current parameter; the session
  fixture ``rabbit4`` is the 4.x node alone, for tests that only make sense there.
- ``chroot_root()`` is the Debian 13 tree with ``rabbitmq-server`` installed: a cluster can run
  more nodes of the same installation (own node names, ports, data directories) with
  ``chroot_run(...)``.

How: Debian 12's RabbitMQ is 3.10; RabbitMQ 4 needs Erlang 26+, whose Debian 13 build needs a
newer glibc, so Debian 13's own ``rabbitmq-server`` runs unchanged in a debootstrap chroot
(recipe: ../shared/reference/rabbitmq4.md) on 127.0.0.1:5673 (management 15673, epmd 4370,
distribution 25673). The chroot is cached outside the checkout (``CELERYTOOL_RABBIT4_ROOT``,
default /var/cache/celerytool-tests/trixie-rabbitmq4) and the node is left running between
sessions: the first build takes a few minutes, later sessions find the node up. Building and
starting hold an exclusive ``flock`` so parallel xdist workers and other developers' sessions
do it once. Nothing here stops the node: other sessions may be using it.

When the node cannot be built or started (no root, no network), ``ensure_rabbit4`` raises:
the rabbit4 tests error, loudly, instead of being skipped.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from services import RabbitNode, apt_install, port_open, rabbit_api, wait_port

ROOT = Path(os.environ.get("CELERYTOOL_RABBIT4_ROOT", "/var/cache/celerytool-tests/trixie-rabbitmq4"))
BUILT = ".celerytool-built"  # written last: a tree without it is not finished
NODENAME = "rabbit4@localhost"
EPMD_PORT = 4370
RABBIT4 = RabbitNode("rabbit4", amqp_port=5673, mgmt_port=15673, nodename=NODENAME,
                     ctl_prefix=("chroot", str(ROOT), "env", f"ERL_EPMD_PORT={EPMD_PORT}",
                                 "HOME=/var/lib/rabbitmq"))

CONF = """\
listeners.tcp.default = 127.0.0.1:5673
management.tcp.port = 15673
management.tcp.ip = 127.0.0.1
loopback_users = none
"""
ENV_CONF = f"NODENAME={NODENAME}\nNODE_PORT=5673\nDIST_PORT=25673\nERL_EPMD_PORT={EPMD_PORT}\n"


def chroot_root() -> Path:
    return ROOT


@contextmanager
def locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def run(*cmd: str, timeout: float = 900) -> str:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if r.returncode != 0:
        raise RuntimeError(f"RabbitMQ 4 set-up: {' '.join(cmd)} exited {r.returncode}:\n"
                           f"{(r.stdout + r.stderr)[-3000:]}")
    return r.stdout


def chroot_run(*cmd: str, root: Path = ROOT, timeout: float = 900) -> str:
    """A command inside the chroot, with the 4.x node's epmd port and home."""
    return run("chroot", str(root), "env", f"ERL_EPMD_PORT={EPMD_PORT}", "HOME=/var/lib/rabbitmq",
               "DEBIAN_FRONTEND=noninteractive", *cmd, timeout=timeout)


def mount_kernel_fs(root: Path) -> None:
    for fs in ("proc", "dev"):
        target = root / fs
        if subprocess.run(["mountpoint", "-q", str(target)]).returncode != 0:
            run("mount", "--bind", f"/{fs}", str(target))


def build(root: Path) -> None:
    """debootstrap Debian 13 and install its rabbitmq-server into ``root`` (minutes, ~400 MB)."""
    if os.geteuid() != 0:
        raise RuntimeError("RabbitMQ 4 set-up: building the Debian 13 chroot needs root")
    staging = root.with_name(root.name + ".building")
    if not (staging / ".celerytool-debootstrap-done").exists():
        umount(staging)
        shutil.rmtree(staging, ignore_errors=True)
        if not shutil.which("debootstrap"):
            apt_install("debootstrap")
        run("debootstrap", "--variant=minbase", "trixie", str(staging), timeout=1800)
        (staging / ".celerytool-debootstrap-done").touch()
    policy = staging / "usr/sbin/policy-rc.d"  # no service starts while installing
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    mount_kernel_fs(staging)
    try:
        chroot_run("sh", "-c", "apt-get update -q && apt-get install -y -q --no-install-recommends "
                   "rabbitmq-server", root=staging, timeout=1800)
        (staging / "etc/rabbitmq/rabbitmq.conf").write_text(CONF)
        (staging / "etc/rabbitmq/rabbitmq-env.conf").write_text(ENV_CONF)
        chroot_run("rabbitmq-plugins", "--offline", "enable", "rabbitmq_management", root=staging)
    finally:
        umount(staging)
    (staging / BUILT).touch()
    staging.rename(root)


def umount(root: Path) -> None:
    for fs in ("dev", "proc"):
        target = root / fs
        if target.exists() and subprocess.run(["mountpoint", "-q", str(target)]).returncode == 0:
            subprocess.run(["umount", "-l", str(target)], check=False)


def answering() -> bool:
    if not (port_open("127.0.0.1", RABBIT4.amqp_port) and port_open("127.0.0.1", RABBIT4.mgmt_port)):
        return False
    try:
        overview = rabbit_api("GET", "/overview", node=RABBIT4)
    except Exception:
        return False
    return str(overview.get("rabbitmq_version", "")).startswith("4.")  # type: ignore[union-attr]


def start() -> None:
    mount_kernel_fs(ROOT)
    chroot_run("rabbitmq-server", "-detached", timeout=120)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if answering():
            return
        time.sleep(0.5)
    log = sorted((ROOT / "var/log/rabbitmq").glob("*.log"))
    tail = log[-1].read_text(errors="replace")[-3000:] if log else ""
    raise RuntimeError(f"RabbitMQ 4 node did not answer on 5673/15673 within 180 s:\n{tail}")


def ensure_rabbit4() -> RabbitNode:
    """The running 4.x node (built and started under a lock the first time)."""
    if answering():
        return RABBIT4
    with locked(ROOT.with_name(ROOT.name + ".lock")):
        if answering():  # another session started it while we waited
            return RABBIT4
        if port_open("127.0.0.1", RABBIT4.amqp_port):
            wait_port("127.0.0.1", RABBIT4.mgmt_port, 120, "RabbitMQ 4 management API")
            if answering():
                return RABBIT4
            raise RuntimeError("port 5673 answers but it is not the RabbitMQ 4 node of the tests")
        if not (ROOT / BUILT).exists():
            build(ROOT)
        start()
    return RABBIT4
