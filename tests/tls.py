"""Private TLS-only PostgreSQL and RabbitMQ for the transport tests, with
certificates from a local CA made here. Never the machine's own services: their
own data directories, ports, node name and Erlang cookie, stopped at the end."""

from __future__ import annotations

import contextlib
import datetime
import glob
import ipaddress
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that signed nothing here: trusting it must fail


def make_pki(folder: Path) -> Pki:
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    valid = (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=1))

    def ca(cn: str, path: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(valid[0]).not_valid_after(valid[1])
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(
                    digital_signature=True, key_cert_sign=True, crl_sign=True,
                    content_commitment=False, key_encipherment=False, data_encipherment=False,
                    key_agreement=False, encipher_only=False, decipher_only=False),
                    critical=True)
                .sign(key, hashes.SHA256()))
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return key, cert

    ca_key, ca_cert = ca("hub test CA", folder / "ca.pem")
    ca("an unrelated CA", folder / "other-ca.pem")

    def leaf(cn: str, usage: x509.ObjectIdentifier, stem: str) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder().subject_name(_name(cn))
                   .issuer_name(ca_cert.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(valid[0]).not_valid_after(valid[1])
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                                  critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if usage == ExtendedKeyUsageOID.SERVER_AUTH:
            builder = builder.add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        (folder / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, folder / f"{stem}.key")

    leaf("localhost", ExtendedKeyUsageOID.SERVER_AUTH, "server")
    leaf("hub", ExtendedKeyUsageOID.CLIENT_AUTH, "client")
    return Pki(folder / "ca.pem", folder / "server.pem", folder / "server.key",
               folder / "client.pem", folder / "client.key", folder / "other-ca.pem")


def _wait_port(port: int, proc: subprocess.Popen[bytes] | None, what: str, log: Path,
               timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited {proc.returncode}: {log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.3)
    raise RuntimeError(f"{what} did not listen on {port}: {log.read_text()[-3000:]}")


class PrivatePostgres:
    """initdb in a temporary directory, run as the postgres OS user on its own port:
    TLS only (hostnossl is rejected), SCRAM passwords, client certificates from the CA."""

    def __init__(self, folder: Path, pki: Pki) -> None:
        self.folder, self.port = folder, free_port()
        self.password = secrets.token_urlsafe(16)
        bindir = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))[-1]).parent
        self.pg_ctl = str(bindir / "pg_ctl")
        pg = pwd.getpwnam("postgres")
        self.data = folder / "data"
        certs = folder / "certs"
        certs.mkdir()
        for src, name in ((pki.server_cert, "server.pem"), (pki.server_key, "server.key"),
                          (pki.ca, "ca.pem")):
            shutil.copy(src, certs / name)
        (folder / "pw").write_text(self.password)
        for path in (folder, certs, *certs.iterdir(), folder / "pw"):
            os.chown(path, pg.pw_uid, pg.pw_gid)
        (certs / "server.key").chmod(0o600)
        self.log = folder / "postgres.log"
        self._as_postgres(str(bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                          "--auth-local=trust", "--auth-host=reject",
                          f"--pwfile={folder / 'pw'}", "-E", "UTF8")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"""
listen_addresses = '127.0.0.1'
port = {self.port}
unix_socket_directories = '{folder}'
ssl = on
ssl_cert_file = '{certs / "server.pem"}'
ssl_key_file = '{certs / "server.key"}'
ssl_ca_file = '{certs / "ca.pem"}'
ssl_min_protocol_version = 'TLSv1.2'
password_encryption = 'scram-sha-256'
max_connections = 50
""")
        (self.data / "pg_hba.conf").write_text(
            "local all postgres trust\n"
            "hostssl all all 127.0.0.1/32 scram-sha-256 clientcert=verify-ca\n"
            "hostnossl all all 0.0.0.0/0 reject\n")
        self._as_postgres(self.pg_ctl, "-D", str(self.data), "-l", str(self.log), "-w",
                          "-t", "60", "start")
        _wait_port(self.port, None, "postgres", self.log)

    def _as_postgres(self, *cmd: str) -> None:
        proc = subprocess.run(["runuser", "-u", "postgres", "--", *cmd], capture_output=True,
                              text=True, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed: {proc.stderr or proc.stdout}")

    def url(self, user: str, password: str, database: str, pki: Pki, *,
            ca: Path | None = None, sslmode: str = "verify-full") -> str:
        return (f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{database}"
                f"?sslmode={sslmode}&sslrootcert={ca or pki.ca}"
                f"&sslcert={pki.client_cert}&sslkey={pki.client_key}")

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._as_postgres(self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop")


class PrivateRabbit:
    """A RabbitMQ node of its own (name, ports, Mnesia, logs, cookie) with a TLS
    listener only, requiring a client certificate signed by the CA."""

    def __init__(self, folder: Path, pki: Pki) -> None:
        self.folder = folder
        self.port, self.dist_port = free_port(), free_port()
        self.node = f"hubtls{secrets.token_hex(4)}@localhost"
        self.user, self.password = "hubtls", secrets.token_urlsafe(16)
        (folder / "rabbitmq.conf").write_text(f"""
listeners.tcp = none
listeners.ssl.default = 127.0.0.1:{self.port}
ssl_options.cacertfile = {pki.ca}
ssl_options.certfile = {pki.server_cert}
ssl_options.keyfile = {pki.server_key}
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = true
ssl_options.versions.1 = tlsv1.3
ssl_options.versions.2 = tlsv1.2
default_user = {self.user}
default_pass = {self.password}
loopback_users = none
""")
        (folder / "enabled_plugins").write_text("[].\n")
        (folder / "rabbitmq-env.conf").write_text("")
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "HOME": str(folder),  # its own Erlang cookie
            "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(folder / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(folder / "log"),
            "RABBITMQ_PID_FILE": str(folder / "rabbit.pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        self.log = folder / "server.out"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(["/usr/lib/rabbitmq/bin/rabbitmq-server"], env=self.env,
                                         stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        _wait_port(self.port, self.proc, "rabbitmq-server", self.log, timeout=120)
        self.ctl("await_startup")

    def ctl(self, *args: str) -> str:
        proc = subprocess.run(["/usr/lib/rabbitmq/bin/rabbitmqctl", "-n", self.node, "-q",
                               *args], env=self.env, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {args[0]} failed: {proc.stderr or proc.stdout}")
        return proc.stdout

    def url(self, pki: Pki, *, ca: Path | None = None, client_cert: bool = True,
            scheme: str = "amqps") -> str:
        query = f"cafile={ca or pki.ca}"
        if client_cert:
            query += f"&certfile={pki.client_cert}&keyfile={pki.client_key}"
        return f"{scheme}://{self.user}:{self.password}@127.0.0.1:{self.port}/?{query}"

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.ctl("stop")
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
        # Its epmd registration goes with it; nothing else of it is left running.
