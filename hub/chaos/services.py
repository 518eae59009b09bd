"""Private PostgreSQL and RabbitMQ for the chaos suite.

Everything lives under one temporary directory: its own data directories, free
ports, node names of its own (`hubchaos<id>-<n>@localhost`) and its own Erlang
cookie, so restarting or killing these services never touches the machine's
PostgreSQL or RabbitMQ, and a mistyped node name cannot reach them either.
Every process is started here, in a session of its own, and `Services.close`
kills what is left (also after a failure or Ctrl-C).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PG_BIN = Path(os.environ.get("HUB_CHAOS_PG_BIN", "/usr/lib/postgresql/15/bin"))
RABBIT_BIN = Path(os.environ.get("HUB_CHAOS_RABBIT_BIN", "/usr/lib/rabbitmq/bin"))


class ServiceError(Exception):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _as_postgres() -> dict[str, Any]:
    """initdb and postgres refuse root: run them as the postgres user then."""
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres", "extra_groups": []}


def _chown_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise ServiceError(f"{what} did not come up within {timeout:g}s")


@dataclass
class PrivatePostgres:
    """One PostgreSQL 15 cluster; `postgres` runs in the foreground as our child."""

    root: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    closed: bool = False  # set by Services.close: start no more

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "hub") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        self.root.mkdir(parents=True)
        _chown_postgres(self.root)
        subprocess.run(
            [str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
             "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"],
            check=True, capture_output=True, timeout=120, **_as_postgres(),
        )

    def start(self) -> None:
        if self.closed:
            raise ServiceError("the chaos suite's services are closed")
        log = open(self.root / "postgres.log", "ab")  # noqa: SIM115 - held by the child
        self.proc = subprocess.Popen(
            [str(PG_BIN / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.root}",
             "-c", "max_connections=200", "-c", "shared_buffers=256MB",
             "-c", "log_min_messages=warning", "-c", "log_min_error_statement=panic"],
            stdout=log, stderr=log, start_new_session=True, **_as_postgres(),
        )
        log.close()
        _wait(lambda: self._ready(), 60, "private PostgreSQL")

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise ServiceError(f"private PostgreSQL exited; see {self.root / 'postgres.log'}")
        r = subprocess.run([str(PG_BIN / "pg_isready"), "-q", "-h", "127.0.0.1",
                            "-p", str(self.port)], check=False)
        return r.returncode == 0

    def stop(self, mode: str = "fast", timeout: float = 60) -> None:
        """fast: roll back and shut down; immediate: quit at once, as in a crash
        (the next start runs crash recovery)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        sig = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}[mode]
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


@dataclass
class RabbitNode:
    """One RabbitMQ node with its own name, ports, Mnesia directory and logs."""

    name: str  # e.g. hubchaos1234-1@localhost
    root: Path
    home: Path  # holds the Erlang cookie shared by this cluster's nodes only
    port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    closed: bool = False  # set by Services.close: start no more

    def env(self) -> dict[str, str]:
        return dict(
            os.environ,
            HOME=str(self.home),
            RABBITMQ_NODENAME=self.name,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.root / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.root / "log"),
            RABBITMQ_CONFIG_FILE=str(self.root / "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(self.root / "advanced.config"),
            RABBITMQ_CONF_ENV_FILE=str(self.root / "rabbitmq-env.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.root / "enabled_plugins"),
            RABBITMQ_PID_FILE=str(self.root / "rabbit.pid"),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=(
                "-kernel inet_dist_use_interface {127,0,0,1}"
                f" -kernel inet_dist_listen_min {self.dist_port}"
                f" -kernel inet_dist_listen_max {self.dist_port}"),
            ERL_EPMD_ADDRESS="127.0.0.1",
        )

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def prepare(self) -> None:
        (self.root / "log").mkdir(parents=True)
        (self.root / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
            "log.console = false\n"
            "log.file.level = warning\n"
            "disk_free_limit.absolute = 100MB\n"
            "vm_memory_high_watermark.relative = 0.15\n"
        )
        (self.root / "advanced.config").write_text("[].\n")
        (self.root / "rabbitmq-env.conf").write_text("")
        (self.root / "enabled_plugins").write_text("[].\n")

    def start(self) -> None:
        if self.closed:
            raise ServiceError("the chaos suite's services are closed")
        log = open(self.root / "log" / "console.log", "ab")  # noqa: SIM115 - held by the child
        self.proc = subprocess.Popen(
            [str(RABBIT_BIN / "rabbitmq-server")], env=self.env(), stdout=log, stderr=log,
            stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.root,
        )
        log.close()

    def wait_ready(self, timeout: float = 120) -> None:
        def up() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise ServiceError(f"RabbitMQ node {self.name} exited; see {self.root / 'log'}")
            return listening(self.port)

        _wait(up, timeout, f"RabbitMQ node {self.name}")

    def ctl(self, *args: str, timeout: float = 120) -> str:
        """rabbitmqctl against this node only (-n), with this cluster's cookie."""
        r = subprocess.run([str(RABBIT_BIN / "rabbitmqctl"), "-n", self.name, "-q", *args],
                           env=self.env(), capture_output=True, text=True, timeout=timeout,
                           check=False)
        if r.returncode != 0:
            raise ServiceError(f"rabbitmqctl -n {self.name} {' '.join(args)}: "
                               f"{(r.stderr or r.stdout).strip()[-300:]}")
        return r.stdout

    def stop(self, timeout: float = 60) -> None:
        """A clean shutdown (SIGTERM: the node stops its applications first)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._reap()

    def kill(self) -> None:
        """SIGKILL to the whole node (the Erlang VM and its helpers): a crash."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)
        # The VM itself may outlive the script that started it by a moment.
        _wait(lambda: not listening(self.port), 30, f"RabbitMQ node {self.name} to stop")

    def _reap(self) -> None:
        # The VM's helpers (erl_child_setup, inet_gethost) share its process group.
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)


