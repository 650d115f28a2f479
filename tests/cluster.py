"""Three-node RabbitMQ clusters for the tests, beside the machines' own nodes: one of each
installation the tests use (``INSTALLATIONS``).

- ``rabbit3``: three nodes of the machine's RabbitMQ (3.10 on Debian 12): node names
  ``ctc1@localhost`` .. ``ctc3@localhost``, AMQP 5681-5683, management 15681-15683,
  distribution 25681-25683, their own epmd on 4372, data directories and Erlang cookie under
  ``CELERYTOOL_CLUSTER_ROOT`` (default /var/cache/celerytool-tests/cluster3).
- ``rabbit4``: three nodes of the RabbitMQ 4.0.x of the Debian 13 chroot (tests/rabbit4.py),
  run inside it: ``ctd1@localhost`` .. ``ctd3@localhost``, AMQP 5691-5693, management
  15691-15693, distribution 25691-25693, epmd 4373, data under /var/lib/celerytool-cluster4 in
  the chroot.

The machines' nodes (5672 / 5673, epmd 4369 / 4370) are never touched: each test node reads
its own env file (``RABBITMQ_CONF_ENV_FILE``), not /etc/rabbitmq's.

test_cluster.py's ``cluster_vhost`` fixture is parametrized over ``INSTALLATIONS`` (ids
``rabbit3`` / ``rabbit4``): every cluster test runs on both.

Each cluster is left running between sessions (start-up is paid once per machine). Its set-up
holds an exclusive ``flock``; so does every test that uses it (``locked("use", inst)``), since
a test that stops a node would disturb another session's test: the tests of one cluster, across
parallel sessions / xdist workers, run one at a time (the two clusters' tests side by side).
Each test session uses its own vhost on each cluster and deletes it.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from services import RabbitNode, port_open, rabbit_api, wait_port

ROOT3 = Path(os.environ.get("CELERYTOOL_CLUSTER_ROOT", "/var/cache/celerytool-tests/cluster3"))
COOKIE = "CELERYTOOLCLUSTERTESTCOOKIE"
BIN = "/usr/lib/rabbitmq/bin"


@dataclass(frozen=True)
class Installation:
    """One RabbitMQ installation the clusters are made of, and where its test nodes live."""

    name: str  # the test id: rabbit3 / rabbit4
    prefix: str  # node names <prefix>1..3@localhost
    base: int  # node i: AMQP base+i, management 10000+base+i, distribution 20000+base+i
    epmd_port: int
    root: Path  # the nodes' data, as the nodes see it
    chroot: Path | None = None  # the installation's root; None: this machine's
    nodes: tuple[ClusterNode, ...] = field(default=(), compare=False, repr=False)

    def host_path(self, path: Path) -> Path:
        """``path`` as the nodes see it, as this process sees it."""
        return path if self.chroot is None else self.chroot / path.relative_to("/")

    def argv(self, tool: str, env_args: list[str]) -> list[str]:
        """A tool of the installation (rabbitmqctl, rabbitmq-server) with the node's environment."""
        if self.chroot is None:
            return ["env", *env_args, f"{BIN}/{tool}"]
        return ["chroot", str(self.chroot), "env", *env_args, f"{BIN}/{tool}"]

    def prepare(self) -> None:
        if self.chroot is not None:  # the chroot built, with /proc and /dev mounted
            from rabbit4 import ensure_rabbit4

            ensure_rabbit4()
        elif not os.path.exists(f"{BIN}/rabbitmq-server"):  # a fresh machine: install it
            from services import ensure_rabbitmq

            ensure_rabbitmq()


