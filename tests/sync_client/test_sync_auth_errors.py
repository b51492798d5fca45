"""AuthCredential masking and fingerprints; the BatchError branch of the error tree."""

from __future__ import annotations

import hashlib

import pytest

from lore_batch.auth import AuthCredential, fingerprint
from lore_batch.errors import (
    BatchAbandoned,
    BatchError,
    BatchItemErrored,
    ClientClosed,
    DispatcherClosed,
    NoCredentials,
    UnsupportedParams,
    UnsupportedProvider,
)
from lore_core.errors import ClosedError, ConfigError, LLMError, LoreError

SECRET = "sk-ant-api03-SECRETVALUE-0123456789"


def test_credential_repr_and_str_never_show_the_secret() -> None:
    cred = AuthCredential("api-key", SECRET, workspace="wrkspc_1")
    for text in (repr(cred), str(cred), f"{cred}", repr([cred])):
        assert SECRET not in text
        assert "SECRET" not in text
        assert "value=<redacted>" in text
        assert cred.fingerprint in text
        assert "'api-key'" in text


def test_fingerprint_is_16_hex_and_keeps_schemes_apart() -> None:
    key = AuthCredential("api-key", "same")
    token = AuthCredential("bearer", "same")
    assert fingerprint(key) == hashlib.sha256(b"api-key|same").hexdigest()[:16]
    assert len(fingerprint(key)) == 16
    assert int(fingerprint(key), 16) >= 0
    assert fingerprint(key) != fingerprint(token)
    assert key.fingerprint == fingerprint(key)


def test_credential_validation() -> None:
    with pytest.raises(ConfigError):
        AuthCredential("basic", "x")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        AuthCredential("bearer", "")
    with pytest.raises(ConfigError) as info:
        AuthCredential("oauth", SECRET)  # type: ignore[arg-type]
    assert SECRET not in str(info.value)


def test_error_tree() -> None:
    assert issubclass(BatchError, LoreError)
    for cls in (
        NoCredentials,
        UnsupportedProvider,
        UnsupportedParams,
        BatchItemErrored,
        BatchAbandoned,
        ClientClosed,
    ):
        assert issubclass(cls, BatchError)
    assert issubclass(BatchItemErrored, LLMError)
    assert issubclass(DispatcherClosed, ClientClosed)
    assert issubclass(ClientClosed, ClosedError)


def test_errors_carry_ids() -> None:
    assert NoCredentials("s1").session_id == "s1"
    assert "s1" in str(NoCredentials("s1"))
    assert "without a session" in str(NoCredentials(None))
    assert UnsupportedProvider("openai").provider == "openai"
    assert UnsupportedParams("stream").field == "stream"
    abandoned = BatchAbandoned("msgbatch_1", "c1")
    assert (abandoned.batch_id, abandoned.custom_id) == ("msgbatch_1", "c1")
    assert isinstance(DispatcherClosed(), ClosedError)


def test_batch_item_errored_keeps_the_provider_message_out_of_str() -> None:
    err = BatchItemErrored("c1", "msgbatch_1", "invalid_request_error", "prompt text leaked here", "req_1")
    assert err.custom_id == "c1"
    assert err.batch_id == "msgbatch_1"
    assert err.error_type == "invalid_request_error"
    assert err.request_id == "req_1"
    assert err.message == "prompt text leaked here"
    assert "leaked" not in str(err)
    assert "req_1" in str(err)
    assert not err.retryable
    assert BatchItemErrored("c2", "b", "overloaded_error").retryable
