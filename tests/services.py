"""Start the real services the tests need: a private redis-server, RabbitMQ.

Nothing here touches data the tests did not create: Redis runs on a free
port with its own data directory; RabbitMQ tests get their own vhost.
Missing servers are installed with apt-get when we are root (CI, a fresh
Debian machine).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_apt_updated = False
LOCK_DIR = Path("/var/cache/celerytool-tests")


@contextmanager
def machine_lock(name: str) -> Iterator[None]:
    """An exclusive ``flock`` shared by every test process of the machine (the xdist workers of
    a session, other sessions): installing and starting a server is done by one at a time."""
    try:
        LOCK_DIR.mkdir(parents=True, exist_ok=True)
        fh = open(LOCK_DIR / f"{name}.lock", "a")
    except OSError:  # not root: nothing to install anyway; a lock of this user's own
        fh = open(Path(tempfile.gettempdir()) / f"celerytool-tests-{name}.lock", "a")
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def apt_install(*packages: str) -> None:
    """apt-get install, one at a time across the test processes (parallel xdist workers would
    otherwise find dpkg locked and fail), waiting for any other apt-get (unattended-upgrades on a
    machine just booted) rather than failing."""
    global _apt_updated
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RuntimeError(f"{packages} missing and cannot apt-get install (not root / no apt)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    wait = ("-o", "DPkg::Lock::Timeout=600")
    with machine_lock("apt"):
        if not _apt_updated:
            subprocess.run(["apt-get", *wait, "update", "-q"], check=False, env=env,
                           stdout=subprocess.DEVNULL)
            _apt_updated = True
        subprocess.run(["apt-get", *wait, "install", "-y", "-q", *packages], check=True, env=env,
                       stdout=subprocess.DEVNULL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class RedisServer:
    port: int
    proc: subprocess.Popen
    dir: Path

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def redis_server_binary() -> str:
    path = shutil.which("redis-server") or ("/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None)
    if path is None:
        apt_install("redis-server")
        path = shutil.which("redis-server") or "/usr/bin/redis-server"
    return path


def start_redis(data_dir: Path, port: int | None = None, extra: tuple[str, ...] = ()) -> RedisServer:
    binary = redis_server_binary()
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir), "--save", "",
         "--appendonly", "no", "--daemonize", "no", "--logfile", str(data_dir / "redis.log"), *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if port_open("127.0.0.1", port):
            return RedisServer(port, proc, data_dir)
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited: {(data_dir / 'redis.log').read_text()[-2000:]}")
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start in 20 s")


# --- RabbitMQ -------------------------------------------------------------------------
# Two nodes: the machine's RabbitMQ 3.x on 5672 (RABBIT3) and a RabbitMQ 4.0.x node the tests
# start themselves on 5673 (RABBIT4 in rabbit4.py). Everything below takes a ``node``.

RABBIT_HOST = "127.0.0.1"
RABBIT_PORT = 5672
RABBIT_MGMT_PORT = 15672


@dataclass(frozen=True)
class RabbitNode:
    """One RabbitMQ node the tests use: its ports, and how to run its ``rabbitmqctl``."""

    name: str
    amqp_port: int
    mgmt_port: int
    nodename: str | None = None
    ctl_prefix: tuple[str, ...] = ()
    host: str = RABBIT_HOST

    @property
    def management_url(self) -> str:
        return f"http://{self.host}:{self.mgmt_port}"

    def ensure(self) -> RabbitNode:
        """Make sure the node answers (install / build / start it), and return it."""
        if self.name == "rabbit3":
            ensure_rabbitmq()
            return self
        from rabbit4 import ensure_rabbit4

        return ensure_rabbit4()

    def version(self) -> tuple[int, ...]:
        text = str(rabbit_api("GET", "/overview", node=self)["rabbitmq_version"])  # type: ignore[index]
        return tuple(int(p) for p in text.split("-")[0].split(".") if p.isdigit())

    def rabbitmqctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        node = ("-n", self.nodename) if self.nodename else ()
        return subprocess.run([*self.ctl_prefix, "rabbitmqctl", *node, *args], check=True,
                              capture_output=True, text=True, timeout=timeout)


RABBIT3 = RabbitNode("rabbit3", RABBIT_PORT, RABBIT_MGMT_PORT)


def wait_port(host: str, port: int, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer on {host}:{port} within {seconds:.0f} s")


def ensure_rabbitmq() -> None:
    """Make sure RabbitMQ and its management plugin answer on 127.0.0.1 (start / install them;
    one test process at a time: parallel workers would each start a node)."""
    if port_open(RABBIT_HOST, RABBIT_PORT) and port_open(RABBIT_HOST, RABBIT_MGMT_PORT):
        return
    with machine_lock("rabbitmq"):
        if not port_open(RABBIT_HOST, RABBIT_PORT):
            if not shutil.which("rabbitmq-server") and not os.path.exists("/usr/sbin/rabbitmq-server"):
                apt_install("rabbitmq-server")
            if not port_open(RABBIT_HOST, RABBIT_PORT):  # the package may have started it
                subprocess.run(["rabbitmq-plugins", "enable", "--offline", "rabbitmq_management"],
                               check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                subprocess.run(["rabbitmq-server", "-detached"], check=False,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_port(RABBIT_HOST, RABBIT_PORT, 120, "rabbitmq-server")
        if not port_open(RABBIT_HOST, RABBIT_MGMT_PORT):
            subprocess.run(["rabbitmq-plugins", "enable", "rabbitmq_management"], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_port(RABBIT_HOST, RABBIT_MGMT_PORT, 60, "RabbitMQ management API")


def rabbit_api(method: str, path: str, body: object = None, user: str = "guest",
               password: str = "guest", node: RabbitNode = RABBIT3) -> object:
    """Call the management API directly (test set-up; independent of celerytool's client)."""
    import base64
    import json
    import urllib.request

    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    req = urllib.request.Request(
        f"{node.management_url}/api{path}", method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


@dataclass
class RabbitVhost:
    """A vhost of our own on one RabbitMQ node, where guest may do anything."""

    name: str
    node: RabbitNode = RABBIT3

    @property
    def quoted(self) -> str:
        from urllib.parse import quote

        return quote(self.name, safe="")

    def url(self, user: str = "guest", password: str = "guest", scheme: str = "amqp") -> str:
        return f"{scheme}://{user}:{password}@{self.node.host}:{self.node.amqp_port}/{self.quoted}"

    def api(self, method: str, path: str, body: object = None) -> object:
        return rabbit_api(method, path, body, node=self.node)

    def create(self) -> RabbitVhost:
        self.api("PUT", f"/vhosts/{self.quoted}", {})
        self.api("PUT", f"/permissions/{self.quoted}/guest", {"configure": ".*", "write": ".*", "read": ".*"})
        return self

    def delete(self) -> None:
        try:
            self.api("DELETE", f"/vhosts/{self.quoted}")
        except Exception:  # already gone
            pass

    def queue_names(self) -> list[str]:
        rows = self.api("GET", f"/queues/{self.quoted}?columns=name")
        return [r["name"] for r in rows]  # type: ignore[union-attr]

    def delete_queues(self) -> None:
        """Delete every queue of the vhost; a queue that vanished meanwhile is gone (404), and an
        exclusive queue whose (killed) owner RabbitMQ has not yet seen go (400) is tried again."""
        import time
        import urllib.error
        from urllib.parse import quote

        deadline = time.monotonic() + 15
        for name in self.queue_names():
            while True:
                try:
                    self.api("DELETE", f"/queues/{self.quoted}/{quote(name, safe='')}")
                    break
                except urllib.error.HTTPError as exc:
                    if exc.code == 404:
                        break
                    if exc.code != 400 or time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)

    def delete_policies(self) -> None:
        from urllib.parse import quote

        for row in self.api("GET", f"/policies/{self.quoted}") or []:  # type: ignore[union-attr]
            self.api("DELETE", f"/policies/{self.quoted}/{quote(row['name'], safe='')}")


def new_vhost(prefix: str = "celerytool-test", node: RabbitNode = RABBIT3) -> RabbitVhost:
    import uuid

    node = node.ensure()
    return RabbitVhost(f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:8]}", node).create()


