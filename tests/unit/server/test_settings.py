"""The server refuses default or missing secrets outside development mode."""

import pytest

from dev8.core.errors import InvalidInput
from dev8.server.settings import Settings, load_settings
from dev8.store.secretbox import new_key


def test_production_needs_a_secret_key(tmp_path):
    with pytest.raises(InvalidInput, match="DEV8_SECRET_KEY is not set"):
        Settings(server_dir=tmp_path).check()
    Settings(server_dir=tmp_path, secret_key=new_key()).check()


@pytest.mark.parametrize("key", ["changeme", "secret", "dev8"])
def test_placeholder_keys_are_refused_even_in_development(tmp_path, key):
    with pytest.raises(InvalidInput, match="placeholder"):
        Settings(server_dir=tmp_path, secret_key=key, dev=True).check()


@pytest.mark.parametrize("password", ["admin", "changeme", "password"])
def test_default_admin_passwords_are_refused(tmp_path, password):
    with pytest.raises(InvalidInput, match="well-known"):
        Settings(server_dir=tmp_path, secret_key=new_key(), admin_password=password).check()


def test_development_mode_makes_a_private_key_file(tmp_path):
    settings = Settings(server_dir=tmp_path, dev=True)
    settings.check()
    box = settings.secret_box()
    assert box.open(box.seal({"A": "1"})) == {"A": "1"}
    assert oct((tmp_path / "development.key").stat().st_mode & 0o777) == "0o600"


def test_settings_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DEV8_PORT", "9999")
    monkeypatch.setenv("DEV8_IDLE_TIMEOUT_S", "0")
    settings = Settings(server_dir=tmp_path)
    assert (settings.port, settings.idle_timeout_s) == (9999, 0)
    assert settings.database().startswith("sqlite:///")


def test_a_misspelt_setting_stops_the_server_with_what_it_probably_meant(tmp_path, monkeypatch):
    monkeypatch.setenv("DEV8_IDLE_TIMEOUT", "60")  # the setting is DEV8_IDLE_TIMEOUT_S
    with pytest.raises(InvalidInput, match="did you mean DEV8_IDLE_TIMEOUT_S"):
        Settings(server_dir=tmp_path, dev=True).check()


def test_an_unknown_variable_is_named_in_a_warning(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("DEV8_SOMETHING_ELSE", "1")
    monkeypatch.setenv("DEV8_TOKEN", "read by the CLI, not a setting")
    monkeypatch.setenv("DEV8_KUBERNETES_NAMESPACE", "read by the Kubernetes provider")
    Settings(server_dir=tmp_path, dev=True).check()
    warned = [record.getMessage() for record in caplog.records]
    assert warned == ["DEV8_SOMETHING_ELSE is set but is not a dev8 setting; it is ignored"]


def test_every_bad_value_is_named():
    with pytest.raises(InvalidInput, match=r"DEV8_PORT: .*; DEV8_TOKEN_DAYS: "):
        load_settings(port="x", token_days=0)
    with pytest.raises(InvalidInput, match="DEV8_BOGUS"):
        load_settings(bogus=1)