@dataclass
class Services:
    """A private PostgreSQL and one or more clustered RabbitMQ nodes."""

    root: Path
    postgres: PrivatePostgres
    nodes: list[RabbitNode]
    keep: bool = False

    @classmethod
    def create(cls, rabbit_nodes: int = 1, keep: bool = False) -> Services:
        root = Path(tempfile.mkdtemp(prefix=PREFIX))
        root.chmod(0o755)  # the postgres user must reach its directory below
        (root / OWNER).write_text(str(os.getpid()))
        tag = f"hubchaos{os.getpid()}{secrets.token_hex(2)}"
        home = root / "rabbit-home"
        home.mkdir()
        cookie = home / ".erlang.cookie"
        cookie.write_text("".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
                                  for _ in range(20)))
        cookie.chmod(0o400)
        nodes = [RabbitNode(f"{tag}-{i + 1}@localhost", root / f"rabbit{i + 1}", home)
                 for i in range(rabbit_nodes)]
        return cls(root, PrivatePostgres(root / "pg"), nodes, keep)

    def start(self, say: Any = print) -> None:
        self.postgres.init()
        self.postgres.start()
        say(f"  private PostgreSQL on port {self.postgres.port}")
        for n in self.nodes:
            n.prepare()
            n.start()
        for n in self.nodes:
            n.wait_ready()
        first = self.nodes[0]
        for n in self.nodes[1:]:
            n.ctl("stop_app")
            n.ctl("join_cluster", first.name)
            n.ctl("start_app")
            n.wait_ready()
        ports = ", ".join(f"{n.name} on {n.port}" for n in self.nodes)
        say(f"  private RabbitMQ: {ports}"
            + (" (one cluster)" if len(self.nodes) > 1 else ""))

    def running_nodes(self) -> list[RabbitNode]:
        return [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]

    def close(self) -> None:
        for n in self.nodes:
            n.closed = True
        self.postgres.closed = True
        for n in self.nodes:
            with contextlib.suppress(ServiceError):
                n.kill()
        self.postgres.kill()
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)
        else:  # kept on purpose: not an orphan to reap
            (self.root / OWNER).unlink(missing_ok=True)


PREFIX = "hubchaos-"
OWNER = "owner.pid"  # the suite's process; its services live in sessions of their own


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_orphans() -> list[Path]:
    """Stop the services of suites that died without cleaning up (SIGKILL, as a
    test's timeout does): their PostgreSQL and RabbitMQ outlive them. Returns the
    directories removed."""
    reaped = []
    for root in Path(tempfile.gettempdir()).glob(PREFIX + "*"):
        try:
            owner = int((root / OWNER).read_text())
        except (OSError, ValueError):
            continue  # kept on purpose, or not ours
        if _alive(owner):
            continue
        marker = f"{root}/".encode()  # its data directories lie below it
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if marker in (entry / "cmdline").read_bytes():
                    os.kill(int(entry.name), signal.SIGKILL)
            except (OSError, ValueError):
                continue  # gone meanwhile, or not ours to kill
        shutil.rmtree(root, ignore_errors=True)
        reaped.append(root)
    return reaped
