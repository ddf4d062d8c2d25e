"""``Settings``: env parsing, precedence (defaults < stack state < env < overrides), masking."""

from __future__ import annotations

import string
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from typostream.agents.domain.errors import ConfigError
from typostream.streams import config
from typostream.streams.config import Settings, mask_url
from typostream.streams.stack import StackState

STACK_URLS = {
    "kafka_bootstrap": "127.0.0.1:40001",
    "redis_url": "redis://127.0.0.1:40002/0",
    "clickhouse_dsn": "chdb:///state/clickhouse",
}


@pytest.fixture
def fake_stack(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Pretend a stack is running in every data dir (Settings asks ``read_urls``)."""
    monkeypatch.setattr("typostream.streams.stack.state.read_urls", lambda data_dir: dict(STACK_URLS))
    return STACK_URLS


def test_defaults_without_env_or_stack(tmp_path: Path) -> None:
    settings = Settings.from_env(environ={}, data_dir=tmp_path)
    assert settings == Settings(data_dir=tmp_path)
    assert settings.kafka_bootstrap == "127.0.0.1:9092"


def test_env_values_are_coerced(tmp_path: Path) -> None:
    env = {
        "TYPOSTREAM_DATA_DIR": str(tmp_path),
        "TYPOSTREAM_PARTITIONS": "6",
        "TYPOSTREAM_SINK_BATCH_SECONDS": "0.25",
        "TYPOSTREAM_UNBATCHED_PRODUCER": "off",
        "TYPOSTREAM_WATCHLIST_FILE": "/etc/watch.txt",
        "TYPOSTREAM_LOG_LEVEL": "DEBUG",
        "TYPOSTREAM_WEB_PORT": "",  # empty means unset
        "OTHER_PARTITIONS": "99",
    }
    settings = Settings.from_env(environ=env)
    assert settings.data_dir == tmp_path
    assert settings.partitions == 6
    assert settings.sink_batch_seconds == 0.25
    assert settings.unbatched_producer is False
    assert settings.watchlist_file == Path("/etc/watch.txt")
    assert settings.log_level == "DEBUG"
    assert settings.web_port == 6066


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("TYPOSTREAM_PARTITIONS", "two"),
        ("TYPOSTREAM_UNBATCHED_PRODUCER", "maybe"),
        ("TYPOSTREAM_SINK_BATCH_SECONDS", "x"),
    ],
)
def test_bad_env_value_names_the_variable(tmp_path: Path, name: str, raw: str) -> None:
    with pytest.raises(ValueError, match=name):
        Settings.from_env(environ={name: raw}, data_dir=tmp_path)


@pytest.mark.parametrize(
    ("name", "raw", "why"),
    [
        ("TYPOSTREAM_WEB_PORT", "abc", "is not a valid int"),
        ("TYPOSTREAM_WEB_PORT", "99999", "port out of range 0-65535"),
        ("TYPOSTREAM_WEB_PORT", "-1", "port out of range 0-65535"),
        ("TYPOSTREAM_CLICKHOUSE_DSN", "https://u:hunter2@ch:99999/db", "port out of range 0-65535"),
        ("TYPOSTREAM_REDIS_URL", "redis://:hunter2@cache:abc/0", "port"),
        ("TYPOSTREAM_PYPI_URL", "https://[::1/simple", "not a valid URL (Invalid IPv6 URL)"),
        ("TYPOSTREAM_KAFKA_BOOTSTRAP", "k1:9092,k2:70000", "port out of range 0-65535"),
    ],
)
def test_bad_port_is_a_config_error_naming_the_variable_without_its_secret(
    tmp_path: Path, name: str, raw: str, why: str
) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(environ={name: raw}, data_dir=tmp_path)
    message = str(info.value)
    assert message.startswith(f"{name}=") and why in message
    assert "hunter2" not in message and "\n" not in message


def test_bad_port_given_as_an_override_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TYPOSTREAM_CLICKHOUSE_DSN"):
        Settings.from_env(environ={}, data_dir=tmp_path, clickhouse_dsn="http://ch:123456/db")
    with pytest.raises(ConfigError, match="TYPOSTREAM_WEB_PORT"):
        Settings.from_env(environ={}, data_dir=tmp_path, web_port=65536)


def test_valid_ports_and_urls_pass(tmp_path: Path) -> None:
    env = {
        "TYPOSTREAM_WEB_PORT": "0",
        "TYPOSTREAM_KAFKA_BOOTSTRAP": "[::1]:9092, kafka://k2:65535",
        "TYPOSTREAM_CLICKHOUSE_DSN": "chdb:///data/ch",
        "TYPOSTREAM_REDIS_URL": "redis://:p%40ss@[::1]:6379/0",
    }
    settings = Settings.from_env(environ=env, data_dir=tmp_path)
    assert settings.web_port == 0 and settings.kafka_bootstrap == "[::1]:9092, kafka://k2:65535"


def test_stack_state_beats_defaults(tmp_path: Path, fake_stack: dict[str, str]) -> None:
    settings = Settings.from_env(environ={}, data_dir=tmp_path)
    assert settings.kafka_bootstrap == fake_stack["kafka_bootstrap"]
    assert settings.redis_url == fake_stack["redis_url"]
    assert settings.clickhouse_dsn == fake_stack["clickhouse_dsn"]


def test_precedence_stack_state_then_env_then_overrides(tmp_path: Path, fake_stack: dict[str, str]) -> None:
    env = {"TYPOSTREAM_KAFKA_BOOTSTRAP": "env-kafka:9092", "TYPOSTREAM_REDIS_URL": "redis://env:6379/0"}
    settings = Settings.from_env(environ=env, data_dir=tmp_path, redis_url="redis://flag:6379/0")
    assert settings.kafka_bootstrap == "env-kafka:9092"  # explicit env > discovered stack state
    assert settings.redis_url == "redis://flag:6379/0"  # override > env > state
    assert settings.clickhouse_dsn == fake_stack["clickhouse_dsn"]


def test_env_still_applies_when_no_stack_runs(tmp_path: Path) -> None:
    env = {"TYPOSTREAM_KAFKA_BOOTSTRAP": "env-kafka:9092"}
    assert Settings.from_env(environ=env, data_dir=tmp_path).kafka_bootstrap == "env-kafka:9092"


def test_data_dir_override_is_a_path_and_is_where_the_stack_is_looked_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[Path] = []
    monkeypatch.setattr(
        "typostream.streams.stack.state.read_urls", lambda data_dir: asked.append(data_dir) or {}
    )
    settings = Settings.from_env(environ={"TYPOSTREAM_DATA_DIR": "/elsewhere"}, data_dir=str(tmp_path))
    assert asked == [tmp_path]
    assert settings.data_dir == tmp_path
    assert settings.chdb_path == tmp_path / "clickhouse"
    assert settings.worker_dir == tmp_path / "worker"


def test_none_overrides_are_ignored(tmp_path: Path) -> None:
    settings = Settings.from_env(environ={"TYPOSTREAM_PARTITIONS": "3"}, data_dir=tmp_path, partitions=None)
    assert settings.partitions == 3


def test_real_state_file_of_a_dead_stack_is_ignored(tmp_path: Path) -> None:
    StackState(
        data_dir=tmp_path,
        kafka_bootstrap="127.0.0.1:1",
        redis_url="redis://127.0.0.1:2/0",
        clickhouse_dsn=f"chdb://{tmp_path}/clickhouse",
        pids={"kafka": 2**22 + 1, "redis": 2**22 + 2},
    ).save()
    assert Settings.from_env(environ={}, data_dir=tmp_path).kafka_bootstrap == "127.0.0.1:9092"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("https://user:pa%40ss@ch.example:8443/db?secure=1", "https://user:***@ch.example:8443/db?secure=1"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("chdb:///data/clickhouse", "chdb:///data/clickhouse"),
        ("127.0.0.1:9092", "127.0.0.1:9092"),
        ("redis://:pw@[::1]:6379/0", "redis://:***@[::1]:6379/0"),
        # unencoded "#", "?", "/", "@" in a password: a strict parser ends the host early
        ("redis://:pa#ss@cache:6379/0", "redis://:***@cache:6379/0"),
        ("https://user:pa?ss@ch:8443/db", "https://user:***@ch:8443/db"),
        ("https://user:pa/ss@ch:8443/db", "https://user:***@ch:8443/db"),
        ("https://user:p@ss@ch:8443/db", "https://user:***@ch:8443/db"),
        ("user:pw@kafka:9092", "user:***@kafka:9092"),
        # credentials in query parameters (any case, any separator style)
        ("https://ch:8443/db?user=u&password=hunter2", "https://ch:8443/db?user=u&password=***"),
        ("https://ch/db?PASSWORD=x&secure=1", "https://ch/db?PASSWORD=***&secure=1"),
        ("https://ch/db?pass=x", "https://ch/db?pass=***"),
        ("https://ch/db?pwd=x", "https://ch/db?pwd=***"),
        ("https://mirror/simple?token=t0k", "https://mirror/simple?token=***"),
        (
            "https://s3/b?X-Amz-Security-Token=t&X-Amz-Signature=s",
            "https://s3/b?X-Amz-Security-Token=***&X-Amz-Signature=***",
        ),
        (
            "https://h/x?access_key=a&secret_key=b&region=eu",
            "https://h/x?access_key=***&secret_key=***&region=eu",
        ),
        ("https://h/x?client_secret=a;api_key=b", "https://h/x?client_secret=***"),
        ("https://h/cb#access_token=abc&state=1", "https://h/cb#access_token=***&state=1"),
        ("https://h/x?q=a#token=t", "https://h/x?q=a#token=***"),
        ("https://h/db?password=", "https://h/db?password=***"),
        ("https://h:1/db?password=p@ss", "https://h:***"),  # both readings: mask their union
        # malformed, still masked and never an exception
        ("http://u:pw@ch:99999/db", "http://u:***@ch:99999/db"),
        ("https://registry.npmjs.org/@babel/core", "https://registry.npmjs.org/@babel/core"),
        ("https://h/x?keyspace=k&monkey=m", "https://h/x?keyspace=k&monkey=m"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


# Passwords over printable characters (no whitespace); the userinfo takes them unencoded.
PASSWORDS = st.text(alphabet=string.printable.strip(), min_size=4, max_size=24)
NO_AMPERSAND = st.text(alphabet=string.printable.strip().replace("&", ""), min_size=4, max_size=24)
SECRET_PARAMETERS = ("password", "pass", "pwd", "token", "secret", "access_key", "Api-Key", "X-Amz-Signature")
URL_PARTS = {
    "scheme": st.sampled_from(["redis", "https", "http", "rediss"]),
    "user": st.sampled_from(["", "default", "u.ser-1"]),
    "host": st.sampled_from(["cache", "ch.example", "10.0.0.7", "[::1]"]),
    "port": st.sampled_from(["", ":6379", ":8443"]),
    "path": st.sampled_from(["", "/0", "/db/x"]),
    "query": st.sampled_from(["", "?secure=1", "?a=b&c=d"]),
}
PROPERTY = hypothesis_settings(
    max_examples=400, database=None, deadline=None, suppress_health_check=[HealthCheck.filter_too_much]
)


def _leaks(masked: str, secret: str) -> bool:
    # "***" becomes one char no password has, so a password ending in "*" cannot match by overlap
    return secret in masked.replace("***", "\0")


@PROPERTY
@given(password=PASSWORDS, **URL_PARTS)
def test_mask_url_never_shows_a_userinfo_password(
    password: str, scheme: str, user: str, host: str, port: str, path: str, query: str
) -> None:
    url = f"{scheme}://{user}:{password}@{host}{port}{path}{query}"
    # the URL without the password must not contain it (as a piece of the host, scheme...)
    assume(password not in f"{scheme}://{user}:@{host}{port}{path}{query}")
    masked = mask_url(url)
    assert not _leaks(masked, password), masked
    assert not _leaks(masked, quote(password, safe="")), masked
    assert masked.startswith(f"{scheme}://{user}:***")


@PROPERTY
@given(
    password=NO_AMPERSAND,
    parameter=st.sampled_from(SECRET_PARAMETERS),
    encode=st.booleans(),
    before=st.sampled_from(["", "user=u&", "secure=1&"]),
    after=st.sampled_from(["", "&secure=1"]),
    **URL_PARTS,
)
def test_mask_url_never_shows_a_query_password(
    password: str,
    parameter: str,
    encode: bool,
    before: str,
    after: str,
    scheme: str,
    user: str,
    host: str,
    port: str,
    path: str,
    query: str,
) -> None:
    value = quote(password, safe="") if encode else password
    url = f"{scheme}://{host}{port}{path}?{before}{parameter}={value}{after}"
    # built without the value, not by deleting it: "user" deleted from "?user=u&password=user" hides
    # that the parameter name "user" still shows it
    skeleton = f"{scheme}://{host}{port}{path}?{before}{parameter}={after}"
    assume(password not in skeleton and value not in skeleton)
    masked = mask_url(url)
    assert not _leaks(masked, password), masked
    assert not _leaks(masked, value), masked


@PROPERTY
@given(password=PASSWORDS, token=NO_AMPERSAND, **URL_PARTS)
def test_mask_url_hides_userinfo_and_query_credentials_together(
    password: str, token: str, scheme: str, user: str, host: str, port: str, path: str, query: str
) -> None:
    url = f"{scheme}://{user}:{password}@{host}{port}{path}?token={quote(token, safe='')}"
    skeleton = f"{scheme}://{user}:@{host}{port}{path}?token="
    assume(password not in skeleton and token not in skeleton and quote(token, safe="") not in skeleton)
    masked = mask_url(url)
    assert not _leaks(masked, password) and not _leaks(masked, quote(token, safe="")), masked


@PROPERTY
@given(url=st.text(max_size=60))
def test_mask_url_never_raises(url: str) -> None:
    assert isinstance(mask_url(url), str)


def test_masked_hides_secrets_and_stringifies_paths(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        redis_url="redis://:topsecret@cache:6379/0",
        clickhouse_dsn="https://default:hunter2@ch:8443/typostream",
    )
    view = settings.masked()
    assert "topsecret" not in str(view) and "hunter2" not in str(view)
    assert view["redis_url"] == "redis://:***@cache:6379/0"
    assert view["data_dir"] == str(tmp_path)


def test_every_secret_field_is_masked_not_a_list_of_names(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, api_token="tok-3141", npm_replicate_url="https://u:pw-77@mirror/")
    view = str(settings.masked())
    assert "tok-3141" not in view and "pw-77" not in view
    assert settings.masked()["api_token"] == "***"
    assert Settings(data_dir=tmp_path).masked()["api_token"] == ""  # unset stays visibly unset


def test_kafka_url_for_faust() -> None:
    plain = Settings(kafka_bootstrap="a:1, kafka://b:2", highwater_from_fetch=False)
    assert plain.kafka_url == "kafka://a:1;kafka://b:2"
    fixed = Settings(kafka_bootstrap="a:1,b:2", highwater_from_fetch=True, fetch_max_wait_ms=7)
    wait = "?fetch_max_wait_ms=7"
    assert fixed.kafka_url == f"typostream+kafka://a:1{wait};typostream+kafka://b:2{wait}"


def test_stack_lookup_goes_through_read_urls() -> None:
    assert config._stack_state(Path("/nonexistent/typostream")) == {}


@pytest.mark.integration
def test_from_env_finds_the_real_running_stack(embedded_stack: StackState) -> None:
    env = {"TYPOSTREAM_DATA_DIR": str(embedded_stack.data_dir)}
    settings = Settings.from_env(environ=env)
    assert settings.kafka_bootstrap == embedded_stack.kafka_bootstrap
    assert settings.redis_url == embedded_stack.redis_url
    assert settings.clickhouse_dsn == embedded_stack.clickhouse_dsn


def test_worker_subprocess_env_round_trips_every_setting(tmp_path: Path) -> None:
    from typostream.streams.worker_process import settings_env

    original = Settings(
        data_dir=tmp_path,
        kafka_bootstrap="k1:9092,k2:9092",
        clickhouse_dsn="https://user:secret@ch:8443/db",
        pypi_url="https://user:token@mirror.example/pypi",
        partitions=6,
        unbatched_producer=True,
        producer_linger_ms=7.5,
        watchlist_file=tmp_path / "watch.txt",
    )
    env = settings_env(original)
    assert env["TYPOSTREAM_CLICKHOUSE_DSN"] == "https://user:secret@ch:8443/db"  # real value, not masked
    assert Settings.from_env(environ=env) == original
