"""Errors are Python exception classes under ``backstop.BackstopError``, with the kind as an
attribute, and bad arguments are refused by name."""

from __future__ import annotations

import asyncio
from typing import Any, Dict

import pytest

import backstop
from backstop import (
    AllProvidersFailedError,
    BackstopError,
    ChainConfigError,
    ProviderError,
    StreamError,
)
from backstop.llms.openai import OpenAILLM
from backstop.resilience import CircuitBreaker, fallback_chain
from backstop.testing import ScriptedLLM, fail, reply
from chains import tutorial_chain
from simulators import Simulator


def test_exception_hierarchy() -> None:
    assert issubclass(ProviderError, BackstopError)
    assert issubclass(StreamError, ProviderError)
    assert issubclass(AllProvidersFailedError, BackstopError)
    assert issubclass(ChainConfigError, BackstopError)
    assert issubclass(ChainConfigError, ValueError)
    assert AllProvidersFailedError.__module__ == "backstop"
    assert backstop.resilience.AllProvidersFailedError is AllProvidersFailedError


def test_all_providers_failed_lists_every_providers_error_with_its_kind(
    sims: Dict[str, Simulator],
) -> None:
    sims["openai"].fail_randomly(1.0, {"status": 401})
    sims["anthropic"].fail_randomly(1.0, {"status": 529})
    chain, (openai, anthropic, groq) = tutorial_chain()
    groq.trip()
    with pytest.raises(AllProvidersFailedError) as caught:
        asyncio.run(chain.agenerate("hi"))
    e = caught.value
    assert isinstance(e, BackstopError)
    got = [(x.provider, x.kind, x.status, x.attempted) for x in e.errors]
    assert got == [
        ("openai", "auth", 401, True),
        ("anthropic", "overloaded", 529, True),
        ("groq", "circuit_open", None, False),
    ]
    assert all(isinstance(x, ProviderError) for x in e.errors)
    assert [a.provider for a in e.attempts] == ["openai", "anthropic", "groq"]
    assert [a.outcome for a in e.attempts] == ["failed", "failed", "skipped"]
    assert not e.deadline_exceeded
    assert e.retry_after is None  # openai's and anthropic's breakers would take a call now
    assert "openai: auth (HTTP 401)" in str(e)
    assert repr(e.errors[0]).startswith("ProviderError(provider='openai', kind='auth', status=401")

    openai.trip()
    anthropic.trip()
    with pytest.raises(AllProvidersFailedError) as caught:
        chain.generate("hi")
    assert {x.kind for x in caught.value.errors} == {"circuit_open"}
    # The soonest a breaker half-opens: groq's recovery_timeout (15 s) started first.
    retry_after = caught.value.retry_after
    assert retry_after is not None and 0 < retry_after <= 15


