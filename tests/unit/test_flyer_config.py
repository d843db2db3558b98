"""The flyer function's settings: environment variables and DATABASE_URL."""

from __future__ import annotations

from pathlib import Path

import pytest

import flyer_config
from flyer_config import ConfigError, DbSettings, db_environ_from_url

# A local server: the only kind a password login without a CA bundle may reach.
ENVIRON = {
    "DB_HOST": "127.0.0.1",
    "DB_PORT": "3306",
    "DB_NAME": "ticketera",
    "DB_USER": "ticketera",
    "DB_AUTH": "password",
    "DB_PASSWORD": "s3cret-pass",
}
# The template's environment of a catalog function on AWS (DB_SSL_CA: the bundle in its folder).
AWS_ENVIRON = {
    "DB_HOST": "catalog.cluster-abc.us-east-1.rds.amazonaws.com",
    "DB_PORT": "3306",
    "DB_NAME": "ticketera",
    "DB_USER": "flyer_function",
    "DB_AUTH": "iam",
    "DB_SSL_CA": "rds-global-bundle.pem",
    "AWS_REGION": "us-east-1",
}


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    path = tmp_path / "rds-global-bundle.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n", encoding="ascii")
    return path


def test_db_settings_complete_environment_read() -> None:
    settings = DbSettings.from_env(ENVIRON)

    assert settings == DbSettings(
        host="127.0.0.1",
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


def test_db_settings_ca_bundle_present_kept(bundle: Path) -> None:
    assert DbSettings.from_env(ENVIRON | {"DB_SSL_CA": str(bundle)}).ssl_ca == bundle


def test_db_settings_ca_bundle_missing_fails(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DB_SSL_CA"):
        DbSettings.from_env(ENVIRON | {"DB_SSL_CA": str(tmp_path / "absent.pem")})


def test_db_settings_relative_ca_bundle_is_read_from_the_function_folder(
    monkeypatch: pytest.MonkeyPatch, bundle: Path
) -> None:
    monkeypatch.setattr(flyer_config, "FUNCTION_DIR", bundle.parent)

    assert DbSettings.from_env(AWS_ENVIRON).ssl_ca == bundle


@pytest.mark.parametrize("host", ["db.example.internal", "10.0.1.5", "catalog.rds.amazonaws.com"])
def test_db_settings_remote_server_without_ca_bundle_fails(host: str) -> None:
    # Without a CA bundle the server is not authenticated: only a loopback one may be trusted.
    with pytest.raises(ConfigError, match="DB_SSL_CA is required"):
        DbSettings.from_env(ENVIRON | {"DB_HOST": host})


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "localhost"])
def test_db_settings_loopback_server_may_go_without_ca_bundle(host: str) -> None:
    assert DbSettings.from_env(ENVIRON | {"DB_HOST": host}).ssl_ca is None


def test_db_settings_iam_needs_no_password_and_signs_for_the_region(
    monkeypatch: pytest.MonkeyPatch, bundle: Path
) -> None:
    monkeypatch.setattr(flyer_config, "FUNCTION_DIR", bundle.parent)

    settings = DbSettings.from_env(AWS_ENVIRON)

    assert (settings.password, settings.region, settings.ssl_ca) == (None, "us-east-1", bundle)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"DB_PASSWORD": "master-password"}, "DB_PASSWORD must not be set"),
        ({"DB_SSL_CA": ""}, "DB_SSL_CA is required"),
        ({"DB_HOST": "127.0.0.1", "DB_SSL_CA": ""}, "IAM authentication needs DB_SSL_CA"),
        ({"AWS_REGION": ""}, "AWS_REGION"),
        ({"DB_AUTH": "token"}, "DB_AUTH must be iam or password"),
    ],
)
def test_db_settings_iam_misconfigured_fails(
    monkeypatch: pytest.MonkeyPatch, bundle: Path, change: dict[str, str], message: str
) -> None:
    monkeypatch.setattr(flyer_config, "FUNCTION_DIR", bundle.parent)

    with pytest.raises(ConfigError, match=message):
        DbSettings.from_env(AWS_ENVIRON | change)


def test_db_environ_from_url_full_url_split_and_decoded() -> None:
    environ = db_environ_from_url("mysql://app%40x:p%3Ass%2Fw@db.local:3307/tick_db")

    assert environ == {
        "DB_HOST": "db.local",
        "DB_PORT": "3307",
        "DB_NAME": "tick_db",
        "DB_USER": "app@x",
        "DB_AUTH": "password",
        "DB_PASSWORD": "p:ss/w",
    }
    assert DbSettings.from_env(environ | {"DB_HOST": "127.0.0.1"}).port == 3307


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
