"""The tutorial's streaming variation: ``async for chunk in chain.astream(p): chunk.text``."""

from __future__ import annotations

import asyncio
from typing import Dict, List

import pytest

import backstop
from backstop.resilience import AllProvidersFailedError, StreamError
from chains import tutorial_chain
from simulators import Simulator


def collect(chain: backstop.FallbackChain, prompt: str) -> List[backstop.Chunk]:
    async def go() -> List[backstop.Chunk]:
        return [chunk async for chunk in chain.astream(prompt)]

    return asyncio.run(go())


def test_tutorial_streaming_snippet_prints_the_whole_answer(
    sims: Dict[str, Simulator], capsys: pytest.CaptureFixture[str]
) -> None:
    chain, _ = tutorial_chain()

    async def snippet() -> None:
        # The tutorial's variation, verbatim.
        async for chunk in chain.astream("Tell me about neural networks"):
            print(chunk.text, end="", flush=True)

    asyncio.run(snippet())
    printed = capsys.readouterr().out
    whole = chain.generate("Tell me about neural networks").text
    assert printed == whole
    assert printed.startswith("Simulated answer from openai to: Tell me about neural networks.")


def test_astream_delivers_the_answer_in_several_chunks_from_the_first_provider(
    sims: Dict[str, Simulator],
) -> None:
    chain, _ = tutorial_chain()
    stream = chain.astream("What is a deadlock?")
    assert stream.provider_used is None  # not opened before the first anext

    async def go() -> List[backstop.Chunk]:
        return [c async for c in stream]

    chunks = asyncio.run(go())
    assert stream.provider_used == "openai"
    assert len([c for c in chunks if c.text]) == 8  # the simulator's default split
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    assert sims["anthropic"].requests() == 0


def test_astream_fails_over_before_the_first_chunk(sims: Dict[str, Simulator]) -> None:
    sims["openai"].fail_next(1, {"status": 503})
    chain, breakers = tutorial_chain()
    chunks = collect(chain, "What is a deadlock?")
    text = "".join(c.text for c in chunks)
    assert text.startswith("Simulated answer from anthropic to: What is a deadlock?.")
    assert breakers[0].snapshot()["failures_in_window"] == 1


def test_astream_that_breaks_after_the_first_chunk_raises_stream_error_not_truncation(
    sims: Dict[str, Simulator],
) -> None:
    sims["openai"].fail_next(1, {"disconnect": {"after_chunks": 3}})
    chain, breakers = tutorial_chain()
    received: List[str] = []

    async def go() -> None:
        async for chunk in chain.astream("What is a deadlock?"):
            received.append(chunk.text)

    with pytest.raises(StreamError) as caught:
        asyncio.run(go())
    assert isinstance(caught.value, backstop.ProviderError)
    assert isinstance(caught.value, backstop.BackstopError)
    assert caught.value.provider == "openai"
    assert caught.value.kind in ("connect", "protocol")
    assert len(received) == 3
    assert "".join(received).startswith("Simulated answer from openai")
    # A failure after the commit point is the provider's failure.
    assert breakers[0].snapshot()["failures_in_window"] == 1
    assert sims["anthropic"].requests() == 0


def test_astream_raises_all_providers_failed_when_nothing_answers(
    sims: Dict[str, Simulator],
) -> None:
    for sim in sims.values():
        sim.fail_randomly(1.0, {"status": 500})
    chain, _ = tutorial_chain()
    with pytest.raises(AllProvidersFailedError) as caught:
        collect(chain, "hi")
    assert [e.provider for e in caught.value.errors] == ["openai", "anthropic", "groq"]
    assert {e.kind for e in caught.value.errors} == {"server"}


def test_cancelling_a_stream_after_its_first_chunk_is_neutral_for_the_breaker(
    sims: Dict[str, Simulator],
) -> None:
    sims["openai"].control("POST", "/_sim/timing", {"chunk_delay_ms": 5000})
    chain, (openai, _, _) = tutorial_chain()

    async def go() -> str:
        stream = chain.astream("hi")
        first = await stream.__anext__()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(stream.__anext__(), timeout=0.3)
        # The cancelled stream is over.
        assert [c async for c in stream] == []
        return first.text

    assert asyncio.run(go()).startswith("Simulated answer from openai")
    assert openai.snapshot()["failures_in_window"] == 0


def test_closing_a_stream_early_ends_it(sims: Dict[str, Simulator]) -> None:
    chain, _ = tutorial_chain()

    async def go() -> List[str]:
        got = []
        async with chain.astream("hi") as stream:
            async for chunk in stream:
                got.append(chunk.text)
                break
        # Closed: iterating again yields nothing more.
        got.extend([c.text async for c in stream])
        return got

    assert len(asyncio.run(go())) == 1