def wait_for(check, timeout: float = 20.0, every: float = 0.1):
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout} s (last value {last!r})")


# --- Redis Sentinel -------------------------------------------------------------------


@dataclass
class SentinelSet:
    """A master, one replica and sentinels watching them (all private, on free ports)."""

    master: RedisServer
    replica: RedisServer
    sentinels: list[RedisServer]
    name: str
    password: str | None = None
    sentinel_password: str | None = None

    def url(self, db: int = 0, master_name: bool = True) -> str:
        auth = f":{self.password}@" if self.password else ""
        parts = [f"sentinel://{auth if i == 0 else ''}127.0.0.1:{s.port}/{db}"
                 for i, s in enumerate(self.sentinels)]
        text = ";".join(parts)
        return text + (f"?master_name={self.name}" if master_name else "")

    def ask(self, *args: str):
        """One command to the first sentinel that answers (redis-py, independent of celerytool)."""
        import redis

        last = None
        for s in self.sentinels:
            client = redis.Redis(port=s.port, socket_timeout=5, decode_responses=True,
                                 password=self.sentinel_password)
            try:
                return client.execute_command(*args)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                last = exc
            finally:
                client.close()
        raise RuntimeError(f"no sentinel answered: {last}")

    def master_port(self) -> int:
        return int(self.ask("SENTINEL", "get-master-addr-by-name", self.name)[1])

    def master_client(self, db: int = 0):
        import redis

        return redis.Redis(port=self.master_port(), db=db, password=self.password, socket_timeout=10)

    def wait_synced(self, timeout: float = 60.0) -> None:
        """Until the sentinels see the replica and the replica's link to the master is up."""
        import redis

        def ready() -> bool:
            replicas = self.ask("SENTINEL", "replicas", self.name)
            if not replicas or any("down" in r["flags"] or "disconnected" in r["flags"]
                                   for r in replicas):
                return False
            master = self.master_port()
            for server in (self.master, self.replica):
                info = redis.Redis(port=server.port, password=self.password).info("replication")
                if server.port == master:
                    if info["role"] != "master" or info["connected_slaves"] < 1:
                        return False
                elif info["role"] != "slave" or info.get("master_link_status") != "up" \
                        or info.get("master_port") != master:
                    return False
            return True

        wait_for(ready, timeout, 0.2)

    def failover(self, old: int | None = None, timeout: float = 90.0) -> int:
        """SENTINEL FAILOVER; return the new master's port once the sentinels name it.

        A failover the sentinels accepted can still be aborted (failover-timeout, 10 s, on a busy
        machine): ask again until the master changes or ``timeout`` passes."""
        import redis

        old = old or self.master_port()
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                self.ask("SENTINEL", "FAILOVER", self.name)
            except redis.ResponseError as exc:  # INPROG / NOGOODSLAVE: a replica not ready yet
                last = exc
            attempt = min(deadline, time.monotonic() + 15)  # failover-timeout (10 s) and a margin
            while time.monotonic() < attempt:
                port = self.master_port()
                if port != old:
                    return port
                time.sleep(0.1)
        raise AssertionError(f"no failover within {timeout} s (last refusal: {last})")

    def stop(self) -> None:
        for s in (*self.sentinels, self.replica, self.master):
            s.stop()


