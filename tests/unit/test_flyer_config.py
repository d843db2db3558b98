"""The flyer function's settings: environment variables and DATABASE_URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from flyer_config import ConfigError, DbSettings, db_environ_from_url

ENVIRON = {
    "DB_HOST": "db.example.internal",
    "DB_PORT": "3306",
    "DB_NAME": "ticketera",
    "DB_USER": "ticketera",
    "DB_PASSWORD": "s3cret-pass",
}


def test_db_settings_complete_environment_read() -> None:
    settings = DbSettings.from_env(ENVIRON)

    assert settings == DbSettings(
        host="db.example.internal",
        port=3306,
        name="ticketera",
        user="ticketera",
        password="s3cret-pass",
        ssl_ca=None,
    )


def test_db_settings_repr_hides_password() -> None:
    assert "s3cret-pass" not in repr(DbSettings.from_env(ENVIRON))


@pytest.mark.parametrize("variable", sorted(ENVIRON))
def test_db_settings_missing_variable_fails_naming_it(variable: str) -> None:
    environ = {name: value for name, value in ENVIRON.items() if name != variable}

    with pytest.raises(ConfigError, match=variable):
        DbSettings.from_env(environ)


def test_db_settings_empty_password_allowed() -> None:
    assert DbSettings.from_env(ENVIRON | {"DB_PASSWORD": ""}).password == ""


@pytest.mark.parametrize("port", ["", "abc", "0", "70000"])
def test_db_settings_bad_port_fails(port: str) -> None:
    with pytest.raises(ConfigError, match="DB_PORT"):
        DbSettings.from_env(ENVIRON | {"DB_PORT": port})


def test_db_settings_ca_bundle_present_kept(tmp_path: Path) -> None:
    bundle = tmp_path / "rds-global-bundle.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n", encoding="ascii")

    assert DbSettings.from_env(ENVIRON | {"DB_SSL_CA": str(bundle)}).ssl_ca == bundle


def test_db_settings_ca_bundle_missing_fails(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DB_SSL_CA"):
        DbSettings.from_env(ENVIRON | {"DB_SSL_CA": str(tmp_path / "absent.pem")})


def test_db_environ_from_url_full_url_split_and_decoded() -> None:
    environ = db_environ_from_url("mysql://app%40x:p%3Ass%2Fw@db.local:3307/tick_db")

    assert environ == {
        "DB_HOST": "db.local",
        "DB_PORT": "3307",
        "DB_NAME": "tick_db",
        "DB_USER": "app@x",
        "DB_PASSWORD": "p:ss/w",
    }
    assert DbSettings.from_env(environ).port == 3307


def test_db_environ_from_url_defaults_port_and_empty_password() -> None:
    environ = db_environ_from_url("mysql://root@127.0.0.1/ticketera")

    assert (environ["DB_PORT"], environ["DB_PASSWORD"]) == ("3306", "")


def test_db_environ_from_url_ssl_ca_parameter_becomes_variable() -> None:
    environ = db_environ_from_url("mysql://u:p@h:1/d?ssl_ca=/etc/ca.pem")

    assert environ["DB_SSL_CA"] == "/etc/ca.pem"


@pytest.mark.parametrize(
    "url",
    [
        "postgres://u:p@h/d",
        "mysql://u:p@/d",
        "mysql://h/d",
        "mysql://u:p@h",
        "mysql://u:p@h/",
        "mysql://u:p@h/a/b",
        "mysql://u:p@h:port/d",
        "mysql://u:p@h/d?charset=latin1",
    ],
)
def test_db_environ_from_url_invalid_fails(url: str) -> None:
    with pytest.raises(ConfigError):
        db_environ_from_url(url)
