from __future__ import annotations

import pickle

import pytest

from pipelines.config import Secret, Settings
from pipelines.errors import (
    ApiError,
    AuthenticationError,
    ConfigError,
    RateLimitedError,
    RetriesExhaustedError,
    SkysmartError,
    TransientApiError,
    TransientWarehouseError,
    WarehouseError,
    redact,
)

CANARY_KEY = "canary-key-5f2a9c"
CANARY_SECRET = "canary-secret-77e1d0"


def _env(**extra: str) -> dict[str, str]:
    return {
        "SKYSMART_SKYBIZ_URL": "http://127.0.0.1:1/01/clientportal/apiv2/modules",
        "SKYSMART_SKYBIZ_API_KEY": CANARY_KEY,
        "SKYSMART_SKYBIZ_API_SECRET": CANARY_SECRET,
        "SKYSMART_SMARTACC_URL": "http://127.0.0.1:2",
        "SKYSMART_SMARTACC_USERNAME": "operator",
        "SKYSMART_SMARTACC_PASSWORD": "canary-password-1",
        **extra,
    }


def test_settings_from_env_keep_secrets_masked() -> None:
    settings = Settings.from_env(_env(SKYSMART_LAKE="/data/lake", SKYSMART_LOOKBACK_DAYS="3"))
    shown = repr(settings) + str(settings)
    assert settings.lake_url == "/data/lake" and settings.lookback_days == 3
    assert settings.require_skybiz().api_secret.reveal() == CANARY_SECRET
    for canary in (CANARY_KEY, CANARY_SECRET, "canary-password-1"):
        assert canary not in shown


def test_unconfigured_source_is_a_config_error_naming_the_variable() -> None:
    settings = Settings.from_env({})
    with pytest.raises(ConfigError, match="SKYSMART_SKYBIZ_URL"):
        settings.require_skybiz()
    with pytest.raises(ConfigError, match="SKYSMART_SMARTACC_URL"):
        settings.require_smartacc()


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"SKYSMART_SKYBIZ_URL": "http://x", "SKYSMART_SKYBIZ_API_KEY": "k"}, "SKYBIZ_API"),
        ({"SKYSMART_SMARTACC_URL": "http://x"}, "SMARTACC_API_KEY"),
        ({"SKYSMART_LOOKBACK_DAYS": "one"}, "LOOKBACK_DAYS"),
    ],
    ids=["skybiz-without-secret", "smartacc-without-credentials", "non-numeric"],
)
def test_bad_settings_name_the_variable(env: dict[str, str], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert field in (info.value.field or "")


def test_registered_secret_is_redacted_from_error_text() -> None:
    Secret(CANARY_SECRET)
    err = ApiError(f"server said: bad secret {CANARY_SECRET}", source="skybiz", request_id="req_1")
    assert CANARY_SECRET not in str(err)
    assert "source=skybiz" in str(err) and "request_id=req_1" in str(err)


@pytest.mark.parametrize(
    "text",
    [
        '{"api_key": "abc123456", "api_secret": "zzz999888"}',
        "api_secret=zzz999888&action=read",
        "Authorization: Bearer AbCdEf0123456789xyz",
        "Cookie: ss-id=QWERTY123; ss-pid=ASDFG456",
    ],
    ids=["json-body", "form-body", "bearer-header", "session-cookies"],
)
def test_redact_masks_credential_shapes(text: str) -> None:
    out = redact(text)
    for fragment in ("zzz999888", "AbCdEf0123456789xyz", "QWERTY123", "ASDFG456"):
        assert fragment not in out


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (TransientApiError("x"), True),
        (RateLimitedError("x", retry_after=2), True),
        (RetriesExhaustedError("x"), True),
        (AuthenticationError("x"), False),
        (WarehouseError("x"), False),
        (TransientWarehouseError("x"), True),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, SkysmartError) else str(v),
)
def test_retryable_is_a_property_of_the_type(error: SkysmartError, retryable: bool) -> None:
    assert error.retryable is retryable


def test_errors_survive_pickling_with_context() -> None:
    err = RateLimitedError("slow down", retry_after=3.0, source="skybiz", window="2024-01-01_2024-01-31")
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is RateLimitedError
    assert clone.window == "2024-01-01_2024-01-31" and clone.source == "skybiz"
    assert clone.retry_after == 3.0
    assert str(clone) == str(err)
    secret = pickle.loads(pickle.dumps(Secret("abcdef")))
    assert secret.reveal() == "abcdef" and repr(secret) == "Secret('***')"
