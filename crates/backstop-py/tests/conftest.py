"""Fixtures: three backstop-sim simulators (openai, anthropic, groq) for the session, reset
before each test that uses them, and the provider environment pointing at them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Dict, Iterator

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))

import simulators  # noqa: E402
from simulators import Simulator  # noqa: E402


@pytest.fixture(scope="session")
def sim_binary() -> Path:
    return simulators.sim_binary()


@pytest.fixture(scope="session")
def _session_sims(sim_binary: Path) -> Iterator[Dict[str, Simulator]]:
    sims = simulators.start_all(sim_binary)
    yield sims
    simulators.stop_all(sims)


@pytest.fixture
def sims(
    _session_sims: Dict[str, Simulator], monkeypatch: pytest.MonkeyPatch
) -> Dict[str, Simulator]:
    """The simulators, reset, with OPENAI_BASE_URL etc. and fake keys set (providers read them
    when created, so create them inside the test)."""
    for sim in _session_sims.values():
        sim.reset()
    for var, value in simulators.provider_env(_session_sims).items():
        monkeypatch.setenv(var, value)
    return _session_sims


@pytest.fixture
def env(sims: Dict[str, Simulator]) -> Dict[str, str]:
    """The environment for a subprocess running against the simulators."""
    import os

    return {**os.environ, **simulators.provider_env(sims)}