def test_missing_key_is_an_auth_error_without_a_network_call(
    sims: Dict[str, Simulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    llm = OpenAILLM(model="gpt-4o")  # reads the environment now
    chain = fallback_chain([(llm, CircuitBreaker("openai"))])
    with pytest.raises(AllProvidersFailedError) as caught:
        chain.generate("hi")
    assert caught.value.errors[0].kind == "auth"
    assert "OPENAI_API_KEY is not set" in caught.value.errors[0].message
    assert sims["openai"].requests() == 0


def test_keys_and_base_urls_come_from_the_environment_and_explicit_values_win(
    sims: Dict[str, Simulator],
) -> None:
    assert OpenAILLM("m").base_url == sims["openai"].base_url + "/v1"
    assert OpenAILLM("m", base_url="http://127.0.0.1:1/v1/").base_url == "http://127.0.0.1:1/v1"
    result = fallback_chain([(OpenAILLM("m"), CircuitBreaker("o"))]).generate("hi")
    assert result.model == "m"
    # A key never appears in a repr.
    assert "sk-" not in repr(OpenAILLM("m", api_key="sk-secret-value"))


def test_rate_limited_error_carries_the_providers_hint(sims: Dict[str, Simulator]) -> None:
    sims["openai"].fail_randomly(1.0, {"rate_limited": {"retry_after_secs": 7}})
    chain = fallback_chain([(OpenAILLM("m"), CircuitBreaker("openai"))])
    with pytest.raises(AllProvidersFailedError) as caught:
        chain.generate("hi")
    err = caught.value.errors[0]
    assert err.kind == "rate_limited"
    assert err.retry_after == 7.0


def test_content_filter_refusal_is_returned_not_failed_over() -> None:
    chain = fallback_chain(
        [(ScriptedLLM("a", [fail("content_filtered")]), CircuitBreaker("a")),
         (ScriptedLLM("b", [reply("b")]), CircuitBreaker("b"))]
    )
    with pytest.raises(AllProvidersFailedError) as caught:
        chain.generate("hi")
    assert caught.value.errors[0].kind == "content_filtered"


def test_chain_config_errors() -> None:
    with pytest.raises(ChainConfigError, match="at least one provider"):
        fallback_chain([])
    with pytest.raises(ChainConfigError, match="two providers are named `a`"):
        fallback_chain([(ScriptedLLM("a"), CircuitBreaker("a")), (ScriptedLLM("b"), CircuitBreaker("a"))])


@pytest.mark.parametrize(
    "providers, message",
    [
        ("openai", "providers must be a list of tuples, got a str"),
        (42, "providers must be a list of tuples, got int"),
        ([["llm", "breaker"]], r"providers\[0\] must be an \(llm, breaker\) tuple, got list"),
        ([("llm", CircuitBreaker("a"))], r"providers\[0\]\[0\] must be an LLM"),
        ([(ScriptedLLM("a"), "breaker")], r"providers\[0\]\[1\] must be a CircuitBreaker, got str"),
        ([(ScriptedLLM("a"),)], r"providers\[0\] has 1 items"),
    ],
)
def test_bad_providers_are_refused_by_position(providers: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        fallback_chain(providers)


def test_retries_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="retries_per_provider must be an integer from 0"):
        fallback_chain([(ScriptedLLM("a"), CircuitBreaker("a"))], retries_per_provider=-1)


def test_unknown_keyword_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="retries"):
        fallback_chain([(ScriptedLLM("a"), CircuitBreaker("a"))], retries=1)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "prompt, error, message",
    [
        (42, TypeError, "prompt must be a str or a list of messages, got int"),
        ({"role": "user", "content": "hi"}, TypeError, "got a single dict"),
        ([], ValueError, "the list of messages is empty"),
        ([{"role": "robot", "content": "hi"}], ValueError, r"prompt\[0\] has role \"robot\""),
        ([{"role": "user"}], ValueError, r"prompt\[0\] has no \"content\""),
        ([("user", 3)], TypeError, r"prompt\[0\] must be a \(role, content\) pair"),
    ],
)
def test_bad_prompts_are_refused_with_where(prompt: Any, error: type, message: str) -> None:
    chain = fallback_chain([(ScriptedLLM("a"), CircuitBreaker("a"))])
    with pytest.raises(error, match=message):
        chain.generate(prompt)


def test_message_lists_are_sent_as_conversations() -> None:
    chain = fallback_chain([(ScriptedLLM("a"), CircuitBreaker("a"))])
    result = chain.generate(
        [{"role": "system", "content": "be brief"}, ("user", "hi")]
    )
    assert result.text == "answer from a"


def test_llm_config_refuses_bad_values() -> None:
    with pytest.raises(ValueError, match="max_tokens must be an integer from 1"):
        backstop.LLMConfig(max_tokens=0)
    with pytest.raises(ValueError, match="temperature must be a number from 0"):
        backstop.LLMConfig(temperature=float("nan"))
    with pytest.raises(ValueError, match="top_p must be above 0 and at most 1"):
        backstop.LLMConfig(top_p=2)
    c = backstop.LLMConfig(temperature=0.2, max_tokens=512, stop="END")
    assert (c.max_tokens, c.stop) == (512, ["END"])
    assert repr(c) == "LLMConfig(temperature=0.2, max_tokens=512, top_p=None, stop=['END'])"


def test_empty_model_is_refused() -> None:
    with pytest.raises(ValueError, match="model must not be empty"):
        OpenAILLM(model="")
