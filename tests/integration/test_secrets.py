"""Secrets adapters: the real Secret Manager client against ``devstack.secret_manager_fake``; ``EnvSecrets``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.cloud import secretmanager_v1

from calsync import errors
from calsync.adapters.secrets import EnvSecrets, SecretManagerSecrets, env_var_name
from devstack import secret_manager_fake

PROJECT = "demo-calsync"


@pytest.fixture(scope="module")
def fake_server() -> Iterator[secret_manager_fake.SecretManagerFake]:
    fake = secret_manager_fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(fake_server: secret_manager_fake.SecretManagerFake) -> secret_manager_fake.SecretManagerFake:
    fake_server.reset()
    return fake_server


class Clock:
    """A settable monotonic clock for the cache."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def secrets(fake: secret_manager_fake.SecretManagerFake, clock: Clock) -> Iterator[SecretManagerSecrets]:
    adapter = SecretManagerSecrets.for_emulator(fake.host, PROJECT, cache_ttl_s=60, retry_total_s=2, clock=clock)
    yield adapter
    adapter.close()


def test_reads_latest_version(fake: secret_manager_fake.SecretManagerFake, secrets: SecretManagerSecrets) -> None:
    fake.put(PROJECT, "calsync-token-key", "old")
    fake.put(PROJECT, "calsync-token-key", "new-value")

    value = secrets.get("calsync-token-key")

    assert value.get_secret_value() == "new-value"
    assert "new-value" not in repr(value)
    assert "new-value" not in str(value)


def test_full_version_name_is_used_as_given(
    fake: secret_manager_fake.SecretManagerFake, secrets: SecretManagerSecrets
) -> None:
    first = fake.put(PROJECT, "k", "v1")
    fake.put(PROJECT, "k", "v2")

    assert secrets.get(first).get_secret_value() == "v1"
    assert secrets.get(f"projects/{PROJECT}/secrets/k").get_secret_value() == "v2"


def test_missing_secret_is_unavailable(secrets: SecretManagerSecrets) -> None:
    with pytest.raises(errors.SecretUnavailable) as info:
        secrets.get("nope")
    assert info.value.retryable is False


def test_disabled_latest_falls_back_and_disabled_pinned_is_unavailable(
    fake: secret_manager_fake.SecretManagerFake, secrets: SecretManagerSecrets
) -> None:
    fake.put(PROJECT, "k", "v1")
    second = fake.put(PROJECT, "k", "v2")
    admin = secretmanager_v1.SecretManagerServiceClient(
        transport=secretmanager_v1.services.secret_manager_service.transports.SecretManagerServiceGrpcTransport(
            channel=grpc.insecure_channel(fake.host)
        )
    )
    admin.disable_secret_version(name=second)

    assert secrets.get("k").get_secret_value() == "v1"
    with pytest.raises(errors.SecretUnavailable):
        secrets.get(second)


def test_permission_denied_is_unavailable(
    fake: secret_manager_fake.SecretManagerFake, secrets: SecretManagerSecrets
) -> None:
    fake.put(PROJECT, "k", "v")
    fake.inject(grpc.StatusCode.PERMISSION_DENIED)

    with pytest.raises(errors.SecretUnavailable) as info:
        secrets.get("k")
    assert info.value.retryable is False
    assert fake.calls == ["AccessSecretVersion"]  # final errors are not retried


def test_transient_errors_are_retried(
    fake: secret_manager_fake.SecretManagerFake, secrets: SecretManagerSecrets
) -> None:
    fake.put(PROJECT, "k", "v")
    fake.inject(grpc.StatusCode.UNAVAILABLE, times=2)

    assert secrets.get("k").get_secret_value() == "v"
    assert fake.calls == ["AccessSecretVersion"] * 3


def test_persistent_outage_is_retryable_unavailable(
    fake: secret_manager_fake.SecretManagerFake, secrets: SecretManagerSecrets
) -> None:
    fake.put(PROJECT, "k", "v")
    fake.inject(grpc.StatusCode.UNAVAILABLE, times=1000)

    with pytest.raises(errors.SecretUnavailable) as info:
        secrets.get("k")
    assert info.value.retryable is True


def test_values_are_cached_per_instance(
    fake: secret_manager_fake.SecretManagerFake, secrets: SecretManagerSecrets, clock: Clock
) -> None:
    fake.put(PROJECT, "k", "v1")
    assert secrets.get("k").get_secret_value() == "v1"
    fake.put(PROJECT, "k", "v2")

    assert secrets.get("k").get_secret_value() == "v1"  # cached
    assert fake.calls == ["AccessSecretVersion"]
    clock.t += 61
    assert secrets.get("k").get_secret_value() == "v2"  # expired
    fake.put(PROJECT, "k", "v3")
    secrets.invalidate("k")
    assert secrets.get("k").get_secret_value() == "v3"


def test_value_never_logged(
    fake: secret_manager_fake.SecretManagerFake, secrets: SecretManagerSecrets, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.put(PROJECT, "k", "super-secret-value")
    secrets.get("k")
    fake.inject(grpc.StatusCode.PERMISSION_DENIED)
    secrets.invalidate()
    with pytest.raises(errors.SecretUnavailable) as info:
        secrets.get("k")

    out = capsys.readouterr()
    assert "super-secret-value" not in out.out + out.err
    assert "super-secret-value" not in str(info.value)


def test_fake_runs_as_a_module(tmp_path: Path) -> None:
    from devstack import procs

    port = procs.free_port()
    server = procs.start(
        "secret-manager-fake",
        [procs.sys.executable, "-m", "devstack.secret_manager_fake", "--port", str(port), "--secret", "a=b"],
        port=port,
        log_dir=tmp_path,
        ready_pattern="secret-manager-fake listening on",
    )
    try:
        adapter = SecretManagerSecrets.for_emulator(f"127.0.0.1:{port}", PROJECT)
        assert adapter.get("a").get_secret_value() == "b"
        adapter.close()
    finally:
        server.stop()
    assert not procs.port_open(port)


# --- EnvSecrets ----------------------------------------------------------------------------------------


def test_env_var_mapping() -> None:
    assert env_var_name("calsync-token-key") == "CALSYNC_SECRET_CALSYNC_TOKEN_KEY"
    assert env_var_name("calsync.sa--key") == "CALSYNC_SECRET_CALSYNC_SA_KEY"


def test_env_secrets_environment_wins_over_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("CALSYNC_SECRET_A=from-file\nCALSYNC_SECRET_B='file only'\n")
    source = EnvSecrets({"CALSYNC_SECRET_A": "from-env"}, env_file=env_file)

    assert source.get("a").get_secret_value() == "from-env"
    assert source.get("b").get_secret_value() == "file only"


def test_env_secrets_missing_or_empty_is_unavailable(tmp_path: Path) -> None:
    source = EnvSecrets({"CALSYNC_SECRET_EMPTY": ""}, env_file=tmp_path / "absent.env")

    with pytest.raises(errors.SecretUnavailable, match="CALSYNC_SECRET_MISSING"):
        source.get("missing")
    with pytest.raises(errors.SecretUnavailable):
        source.get("empty")
