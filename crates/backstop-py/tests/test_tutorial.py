"""The tutorial's programs, run with only their imports changed (examples/), against the
simulators: they print what the tutorial's expected output shows."""

from __future__ import annotations

import subprocess
import sys
from typing import Dict, List

from conftest import EXAMPLES
from simulators import Simulator

PROMPTS = [
    "Explain the difference between authentication and authorisation.",
    "What is a deadlock and how do you prevent one?",
    "Summarise the CAP theorem in three bullet points.",
]


def run(script: str, env: Dict[str, str]) -> List[str]:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def answered_blocks(lines: List[str]) -> List[List[str]]:
    """The output's blocks, one per prompt: the lines from 'Prompt:' to the next one."""
    blocks: List[List[str]] = []
    for line in lines:
        if line.startswith("Prompt: "):
            blocks.append([])
        if blocks and line:
            blocks[-1].append(line)
    return blocks


def test_complete_example_prints_the_tutorials_expected_output(
    sims: Dict[str, Simulator], env: Dict[str, str]
) -> None:
    blocks = answered_blocks(run("complete_example.py", env))
    assert len(blocks) == 3
    for block, prompt in zip(blocks, PROMPTS):
        assert block[0] == f"Prompt: {prompt!r}"
        assert block[1] == "Provider: openai"
        # The simulator echoes the first 60 characters of the prompt; the example prints
        # the first 120 characters of the answer and "...".
        echo = f"Simulated answer from openai to: {prompt[:60]}."
        assert block[2].startswith(f"Answer: {echo}")
        assert block[2].endswith("...")
        assert len(block[2]) == len("Answer: ") + 120 + len("...")
    assert sims["openai"].requests() == 3
    assert sims["anthropic"].requests() == 0
    assert sims["groq"].requests() == 0


def test_complete_example_falls_through_to_anthropic_when_openai_is_down(
    sims: Dict[str, Simulator], env: Dict[str, str]
) -> None:
    sims["openai"].fail_randomly(1.0, {"status": 503})
    blocks = answered_blocks(run("complete_example.py", env))
    assert [b[1] for b in blocks] == ["Provider: anthropic"] * 3
    for block, prompt in zip(blocks, PROMPTS):
        assert block[2].startswith(f"Answer: Simulated answer from anthropic to: {prompt[:60]}.")
    # 503 is retried once per request (retries_per_provider=1); the third failure opens the
    # breaker (failure_threshold=3), so the second request's retry and the third request make
    # no call to openai at all.
    assert sims["openai"].requests() == 3
    assert sims["anthropic"].requests() == 3


def test_complete_example_reports_all_failed_when_every_provider_is_down(
    sims: Dict[str, Simulator], env: Dict[str, str]
) -> None:
    for sim in sims.values():
        sim.fail_randomly(1.0, {"status": 500})
    blocks = answered_blocks(run("complete_example.py", env))
    assert [b[1:] for b in blocks] == [
        ["All providers failed — check your API keys and network."]
    ] * 3


def test_step5_story_falls_through_openai_then_anthropic_then_groq(
    sims: Dict[str, Simulator], env: Dict[str, str]
) -> None:
    lines = run("step5_story.py", env)
    assert lines[0] == "=== Fallback Chain Demo ==="
    assert "(OpenAI breaker now OPEN — next call will fall through to Anthropic)" in lines
    assert "(Anthropic breaker now OPEN — next call will fall through to Groq)" in lines
    blocks = answered_blocks(lines)
    assert len(blocks) == 3
    prompt = "What is idempotency in REST APIs?"
    first, second, third = blocks
    assert first[0] == f"Prompt: {prompt!r}"
    assert first[1].startswith(f"Answer: Simulated answer from openai to: {prompt}.")
    assert second[1] == " [fallback] Primary unavailable — answered by anthropic-haiku"
    assert second[2].startswith(f"Answer: Simulated answer from anthropic to: {prompt}.")
    assert third[1] == " [fallback] Primary unavailable — answered by groq-llama"
    assert third[2].startswith(f"Answer: Simulated answer from groq to: {prompt}.")
    # An open breaker refuses without a network call: each provider was called once.
    assert [s.requests() for s in sims.values()] == [1, 1, 1]
