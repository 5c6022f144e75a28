"""One question to an OpenAI-compatible chat endpoint, with retries, backoff and the answer cache.

The dataset stages ask thousands of independent questions (one caption, one chain of thought per
voice) from a pool of threads. ``ChatEndpoint.ask`` sends one, through the official ``openai``
client (its own retries off, so that the policy here is the only one):

- a timeout, a connection failure, HTTP 408/409/429 and every 5xx are retried up to ``max_retries``
  times, waiting ``retry_base_s * 2**attempt`` (capped at ``retry_max_s``, at least what a 429's
  ``Retry-After`` asks for, scaled by a random 0.5..1 so that many threads do not retry in step);
- an answer whose body is not a completion (an HTML page from a proxy) is retried like a 5xx;
- any other 4xx (400 bad request, 401, 404 unknown model, 413 too large, ...) is final at once: asking
  again would get the same answer;
- every answer that came back (HTTP 200) is stored in the ``EndpointCache`` when one is given, and a
  later identical question is answered from it without a request.

Failures raise ``EndpointError`` with one line that says what happened, where, and after how many
attempts; the stages record that line in the row's ``*_error`` column.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .endpoint_cache import EndpointCache, request_key

__all__ = ["ChatAnswer", "ChatEndpoint", "EndpointError", "RETRY_STATUSES"]

RETRY_STATUSES = frozenset({408, 409, 429})  # and every status >= 500


class EndpointError(RuntimeError):
    """The endpoint gave no usable answer; ``retryable`` says whether the last failure was transient."""

    def __init__(self, message: str, *, retryable: bool = False, attempts: int = 1, status: int | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.attempts = attempts
        self.status = status


class ChatAnswer(BaseModel):
    """The text of one answer: visible content, reasoning (when the server splits it off), why it stopped."""

    content: str = ""
    reasoning: str | None = None
    finish_reason: str | None = None
    cached: bool = False
    attempts: int = 0  # requests made for this answer (0 when it came from the cache)


class ChatEndpoint:
    """A Chat Completions endpoint asked one question at a time (thread-safe), with retries and a cache."""

    def __init__(self, model: str, base_url: str | None = None, *, api_key: str | None = None,
                 timeout_s: float = 60.0, max_retries: int = 3, retry_base_s: float = 1.0,
                 retry_max_s: float = 30.0, cache_dir: str | Path | None = None, namespace: str = "chat",
                 temperature: float | None = None, max_tokens: int | None = None,
                 extra_body: dict[str, Any] | None = None):
        """Check the settings and make the client (no request is made here)."""
        from openai import OpenAI

        from ...agent.backends import resolve_api_key

        if not isinstance(model, str) or not model.strip():
            raise ValueError("model: found an empty name, allowed the model name the endpoint serves")
        for name, value, low in (("timeout_s", timeout_s, 0.001), ("retry_base_s", retry_base_s, 0.0),
                                 ("retry_max_s", retry_max_s, 0.0)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= low:
                raise ValueError(f"{name}: found {value!r}, allowed a number of seconds >= {low:g}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or not 0 <= max_retries <= 20:
            raise ValueError(f"max_retries: found {max_retries!r}, allowed an integer 0..20")
        key = resolve_api_key(api_key, base_url)
        if key is None:
            raise ValueError("no API key: set PATCHSMITH_API_KEY or OPENAI_API_KEY, or give a base URL "
                             "for a local server that needs none")
        self.model = model.strip()
        self.base_url = base_url
        self.timeout_s = float(timeout_s)
        self.max_retries = max_retries
        self.retry_base_s = float(retry_base_s)
        self.retry_max_s = float(retry_max_s)
        self.namespace = namespace
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.extra_body = dict(extra_body) if extra_body else None
        self.cache = EndpointCache(cache_dir) if cache_dir is not None else None
        self._client = OpenAI(api_key=key, base_url=base_url, timeout=self.timeout_s, max_retries=0)

    @property
    def where(self) -> str:
        """The endpoint in words, for error messages."""
        return self.base_url or "the OpenAI API"

    def _request(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        from ...agent.backends import sampling_options

        request: dict[str, Any] = {"model": self.model, "messages": messages}
        return request | sampling_options(self.temperature, self.max_tokens, self.extra_body)

    def cache_key(self, messages: list[dict[str, Any]]) -> str:
        """The cache key of a question (model, messages, sampling settings, namespace)."""
        return request_key(self.namespace, self._request(messages))

    def ask(self, messages: list[dict[str, Any]]) -> ChatAnswer:
        """The endpoint's answer to ``messages`` (from the cache when stored); ``EndpointError`` when none."""
        request = self._request(messages)
        if self.cache is None:
            return self._ask(request)
        key = request_key(self.namespace, request)
        stored = self.cache.get(key)
        if stored is not None:
            try:
                return ChatAnswer.model_validate(stored | {"cached": True, "attempts": 0})
            except ValueError:
                pass  # a damaged entry is a miss; it is overwritten below
        answer = self._ask(request)
        self.cache.put(key, answer.model_dump(exclude={"cached", "attempts"}))
        return answer

    def ask_prepared(self, prepare: Callable[[], list[dict[str, Any]]],
                     cannot: Callable[[Exception], str]) -> tuple[ChatAnswer | None, str | None]:
        """(answer, None) for the messages ``prepare()`` makes, or (None, why) when there is none.

        ``why`` is ``cannot(err)`` when ``prepare`` raises ValueError or RuntimeError (the stage's words for
        "this row cannot be asked"), else the ``EndpointError`` line. Never raises for one row.
        """
        try:
            messages = prepare()
        except (ValueError, RuntimeError) as err:  # soundfile raises RuntimeError subclasses for bad audio
            return None, cannot(err)
        try:
            return self.ask(messages), None
        except EndpointError as err:
            return None, str(err)

    def _ask(self, request: dict[str, Any]) -> ChatAnswer:
        import openai

        from ...agent.backends import status_message

        for attempt in range(self.max_retries + 1):
            retry_after: float | None = None
            status: int | None = None
            try:
                response = self._client.chat.completions.create(**request, timeout=self.timeout_s)
            except openai.APITimeoutError:
                message, retryable = f"no answer within {self.timeout_s:g} s", True
            except openai.APIConnectionError as err:
                message, retryable = f"cannot connect ({_cause(err)})", True
            except openai.APIStatusError as err:
                status = err.status_code
                retryable = status in RETRY_STATUSES or status >= 500
                message = f"HTTP {status}: {status_message(err)}"
                retry_after = _retry_after(err)
            except (openai.OpenAIError, ValueError) as err:
                # A 200 whose body is no completion (JSON the client cannot read, a proxy's HTML page):
                # usually a proxy or a server in trouble, so it is asked again.
                message, retryable = f"unusable answer ({type(err).__name__}: {str(err)[:200]})", True
            else:
                return self._answer(response, attempt + 1)
            if not retryable or attempt == self.max_retries:
                tries = f" after {attempt + 1} attempts" if attempt else ""
                raise EndpointError(f"{self.model} at {self.where}: {message}{tries}", retryable=retryable,
                                    attempts=attempt + 1, status=status)
            time.sleep(self._delay(attempt, retry_after))
        raise AssertionError("unreachable")  # the loop returns or raises

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        delay = min(self.retry_max_s, self.retry_base_s * 2.0 ** attempt) * random.uniform(0.5, 1.0)
        if retry_after is not None:
            delay = max(delay, min(self.retry_max_s, retry_after))
        return delay

    def _answer(self, response: Any, attempts: int) -> ChatAnswer:
        from ...agent.backends import message_reasoning

        choices = getattr(response, "choices", None)
        if not choices or getattr(choices[0], "message", None) is None:
            raise EndpointError(f"{self.model} at {self.where}: the answer has no choices: {str(response)[:200]}",
                                attempts=attempts)
        choice = choices[0]
        msg = choice.message
        content = msg.content if isinstance(msg.content, str) else ""
        return ChatAnswer(content=content, reasoning=message_reasoning(msg), finish_reason=choice.finish_reason,
                          attempts=attempts)


def _cause(err: Any) -> str:
    cause = getattr(err, "__cause__", None)
    return (str(cause) or type(cause).__name__)[:200] if cause is not None else str(err)[:200]


def _retry_after(err: Any) -> float | None:
    response = getattr(err, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        value = float(headers.get("retry-after", ""))
    except (TypeError, ValueError):
        return None
    return value if value >= 0 else None
