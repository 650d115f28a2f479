"""PostgreSQL and MariaDB for the database-backend tests: started (installed) when they do not
answer, and a database of our own on each, dropped afterwards.

PostgreSQL: 127.0.0.1:5432, user postgres, trust authentication on 127.0.0.1.
MariaDB: 127.0.0.1:3306, user root, empty password.  A server this module installs is
configured that way; a running one is expected to be.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass

from services import apt_install, machine_lock, port_open, wait_port

HOST = "127.0.0.1"
PG_PORT = 5432
MYSQL_PORT = 3306


def _run(*cmd: str, check: bool = True) -> None:
    subprocess.run(cmd, check=check, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def ensure_postgres() -> None:
    if port_open(HOST, PG_PORT):
        return
    with machine_lock("postgresql"):  # one test process installs and starts it
        if not port_open(HOST, PG_PORT):
            _start_postgres()


def _start_postgres() -> None:
    installed_now = False
    if not glob.glob("/etc/postgresql/*/main") or not shutil.which("pg_ctlcluster"):
        apt_install("postgresql")
        installed_now = True
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    if installed_now:  # the tests connect as postgres without a password over TCP
        hba = f"/etc/postgresql/{version}/main/pg_hba.conf"
        with open(hba) as fh:
            text = fh.read()
        with open(hba, "w") as fh:
            fh.write("host all all 127.0.0.1/32 trust\n" + text)
    if not port_open(HOST, PG_PORT):  # the package may have started it
        _run("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start", check=False)
    if installed_now:
        _run("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "reload", check=False)
    wait_port(HOST, PG_PORT, 60, "PostgreSQL")


def ensure_mariadb() -> None:
    if port_open(HOST, MYSQL_PORT):
        return
    with machine_lock("mariadb"):  # one test process installs and starts it
        if not port_open(HOST, MYSQL_PORT):
            _start_mariadb()


def _start_mariadb() -> None:
    installed_now = False
    if not os.path.exists("/usr/sbin/mariadbd"):
        apt_install("mariadb-server")
        installed_now = True
    if not port_open(HOST, MYSQL_PORT):  # the package may have started it
        os.makedirs("/run/mysqld", exist_ok=True)
        shutil.chown("/run/mysqld", "mysql", "mysql")
        # as root, mariadbd refuses to run unless told its user (systemd's unit runs it as mysql)
        _run("start-stop-daemon", "--start", "--oknodo", "--background", "--exec", "/usr/sbin/mariadbd",
             "--", "--user=mysql", check=False)
    wait_port(HOST, MYSQL_PORT, 60, "MariaDB")
    if installed_now:  # root logs in through the socket only: let it in over TCP, no password
        _run("mariadb", "-uroot", "-e",
             "ALTER USER root@localhost IDENTIFIED VIA mysql_native_password USING PASSWORD('');"
             "CREATE USER IF NOT EXISTS root@'127.0.0.1' IDENTIFIED BY '';"
             "GRANT ALL ON *.* TO root@'127.0.0.1' WITH GRANT OPTION;", check=False)


@dataclass
class Database:
    """One database of our own: ``url(driver)`` gives its SQLAlchemy URL."""

    dialect: str  # postgresql | mysql | sqlite
    name: str  # database name, or the file path for SQLite

    def url(self, driver: str | None = None) -> str:
        scheme = f"{self.dialect}+{driver}" if driver else self.dialect
        if self.dialect == "postgresql":
            return f"{scheme}://postgres@{HOST}:{PG_PORT}/{self.name}"
        if self.dialect == "mysql":
            return f"{scheme}://root@{HOST}:{MYSQL_PORT}/{self.name}"
        return f"sqlite:///{self.name}"

    @property
    def driver_url(self) -> str:
        """For the test's own SQLAlchemy / Celery use: the driver named explicitly."""
        return self.url({"postgresql": "psycopg", "mysql": "pymysql"}.get(self.dialect))

    def engine(self):
        import sqlalchemy as sa

        return sa.create_engine(self.driver_url, poolclass=sa.pool.NullPool)

    def drop(self) -> None:
        if self.dialect == "sqlite":
            for suffix in ("", "-journal", "-wal", "-shm"):
                if os.path.exists(self.name + suffix):
                    os.unlink(self.name + suffix)
            return
        _admin(self.dialect, f"DROP DATABASE IF EXISTS {self.name}")


def _admin(dialect: str, statement: str) -> None:
    if dialect == "postgresql":
        import psycopg

        with psycopg.connect(host=HOST, port=PG_PORT, user="postgres", dbname="postgres", autocommit=True) as conn:
            if statement.startswith("DROP"):  # a worker or reader may still hold a connection
                name = statement.rsplit(" ", 1)[1]
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
            conn.execute(statement)
    else:
        import pymysql

        conn = pymysql.connect(host=HOST, port=MYSQL_PORT, user="root", password="", autocommit=True)
        try:
            conn.cursor().execute(statement)
        finally:
            conn.close()


def new_database(dialect: str, directory: str | None = None) -> Database:
    """A fresh, empty database of our own (a file in ``directory`` for SQLite)."""
    name = f"celerytool_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    if dialect == "sqlite":
        return Database("sqlite", os.path.join(directory or "/tmp", name + ".sqlite"))
    if dialect == "postgresql":
        ensure_postgres()
    else:
        ensure_mariadb()
    _admin(dialect, f"CREATE DATABASE {name}")
    return Database(dialect, name)
