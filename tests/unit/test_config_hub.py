"""The hub's settings: auth by default off the loopback, and refusals that say why."""

from __future__ import annotations

from pathlib import Path

import pytest

from testfleet.hub.config import DEFAULT_PORT, HubConfig, default_data_dir, is_loopback


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.5", True),
        ("127.255.255.254", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.1", False),
        ("192.168.1.20", False),
        ("128.0.0.1", False),
        ("example.com", False),
        ("localhost.example.com", False),
        ("", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_auth_is_off_by_default_on_loopback(host: str) -> None:
    config = HubConfig(host=host)
    assert config.auth_enabled is False
    config.check()


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.1", "::", "hub.example.com"])
def test_auth_is_on_by_default_elsewhere(host: str) -> None:
    config = HubConfig(host=host)
    assert config.auth_enabled is True
    config.check()


def test_auth_can_be_asked_for_on_loopback() -> None:
    assert HubConfig(host="127.0.0.1", auth=True).auth_enabled is True


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.1", "hub.example.com"])
def test_no_auth_off_the_loopback_is_refused(host: str) -> None:
    config = HubConfig(host=host, auth=False)
    assert config.auth_enabled is False
    with pytest.raises(ValueError, match=f"refusing to serve on {host} without auth"):
        config.check()


def test_the_refusal_names_both_ways_out() -> None:
    with pytest.raises(ValueError) as caught:
        HubConfig(host="0.0.0.0", auth=False).check()
    assert "--auth" in str(caught.value) and "--insecure-no-auth" in str(caught.value)


def test_insecure_no_auth_allows_it() -> None:
    config = HubConfig(host="0.0.0.0", auth=False, insecure_no_auth=True)
    config.check()
    assert config.auth_enabled is False


def test_no_auth_on_loopback_needs_no_permission() -> None:
    HubConfig(host="127.0.0.1", auth=False).check()


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("event_timeout", 0.0, "event-timeout must be positive"),
        ("heartbeat_interval", -1.0, "heartbeat-interval must be positive"),
        ("agent_timeout", 0.0, "agent-timeout must be positive"),
        ("device_lease_ttl", 0.0, "device-lease-ttl must be positive"),
        ("job_lease_ttl", -5.0, "job-lease-ttl must be positive"),
        ("agent_timeout", 1.0, "agent-timeout must be longer than heartbeat-interval"),
    ],
)
def test_timings_that_make_no_sense_are_refused(field: str, value: float, words: str) -> None:
    config = HubConfig()
    setattr(config, field, value)
    with pytest.raises(ValueError, match=words):
        config.check()


def test_the_database_defaults_to_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    config = HubConfig(data_dir=tmp_path)
    assert config.database_url == f"sqlite:///{tmp_path / 'testfleet.db'}"
    given = "postgresql://hub@db/testfleet"
    assert HubConfig(data_dir=tmp_path, db_url=given).database_url == given


def test_server_id_is_given_or_host_and_port() -> None:
    assert HubConfig(server_id="hub-1").effective_server_id == "hub-1"
    assert HubConfig().effective_server_id.endswith(f":{DEFAULT_PORT}")


def test_data_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TESTFLEET_DATA_DIR", str(tmp_path / "tf"))
    assert default_data_dir() == tmp_path / "tf"
    monkeypatch.delenv("TESTFLEET_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_data_dir() == tmp_path / "xdg" / "testfleet"