def start_sentinel_set(data_dir: Path, name: str = "celerytool-test", sentinels: int = 2,
                       password: str | None = None, sentinel_password: str | None = None) -> SentinelSet:
    auth: tuple[str, ...] = ("--requirepass", password, "--masterauth", password) if password else ()
    master = start_redis(data_dir / "master", extra=auth)
    replica = start_redis(data_dir / "replica",
                          extra=(*auth, "--replicaof", "127.0.0.1", str(master.port)))
    watchers: list[RedisServer] = []
    for i in range(sentinels):
        port = free_port()
        conf = data_dir / f"sentinel{i}" / "sentinel.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"port {port}", "bind 127.0.0.1", f"dir {conf.parent}",
                 f"sentinel monitor {name} 127.0.0.1 {master.port} 1",
                 # failovers in the tests are asked for (SENTINEL FAILOVER): a master paused
                 # by a test (CLIENT PAUSE) must not be failed over on its own meanwhile
                 f"sentinel down-after-milliseconds {name} 30000",
                 f"sentinel failover-timeout {name} 10000",
                 f"sentinel parallel-syncs {name} 1"]
        if password:
            lines.append(f"sentinel auth-pass {name} {password}")
        if sentinel_password:
            lines.append(f"requirepass {sentinel_password}")
            lines.append(f"sentinel sentinel-pass {sentinel_password}")
        conf.write_text("\n".join(lines) + "\n")
        proc = subprocess.Popen(
            [redis_server_binary(), str(conf), "--sentinel", "--daemonize", "no",
             "--logfile", str(conf.parent / "sentinel.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port("127.0.0.1", port, 20, "redis sentinel")
        watchers.append(RedisServer(port, proc, conf.parent))
    return SentinelSet(master, replica, watchers, name, password, sentinel_password)
