from pathlib import Path

import pytest

from hub.config import DEFAULT_AMQP_URL, DEFAULT_DATABASE_URL, ConfigError, Settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HUB_AMQP_URL", "HUB_DATABASE_URL", "HUB_AMQP_URL_FILE", "HUB_DATABASE_URL_FILE"):
        monkeypatch.delenv(var, raising=False)
    s = Settings.from_env()
    assert (s.amqp_url, s.database_url) == (DEFAULT_AMQP_URL, DEFAULT_DATABASE_URL)


def test_secrets_from_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "db").write_text("postgresql://hub:s3cret@db:5432/hub\n")
    monkeypatch.setenv("HUB_DATABASE_URL", "postgresql://ignored/x")
    monkeypatch.setenv("HUB_DATABASE_URL_FILE", str(tmp_path / "db"))
    assert Settings.from_env().database_url == "postgresql://hub:s3cret@db:5432/hub"
    monkeypatch.setenv("HUB_DATABASE_URL_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError):
        Settings.from_env()
