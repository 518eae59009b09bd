"""The deployment files (deploy/) checked against the code, without Docker or network.

Commands are parsed by the real `hub` argument parser, environment variables must
be ones hub/config.py reads, broker names must exist in hub/broker/topology.py,
and each broker user's permissions are checked the way RabbitMQ applies them
(a pattern is searched in the resource name).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

yaml = pytest.importorskip("yaml")

from hub.broker import topology as topo  # noqa: E402
from hub.cli.main import _parser  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"

# `hub` subcommands the deployment uses before the parser knows them (being added
# by other work). Each is accepted only while the parser lacks it; once the parser
# has it, the command line is parsed like any other.
KNOWN_PENDING: set[str] = set()
# HUB_* variables read outside hub/config.py that deployment files may set.
EXTRA_ENV = {"HUB_CONSOLE_SECRET"}

SOURCES = ("dwp", "pds", "dfe", "la")
COUNCIL_USER = "council-383"
# The documented example passwords (deploy/README.md): "<user>-example-only".
EXAMPLE_PASSWORD = "{}-example-only"

# Files whose HUB_* variables and credentials are checked (not the README, which
# discusses variables in prose).
CONFIG_FILES = [
    DEPLOY / "Dockerfile",
    DEPLOY / "compose.yaml",
    DEPLOY / "rabbitmq" / "rabbitmq.conf",
    DEPLOY / "rabbitmq" / "definitions.json",
    *sorted(K8S.glob("*.yaml")),
]


# -- helpers -----------------------------------------------------------------------


def _load_yaml(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _compose() -> dict[str, Any]:
    (doc,) = _load_yaml(DEPLOY / "compose.yaml")
    return doc


def _definitions() -> dict[str, Any]:
    return json.loads((DEPLOY / "rabbitmq" / "definitions.json").read_text())


def _k8s_docs() -> list[dict[str, Any]]:
    return [doc for path in sorted(K8S.glob("*.yaml")) for doc in _load_yaml(path)
            if "kind" in doc and doc["kind"] != "Kustomization"]


def _subcommands() -> set[str]:
    for action in _parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    raise AssertionError("the hub parser has no subcommands")


def _assert_hub_command(argv: list[str]) -> None:
    """argv (without the `hub` program name) is a real hub command line."""
    assert argv, "empty hub command"
    if argv[0] not in _subcommands():
        assert argv[0] in KNOWN_PENDING, f"`hub {argv[0]}` is not a hub command"
        return
    try:
        _parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage
        raise AssertionError(f"`hub {' '.join(argv)}` is not valid usage") from exc


def _config_env_names() -> set[str]:
    src = (ROOT / "hub" / "config.py").read_text()
    names = set(re.findall(r'"(HUB_[A-Z0-9_]+)"', src))
    if 'f"{name}_FILE"' in src:  # _from_env (and _url, through it) reads NAME_FILE too
        names |= {f"{n}_FILE" for n in re.findall(r'_(?:from_env|url)\(\s*"(HUB_[A-Z0-9_]+)"', src)}
    return names


def _permission(user: str) -> dict[str, str]:
    (perm,) = [p for p in _definitions()["permissions"] if p["user"] == user]
    return perm


def _topic_permissions(user: str) -> list[dict[str, str]]:
    return [p for p in _definitions().get("topic_permissions", []) if p["user"] == user]


def _allows(pattern: str, name: str) -> bool:
    """RabbitMQ: the resource name is searched for the pattern (re:run)."""
    return re.search(pattern, name) is not None


def _literal(pattern: str) -> str | None:
    """The one name a ^literal$ pattern allows, or None for "^$" (nothing)."""
    m = re.fullmatch(r"\^((?:[^\\^$.*+?()\[\]{}|]|\\\.)*)\$", pattern)
    assert m, f"not a plain ^literal$ pattern: {pattern!r}"
    return m.group(1).replace("\\.", ".") or None


def _topology_names() -> set[str]:
    return {topo.INGEST, topo.NOTIFICATIONS, topo.UNROUTED, topo.DEAD, topo.HELD,
            topo.INBOUND, topo.PARKING_DEAD, *(topo.retry_queue(d) for d in topo.RETRY_DELAYS)}


def _password_hash(password: str, salt: bytes) -> str:
    """rabbit_password_hashing_sha256: base64(salt + sha256(salt + password))."""
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


# -- every file parses -------------------------------------------------------------


def test_every_yaml_and_json_file_parses() -> None:
    yamls = sorted(DEPLOY.rglob("*.yaml")) + sorted(DEPLOY.rglob("*.yml"))
    jsons = sorted(DEPLOY.rglob("*.json"))
    assert len(yamls) >= 8 and jsons
    for path in yamls:
        assert _load_yaml(path), path
    for path in jsons:
        json.loads(path.read_text())


# -- Dockerfile --------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_base_user_entrypoint_and_default_command() -> None:
    ins = _dockerfile()
    assert ("FROM", "python:3.11-slim") in ins
    users = [rest for word, rest in ins if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert json.loads(next(r for w, r in ins if w == "ENTRYPOINT")) == ["hub"]
    cmd = json.loads(next(r for w, r in ins if w == "CMD"))
    assert cmd == ["run", "--workers", "2"]
    _assert_hub_command(cmd)
    assert any(w == "RUN" and re.search(r"pip install (\S+ )*'?\.(\[[\w,]+\])?'?(\s|$)", r)
               for w, r in ins)
    # The image runs the matching path compiled, as CI does (hub.native).
    assert any(w == "RUN" and "hub native build" in r and "'^fresh'" in r for w, r in ins)
    healthcheck = next(r for w, r in ins if w == "HEALTHCHECK")
    assert "CMD" in healthcheck and "wait" not in healthcheck  # not queue state


def test_dockerfile_bakes_in_no_secrets() -> None:
    for word, rest in _dockerfile():
        if word in ("ENV", "ARG"):
            assert not re.search(r"PASSWORD|SECRET|TOKEN|_URL\b|_URL=", rest), rest
        if word == "COPY":
            assert "secrets" not in rest, rest
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert "**" in ignore  # the context is only what is explicitly let in


# -- environment variables and credentials -----------------------------------------


def test_hub_variables_are_ones_the_hub_reads() -> None:
    known = _config_env_names() | EXTRA_ENV
    assert {"HUB_AMQP_URL_FILE", "HUB_DATABASE_URL_FILE", "HUB_BATCH_SIZE"} <= known
    for path in CONFIG_FILES:
        for name in set(re.findall(r"\bHUB_[A-Z0-9_]+\b", path.read_text())):
            assert name in known, f"{path.relative_to(ROOT)}: {name} is not read by the hub"


def test_no_credentials_outside_examples_and_templates() -> None:
    for path in CONFIG_FILES:
        if path.name.endswith(".example.yaml"):
            continue
        text = path.read_text()
        assert not re.search(r"\w+://[^/\s:@]+:[^@\s/]+@", text), path  # user:pass@ in a URL
        assert "PASSWORD=" not in text and "POSTGRES_PASSWORD:" not in text, path


# -- compose -----------------------------------------------------------------------


def _service_argv(service: dict[str, Any]) -> list[str]:
    cmd = service["command"]
    return cmd.split() if isinstance(cmd, str) else list(cmd)


def test_compose_three_rabbitmq_nodes_clustered_by_classic_config() -> None:
    services = _compose()["services"]
    nodes = {name: s for name, s in services.items()
             if str(s.get("image", "")).startswith("rabbitmq:")}
    assert len(nodes) == 3
    hostnames = {s["hostname"] for s in nodes.values()}
    assert len(hostnames) == 3
    conf: dict[str, str] = {}
    for line in (DEPLOY / "rabbitmq" / "rabbitmq.conf").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            conf[key.strip()] = value.strip()
    assert conf["cluster_formation.peer_discovery_backend"] in (
        "classic_config", "rabbit_peer_discovery_classic_config")
    listed = {v for k, v in conf.items() if k.startswith("cluster_formation.classic_config.nodes.")}
    assert listed == {f"rabbit@{h}" for h in hostnames}
    for s in nodes.values():
        assert s["image"] == "rabbitmq:3.10-management"
        assert "erlang_cookie" in s["secrets"]
        assert ".erlang.cookie" in " ".join(s["entrypoint"])
        targets = {c["target"]: c["source"] for c in s["configs"]}
        assert targets["/etc/rabbitmq/rabbitmq.conf"] == "rabbitmq_conf"
        assert targets[conf["load_definitions"]] == "rabbitmq_definitions"
        assert any(str(v).endswith(":/var/lib/rabbitmq") for v in s["volumes"])
    configs = _compose()["configs"]
    assert (DEPLOY / configs["rabbitmq_definitions"]["file"]).resolve() == (
        DEPLOY / "rabbitmq" / "definitions.json")
    assert (DEPLOY / configs["rabbitmq_conf"]["file"]).is_file()


def test_compose_postgres_15_with_a_volume() -> None:
    compose = _compose()
    pg = compose["services"]["postgres"]
    assert pg["image"] == "postgres:15"
    volume = pg["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]
    assert pg["environment"]["POSTGRES_PASSWORD_FILE"].startswith("/run/secrets/")


def test_compose_hub_services_run_real_hub_commands() -> None:
    services = _compose()["services"]
    assert _service_argv(services["setup"]) == ["setup"]
    assert _service_argv(services["worker"])[0] == "run"
    assert services["worker"]["deploy"]["replicas"] == 2
    assert _service_argv(services["console"])[:1] == ["console"]
    assert "--port" in _service_argv(services["console"])
    for name in ("setup", "worker", "console"):
        _assert_hub_command(_service_argv(services[name]))
    assert services["worker"]["depends_on"]["setup"]["condition"] == (
        "service_completed_successfully")


def test_compose_hub_services_take_urls_from_secret_files() -> None:
    compose = _compose()
    for name in ("setup", "worker", "console"):
        service = compose["services"][name]
        env = service["environment"]
        assert "HUB_AMQP_URL" not in env and "HUB_DATABASE_URL" not in env
        for var in ("HUB_AMQP_URL_FILE", "HUB_DATABASE_URL_FILE"):
            secret = env[var].removeprefix("/run/secrets/")
            assert env[var] == f"/run/secrets/{secret}" and secret in service["secrets"]
    for secret in compose["secrets"].values():
        real = DEPLOY / secret["file"]
        assert real.parent == DEPLOY / "secrets"
        assert real.with_name(real.name + ".example").is_file(), f"no example for {real}"
    ignore = (DEPLOY / "secrets" / ".gitignore").read_text().split()
    assert "*" in ignore and "!*.example" in ignore


def test_example_secrets_fit_together() -> None:
    secrets = DEPLOY / "secrets"
    amqp = urlsplit((secrets / "amqp_url.example").read_text().strip())
    hosts = {s.get("hostname") for s in _compose()["services"].values()}
    assert amqp.username == "hub" and amqp.hostname in hosts and amqp.path == "/hub"
    assert amqp.password == EXAMPLE_PASSWORD.format("hub")
    db = urlsplit((secrets / "database_url.example").read_text().strip())
    assert db.hostname in _compose()["services"] and db.path == "/hub"
    assert db.password == (secrets / "postgres_password.example").read_text().strip()


# -- RabbitMQ definitions ----------------------------------------------------------


def test_definitions_vhost_users_and_importable_hashes() -> None:
    d = _definitions()
    assert [v["name"] for v in d["vhosts"]] == ["hub"]
    users = {u["name"]: u for u in d["users"]}
    assert set(users) == {"hub", *SOURCES, COUNCIL_USER}
    for name, user in users.items():
        assert user["hashing_algorithm"] == "rabbit_password_hashing_sha256"
        raw = base64.b64decode(user["password_hash"], validate=True)
        assert len(raw) == 4 + 32
        assert user["password_hash"] == _password_hash(EXAMPLE_PASSWORD.format(name), raw[:4])
        assert user["tags"] in ([], ""), f"{name} must have no tags"
    assert all(p["vhost"] == "hub" for p in d["permissions"] + d["topic_permissions"])


def test_hub_user_can_use_its_whole_topology() -> None:
    perm = _permission("hub")
    names = _topology_names() | {topo.held_queue("dwp"), topo.council_queue("383")}
    for name in names:
        for what in ("configure", "write", "read"):
            assert _allows(perm[what], name), (what, name)
    assert _allows(perm["write"], "amq.default")  # retries go through the default exchange
    assert not _allows(perm["configure"], "amq.default")
    assert not _topic_permissions("hub")


@pytest.mark.parametrize("source", SOURCES)
def test_source_user_writes_only_its_own_routing_key_to_ingest(source: str) -> None:
    perm = _permission(source)
    assert perm["configure"] == "^$" and perm["read"] == "^$"
    assert _literal(perm["write"]) == topo.INGEST
    for other in _topology_names() - {topo.INGEST} | {"amq.default"}:
        assert not _allows(perm["write"], other), other
    (topic,) = _topic_permissions(source)
    assert topic["exchange"] == topo.INGEST
    assert topic["read"] == "^$"
    assert _literal(topic["write"]) == f"source.{source}"
    assert _allows(topic["write"], f"source.{source}")
    for key in [f"source.{s}" for s in SOURCES if s != source] + [f"source.{source}x"]:
        assert not _allows(topic["write"], key), key


def test_council_user_reads_only_its_own_queue() -> None:
    la = COUNCIL_USER.removeprefix("council-")
    perm = _permission(COUNCIL_USER)
    assert perm["configure"] == "^$" and perm["write"] == "^$"
    assert _literal(perm["read"]) == topo.council_queue(la)
    assert not _allows(perm["read"], topo.council_queue("384"))
    assert not _allows(perm["read"], topo.council_queue(la + "0"))
    for other in _topology_names():
        assert not _allows(perm["read"], other), other
    assert not _topic_permissions(COUNCIL_USER)


def test_names_in_definitions_exist_in_the_topology() -> None:
    d = _definitions()
    known = _topology_names()
    council = re.compile(re.escape(topo.council_queue("@")).replace("@", r"\d{3}"))
    mentioned = {x["name"] for x in d.get("exchanges", []) + d.get("queues", [])}
    mentioned |= {t["exchange"] for t in d.get("topic_permissions", [])}
    for p in d["permissions"]:
        if p["user"] != "hub":  # the hub's own patterns are checked above
            mentioned |= {_literal(p[w]) for w in ("configure", "write", "read")} - {None}
    assert mentioned
    for name in mentioned:
        assert name in known or council.fullmatch(name), name


# -- Kubernetes --------------------------------------------------------------------


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc["spec"]["template"]["spec"]["containers"]


def _by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in _k8s_docs() if d["kind"] == kind}


def test_k8s_kinds_and_api_versions() -> None:
    expected = {
        "RabbitmqCluster": "rabbitmq.com/v1beta1",
        "Cluster": "postgresql.cnpg.io/v1",
        "Deployment": "apps/v1",
        "Job": "batch/v1",
        "Secret": "v1",
        "ScaledObject": "keda.sh/v1alpha1",
        "TriggerAuthentication": "keda.sh/v1alpha1",
    }
    docs = _k8s_docs()
    for kind, api in expected.items():
        found = [d for d in docs if d["kind"] == kind]
        assert found, kind
        assert all(d["apiVersion"] == api for d in found), kind
    assert set(_by_kind("Deployment")) == {"hub-worker", "hub-console"}
    (kustomization,) = _load_yaml(K8S / "kustomization.yaml")
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file(), resource


def test_k8s_rabbitmq_cluster_imports_the_definitions() -> None:
    (rabbit,) = _by_kind("RabbitmqCluster").values()
    assert rabbit["spec"]["replicas"] == 3
    assert rabbit["spec"]["image"].startswith("rabbitmq:3.10")
    config = rabbit["spec"]["rabbitmq"]["additionalConfig"]
    path = re.search(r"load_definitions\s*=\s*(\S+)", config).group(1)
    pod = rabbit["spec"]["override"]["statefulSet"]["spec"]["template"]["spec"]
    (mount,) = [m for c in pod["containers"] for m in c["volumeMounts"]]
    assert path == f"{mount['mountPath']}/definitions.json"
    assert any(v["name"] == mount["name"] for v in pod["volumes"])


def test_k8s_postgres_cluster() -> None:
    (pg,) = _by_kind("Cluster").values()
    assert pg["spec"]["instances"] == 3
    assert pg["spec"]["bootstrap"]["initdb"] == {"database": "hub", "owner": "hub"}
    assert "15" in pg["spec"]["imageName"]
    roles = {r["name"] for r in pg["spec"].get("managed", {}).get("roles", [])}
    assert "hub_reader" in roles  # migration 0003 needs it; the owner cannot create roles


def _check_hub_pod(doc: dict[str, Any], secrets: dict[str, dict[str, Any]]) -> None:
    pod = doc["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    for c in pod["containers"]:
        _assert_hub_command(c["args"])
        assert "command" not in c  # the image's ENTRYPOINT is `hub`
        env = {e["name"]: e for e in c["env"]}
        assert "HUB_AMQP_URL" not in env and "HUB_DATABASE_URL" not in env
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        for var, key in (("HUB_AMQP_URL_FILE", "amqp-url"),
                         ("HUB_DATABASE_URL_FILE", "database-url")):
            path = Path(env[var]["value"])
            assert path.name == key
            mount = mounts[str(path.parent)]
            secret_name = volumes[mount["name"]]["secret"]["secretName"]
            assert key in secrets[secret_name]["stringData"]
        for name, e in env.items():
            if name == "HUB_CONSOLE_SECRET":
                ref = e["valueFrom"]["secretKeyRef"]
                assert ref["key"] in secrets[ref["name"]]["stringData"]
        assert c["securityContext"]["allowPrivilegeEscalation"] is False


def test_k8s_hub_pods_run_hub_commands_with_urls_from_secret_files() -> None:
    secrets = _by_kind("Secret")
    assert all("CHANGE-ME" in v for s in secrets.values() for v in s["stringData"].values())
    for doc in [*_by_kind("Deployment").values(), *_by_kind("Job").values()]:
        _check_hub_pod(doc, secrets)
    (job,) = _by_kind("Job").values()
    assert _containers(job)[0]["args"] == ["setup"]


def test_k8s_deployments_have_probes_and_resources() -> None:
    for name, doc in _by_kind("Deployment").items():
        for c in _containers(doc):
            assert c["livenessProbe"] and c["readinessProbe"], name
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][kind]), (name, kind)
    (worker,) = _containers(_by_kind("Deployment")["hub-worker"])
    assert worker["args"][0] == "run"
    liveness = " ".join(worker["livenessProbe"]["exec"]["command"])
    assert "wait" not in liveness and "hub." in liveness  # never on queue state
    (console,) = _containers(_by_kind("Deployment")["hub-console"])
    assert console["args"][:1] == ["console"]
    port = console["args"][console["args"].index("--port") + 1]
    assert console["readinessProbe"]["httpGet"]["path"] == "/metrics"
    named = {p["name"]: p["containerPort"] for p in console["ports"]}
    assert named[console["readinessProbe"]["httpGet"]["port"]] == int(port)


def test_keda_scales_the_worker_on_hub_inbound() -> None:
    (scaled,) = _by_kind("ScaledObject").values()
    target = scaled["spec"]["scaleTargetRef"]
    assert target["name"] == "hub-worker" and target.get("kind", "Deployment") == "Deployment"
    # `hub run` also relays the outbox and parks dead letters: never scale to zero.
    assert scaled["spec"]["minReplicaCount"] >= 1
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "rabbitmq"
    assert trigger["metadata"]["queueName"] == topo.INBOUND
    auth = _by_kind("TriggerAuthentication")[trigger["authenticationRef"]["name"]]
    (ref,) = auth["spec"]["secretTargetRef"]
    assert ref["parameter"] == "host"
    assert ref["key"] in _by_kind("Secret")[ref["name"]]["stringData"]


# -- pinned versions ---------------------------------------------------------------

def _pins() -> dict[str, str]:
    pins = {}
    for line in (DEPLOY / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def _direct_requirements() -> list[Requirement]:
    project = tomllib.loads((DEPLOY.parent / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in
            [*project["dependencies"], *project["optional-dependencies"]["test"],
             *project["optional-dependencies"]["native"]]]


def test_every_dependency_is_pinned_within_its_range() -> None:
    pins = _pins()
    for req in _direct_requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in deploy/constraints.txt"
        assert req.specifier.contains(pins[name]), (req, pins[name])


def test_the_suite_runs_on_the_pinned_versions() -> None:
    """What CI passes with is what the constraints name (install.sh installs them)."""
    pins = _pins()
    for req in _direct_requirements():
        installed = metadata.version(req.name)
        assert installed == pins[canonicalize_name(req.name)], (
            f"{req.name} {installed} installed, {pins[canonicalize_name(req.name)]} pinned:"
            " run deploy/install.sh test, or move the pin (deploy/constraints.txt)")
