"""The deployment files give each hub process only its own database login: the
owner's URL reaches `hub setup` (and the one-shot that makes the logins) alone;
workers and the console log in as members of hub_worker and hub_operator, over
verified TLS on Kubernetes. Checked statically against the code's role names."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from hub.db.migrate import migrations
from hub.db.roles import ROLES

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
OWNER = "hub"


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / "compose.yaml").read_text()))


def _k8s(kind: str) -> dict[str, dict[str, Any]]:
    docs: dict[str, dict[str, Any]] = {}
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == kind:
                docs[doc["metadata"]["name"]] = doc
    return docs


def _example(secret: str) -> str:
    return (DEPLOY / "secrets" / f"{secret}.example").read_text().strip()


def test_the_roles_migration_creates_the_roles_the_code_grants() -> None:
    sql = dict(migrations())["0007_roles"]
    created = re.search(r"ARRAY\[([^\]]+)\]", sql)
    assert created is not None
    assert set(re.findall(r"'(\w+)'", created.group(1))) == set(ROLES.values())
    assert not re.search(r"GRANT[^;]*(UPDATE|DELETE|TRUNCATE|ALL)[^;]*audit_log", sql)


def test_compose_only_setup_and_the_login_maker_see_the_owners_url() -> None:
    services = _compose()["services"]
    logins: dict[str, tuple[str, str]] = {}
    argv = shlex.split(" ".join(services["db-logins"]["entrypoint"][2:]))
    for i, word in enumerate(argv):
        if word == "add":
            name, role = argv[i + 1], argv[argv.index("--role", i) + 1]
            secret = argv[argv.index("--password-file", i) + 1].removeprefix("/run/secrets/")
            logins[name] = (role, _example(secret))
    assert {role for role, _ in logins.values()} == {"worker", "operator"}
    for name in ("setup", "db-logins"):
        assert "database_url" in services[name]["secrets"]
    for name, role in (("worker", "worker"), ("console", "operator")):
        service = services[name]
        assert "database_url" not in service["secrets"]
        secret = service["environment"]["HUB_DATABASE_URL_FILE"].removeprefix("/run/secrets/")
        assert secret in service["secrets"]
        url = urlsplit(_example(secret))
        assert url.username != OWNER and url.username in logins
        assert logins[url.username] == (role, url.password)
        assert services[name]["depends_on"]["db-logins"]["condition"] == (
            "service_completed_successfully")


def test_k8s_pods_mount_only_their_own_login_over_verified_tls() -> None:
    (urls,) = [s["stringData"] for s in _k8s("Secret").values()
               if s["metadata"]["name"] == "hub-urls"]
    (cluster,) = _k8s("Cluster").values()
    managed = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
    for group in ROLES.values():
        assert managed[group]["login"] is False
    deployments = _k8s("Deployment")
    for name, role in (("hub-worker", "worker"), ("hub-console", "operator")):
        pod = deployments[name]["spec"]["template"]["spec"]
        (volume,) = [v for v in pod["volumes"] if v.get("secret", {}).get("secretName")
                     == "hub-urls"]
        items = {i["path"]: i["key"] for i in volume["secret"]["items"]}
        key = items["database-url"]
        assert key != "database-url" and "database-url" not in items.values()
        url = urlsplit(urls[key])
        login = managed[url.username]
        assert login["login"] is True and login["inRoles"] == [ROLES[role]]
        assert login["passwordSecret"]["name"]
        query = parse_qs(url.query)
        assert query["sslmode"] == ["verify-full"]
        ca = Path(query["sslrootcert"][0])
        mounts = {m["mountPath"]: m["name"] for c in pod["containers"]
                  for m in c["volumeMounts"]}
        ca_volume = {v["name"]: v for v in pod["volumes"]}[mounts[str(ca.parent)]]
        assert ca.name in {i["path"] for i in ca_volume["secret"]["items"]}
    (job,) = _k8s("Job").values()
    (volume,) = [v for v in job["spec"]["template"]["spec"]["volumes"]
                 if v.get("secret", {}).get("secretName") == "hub-urls"]
    assert urlsplit(urls["database-url"]).username == OWNER  # setup: the owner, alone


def test_definitions_hold_no_administrator_nor_wildcard_user() -> None:
    import json

    defs = json.loads((DEPLOY / "rabbitmq" / "definitions.json").read_text())
    assert all(not u["tags"] for u in defs["users"])
    for p in defs["permissions"]:
        assert ".*" not in (p["configure"], p["write"], p["read"]), p