@dataclass(frozen=True)
class ClusterNode:
    index: int
    inst: Installation

    @property
    def short(self) -> str:
        return f"{self.inst.prefix}{self.index}"

    @property
    def nodename(self) -> str:
        return f"{self.short}@localhost"

    @property
    def amqp_port(self) -> int:
        return self.inst.base + self.index

    @property
    def mgmt_port(self) -> int:
        return 10000 + self.inst.base + self.index

    @property
    def dist_port(self) -> int:
        return 20000 + self.inst.base + self.index

    @property
    def dir(self) -> Path:
        """The node's data directory as the node sees it."""
        return self.inst.root / self.short

    @property
    def host_dir(self) -> Path:
        return self.inst.host_path(self.dir)

    @property
    def rabbit(self) -> RabbitNode:
        return RabbitNode(self.short, amqp_port=self.amqp_port, mgmt_port=self.mgmt_port,
                          nodename=self.nodename, ctl_prefix=tuple(self.inst.argv("", env_args(self))[:-1]))

    def ctl(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([*self.inst.argv("rabbitmqctl", env_args(self)), "-n", self.nodename, *args],
                              check=check, capture_output=True, text=True, timeout=timeout)

    def running(self) -> bool:
        return port_open("127.0.0.1", self.amqp_port) and port_open("127.0.0.1", self.mgmt_port)

    def stop_app(self) -> None:
        self.ctl("stop_app")

    def start_app(self) -> None:
        self.ctl("start_app")
        self.ctl("await_startup")
        wait_port("127.0.0.1", self.amqp_port, 120, f"{self.nodename} AMQP")
        wait_port("127.0.0.1", self.mgmt_port, 120, f"{self.nodename} management")

    def url(self, vhost: str) -> str:
        from urllib.parse import quote

        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/{quote(vhost, safe='')}"


def _installation(name: str, prefix: str, base: int, epmd: int, root: Path, chroot: Path | None) -> Installation:
    inst = Installation(name, prefix, base, epmd, root, chroot)
    object.__setattr__(inst, "nodes", tuple(ClusterNode(i, inst) for i in (1, 2, 3)))
    return inst


def _rabbit4_root() -> Path:
    from rabbit4 import ROOT

    return ROOT


RABBIT3_CLUSTER = _installation("rabbit3", "ctc", 5680, 4372, ROOT3, None)
RABBIT4_CLUSTER = _installation("rabbit4", "ctd", 5690, 4373, Path("/var/lib/celerytool-cluster4"), _rabbit4_root())
INSTALLATIONS = (RABBIT3_CLUSTER, RABBIT4_CLUSTER)


def env_args(node: ClusterNode) -> list[str]:
    d, inst = node.dir, node.inst
    return [f"HOME={inst.root}", f"RABBITMQ_CONF_ENV_FILE={d / 'rabbitmq-env.conf'}",
            f"RABBITMQ_NODENAME={node.nodename}", f"RABBITMQ_NODE_PORT={node.amqp_port}",
            f"RABBITMQ_DIST_PORT={node.dist_port}", f"ERL_EPMD_PORT={inst.epmd_port}",
            f"RABBITMQ_MNESIA_BASE={d / 'mnesia'}", f"RABBITMQ_LOG_BASE={d / 'log'}",
            f"RABBITMQ_CONFIG_FILE={d / 'rabbitmq'}",
            f"RABBITMQ_ENABLED_PLUGINS_FILE={d / 'enabled_plugins'}",
            f"RABBITMQ_PID_FILE={d / 'pid'}", "ERL_EPMD_ADDRESS=127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}"]


@contextmanager
def locked(name: str, inst: Installation) -> Iterator[None]:
    host_root = inst.host_path(inst.root)
    host_root.mkdir(parents=True, exist_ok=True)
    lock_dir = ROOT3.parent
    lock_dir.mkdir(parents=True, exist_ok=True)
    stem = "cluster3" if inst is RABBIT3_CLUSTER else f"cluster-{inst.name}"  # cluster3: older checkouts' too
    with open(lock_dir / f"{stem}.{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def write_files(node: ClusterNode) -> None:
    d = node.host_dir
    (d / "log").mkdir(parents=True, exist_ok=True)
    (d / "rabbitmq-env.conf").write_text("# celerytool test cluster: nothing from /etc/rabbitmq\n")
    (d / "enabled_plugins").write_text("[rabbitmq_management].\n")
    (d / "rabbitmq.conf").write_text(
        f"listeners.tcp.default = 127.0.0.1:{node.amqp_port}\n"
        f"management.tcp.port = {node.mgmt_port}\nmanagement.tcp.ip = 127.0.0.1\n"
        "loopback_users = none\n")
    cookie = node.inst.host_path(node.inst.root) / ".erlang.cookie"
    if not cookie.exists():
        cookie.write_text(COOKIE)
        cookie.chmod(0o400)


def launch_node(node: ClusterNode) -> None:
    """Start the node's Erlang VM (detached) when it is not up; returns at once."""
    write_files(node)
    if not port_open("127.0.0.1", node.dist_port):
        # the VM outlives this test run: it must not keep the checkout as its working directory
        # (a deleted one, after CI's clone is removed, makes Erlang's open_port fail: enoent)
        subprocess.run([*node.inst.argv("rabbitmq-server", env_args(node)), "-detached"], check=True,
                       cwd=node.inst.host_path(node.inst.root), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=120)


def await_node(node: ClusterNode, timeout: float = 180) -> None:
    """Wait until the node's app is running. A restarted cluster node waits for its peers'
    tables, so all nodes must have been launched before any is awaited."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            done = node.ctl("await_startup", "--timeout", "20", timeout=40, check=False).returncode == 0
        except subprocess.TimeoutExpired:
            done = False
        if done:
            break
        if port_open("127.0.0.1", node.dist_port) and not port_open("127.0.0.1", node.amqp_port):
            try:  # the VM is up, the app stopped (a test that did not restore it)
                node.ctl("start_app", timeout=40, check=False)
            except subprocess.TimeoutExpired:
                pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{node.nodename} did not start (logs in {node.host_dir / 'log'})")
        time.sleep(1)


def start_node(node: ClusterNode) -> None:
    launch_node(node)
    await_node(node)


def stop_everything(inst: Installation) -> None:
    """Stop every test node of ``inst`` (and only them) and remove their data: the next start
    forms a new cluster."""
    for node in inst.nodes:
        try:
            node.ctl("stop", timeout=30, check=False)
        except subprocess.TimeoutExpired:
            pass
    for pid in _vms(inst):  # what did not stop, by pid
        try:
            os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass
    time.sleep(1)
    for node in inst.nodes:
        shutil.rmtree(node.host_dir, ignore_errors=True)


def _vms(inst: Installation) -> list[str]:
    """The pids of ``inst``'s node VMs (their command line names our HOME and epmd port), as
    ``pgrep -f`` finds them, without procps (not on a fresh machine)."""
    wanted = re.compile(rf"beam\.smp.* -home {re.escape(str(inst.root))} -epmd_port {inst.epmd_port}\b")
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or entry.name == str(os.getpid()):
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                line = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        if wanted.search(line):
            found.append(entry.name)
    return found


def stale(inst: Installation) -> bool:
    """Whether a node VM runs in a deleted working directory (started from a checkout that is
    gone): it cannot start programs any more (Erlang's open_port: enoent) and must be restarted."""
    for pid in _vms(inst):
        try:
            if os.readlink(f"/proc/{pid}/cwd").endswith(" (deleted)"):
                return True
        except OSError:
            continue
    return False


def members(node: ClusterNode) -> set[str]:
    status = rabbit_api("GET", "/nodes?columns=name,running", node=node.rabbit)
    return {r["name"] for r in status if r.get("running")}  # type: ignore[union-attr]


def healthy(inst: Installation) -> bool:
    if not all(n.running() for n in inst.nodes):
        return False
    try:
        return members(inst.nodes[0]) == {n.nodename for n in inst.nodes}
    except Exception:
        return False


def form_cluster(inst: Installation) -> None:
    inst.prepare()
    nodes = inst.nodes
    for node in nodes:  # all VMs first: a node restarted from its data waits for the others
        launch_node(node)
    for node in nodes:
        await_node(node)
    wanted = {n.nodename for n in nodes}
    for node in nodes[1:]:
        status = node.ctl("cluster_status", "--formatter", "json").stdout
        if all(name in status for name in wanted):
            continue
        node.ctl("stop_app")
        node.ctl("reset")
        node.ctl("join_cluster", nodes[0].nodename)
        node.ctl("start_app")
        await_node(node)
    for node in nodes:
        wait_port("127.0.0.1", node.mgmt_port, 120, f"{node.nodename} management")
    deadline = time.monotonic() + 60
    while not healthy(inst):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the {inst.name} test cluster did not form (logs under {inst.host_path(inst.root)})")
        time.sleep(0.5)


def ensure_cluster(inst: Installation) -> tuple[ClusterNode, ...]:
    """All three nodes of ``inst`` up and clustered (started / joined when needed). A cluster
    that does not come back from its data (nodes left in a state they cannot leave) is wiped
    and formed again: it holds nothing but test vhosts."""
    if healthy(inst) and not stale(inst):
        return inst.nodes
    with locked("setup", inst):
        if stale(inst):  # started by an earlier checkout, now deleted: start again from nothing
            stop_everything(inst)
        if healthy(inst):
            return inst.nodes
        try:
            form_cluster(inst)
        except (RuntimeError, subprocess.SubprocessError):
            stop_everything(inst)
            form_cluster(inst)
    return inst.nodes


def failover_url(vhost: str, order: tuple[ClusterNode, ...]) -> str:
    return ";".join(n.url(vhost) for n in order)
