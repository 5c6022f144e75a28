"""The API key and sampling settings that the agent's backend and the dataset endpoint share."""

from __future__ import annotations

import pytest

from patchsmith.agent.backends import BackendError, OpenAICompatibleBackend, resolve_api_key, sampling_options
from patchsmith.training.dataset.endpoint import ChatEndpoint

from .fake_openai_server import FakeOpenAIServer, text_turn


@pytest.fixture
def no_env_key(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("PATCHSMITH_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    return monkeypatch


def test_the_key_comes_from_the_caller_then_the_environment_then_the_placeholder(no_env_key):
    assert resolve_api_key(None, None) is None
    assert resolve_api_key(None, "http://127.0.0.1:8000/v1") == "EMPTY"
    assert resolve_api_key("given", None) == "given"
    no_env_key.setenv("OPENAI_API_KEY", "openai")
    assert resolve_api_key(None, "http://127.0.0.1:8000/v1") == "openai"
    no_env_key.setenv("PATCHSMITH_API_KEY", "ours")
    assert resolve_api_key(None, None) == "ours"
    assert resolve_api_key("given", None) == "given"


def test_both_clients_refuse_no_key_and_no_base_url_in_their_own_words(no_env_key):
    with pytest.raises(BackendError, match="give --base-url"):
        OpenAICompatibleBackend("m")
    with pytest.raises(ValueError, match="give a base URL"):
        ChatEndpoint("m")


def test_only_the_sampling_settings_that_are_set_are_sent(no_env_key):
    assert sampling_options(None, None, None) == {}
    assert sampling_options(0.0, 0, {}) == {"temperature": 0.0, "max_tokens": 0}
    assert sampling_options(0.7, 64, {"top_k": 20}) == {"temperature": 0.7, "max_tokens": 64,
                                                         "extra_body": {"top_k": 20}}
    with FakeOpenAIServer([text_turn("a"), text_turn("b")]) as server:
        OpenAICompatibleBackend("m", server.url, temperature=0.5, max_tokens=32).complete(
            [{"role": "user", "content": "hi"}], [])
        ChatEndpoint("m", server.url, max_tokens=16, extra_body={"top_k": 20}).ask([{"role": "user", "content": "hi"}])
    backend_body, endpoint_body = server.requests
    assert backend_body["temperature"] == 0.5 and backend_body["max_tokens"] == 32 and "top_k" not in backend_body
    assert endpoint_body["max_tokens"] == 16 and endpoint_body["top_k"] == 20 and "temperature" not in endpoint_body
