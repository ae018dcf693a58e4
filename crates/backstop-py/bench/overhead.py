"""What the Python binding adds per call, beside the Rust chain it calls.

The chains are the ones `cargo bench -p backstop --bench chain -- "python baseline"`
measures: two in-process scripted providers behind count breakers, the primary answering (only
the chain's and the binding's own work is timed: such a call finishes on its first poll, on the
caller's thread); and the OpenAI provider over loopback HTTP to a zero-latency backstop-sim (the
call runs on the runtime's threads and its result crosses back to the event loop). Prints the
median over rounds of the time per call for the blocking `generate()`, `await agenerate()` one
at a time, and many `agenerate()` calls in flight at once from one loop (`asyncio.gather`).

    cargo build --release -p backstop-sim
    (cd crates/backstop-py && maturin develop --release)
    BACKSTOP_SIM=target/release/backstop-sim python crates/backstop-py/bench/overhead.py
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, List

from backstop.llms.openai import OpenAILLM
from backstop.resilience import CircuitBreaker, FallbackChain, fallback_chain
from backstop.testing import ScriptedLLM

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import simulators  # noqa: E402

ROUNDS = 15


def scripted_chain() -> FallbackChain:
    return fallback_chain(
        providers=[
            (ScriptedLLM("primary"), CircuitBreaker("primary", failure_threshold=3)),
            (ScriptedLLM("secondary"), CircuitBreaker("secondary", failure_threshold=3)),
        ]
    )


def http_chain(base_url: str) -> FallbackChain:
    return fallback_chain(
        providers=[
            (
                OpenAILLM("gpt-4o-mini", base_url=base_url + "/v1", api_key="sk-bench"),
                CircuitBreaker("openai", failure_threshold=3),
            ),
            (ScriptedLLM("secondary"), CircuitBreaker("secondary", failure_threshold=3)),
        ]
    )


def median_per_call(run_round: Callable[[], int]) -> float:
    """Median over ROUNDS of (round time / calls in the round), in microseconds."""
    run_round()  # warm-up
    per_call: List[float] = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        calls = run_round()
        per_call.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(per_call)


def measure(c: FallbackChain, expect: str, n_sync: int, n_async: int, n_gather: int) -> None:
    assert c.generate("hi").provider_used == expect

    def sync_round() -> int:
        for _ in range(n_sync):
            c.generate("hi")
        return n_sync

    async def sequential() -> None:
        for _ in range(n_async):
            await c.agenerate("hi")

    async def concurrent() -> None:
        results = await asyncio.gather(*(c.agenerate("hi") for _ in range(n_gather)))
        assert all(r.provider_used == expect for r in results)

    def async_round() -> int:
        asyncio.run(sequential())
        return n_async

    def gather_round() -> int:
        asyncio.run(concurrent())
        return n_gather

    print(f"  generate() (blocking)                     {median_per_call(sync_round):8.2f}")
    print(f"  await agenerate(), one at a time          {median_per_call(async_round):8.2f}")
    print(f"  agenerate() x{n_gather:<5} in flight (gather)    {median_per_call(gather_round):8.2f}")


def loop_floor() -> float:
    """The event loop's own cost for one future resolved from another thread
    (call_soon_threadsafe), the floor under any bridge that wakes the loop per call."""

    def loop_round() -> int:
        async def go() -> None:
            loop = asyncio.get_running_loop()
            for _ in range(2000):
                fut = loop.create_future()
                loop.call_soon_threadsafe(fut.set_result, None)
                await fut

        asyncio.run(go())
        return 2000

    return median_per_call(loop_round)


def main() -> None:
    print(f"python {sys.version.split()[0]}, median of {ROUNDS} rounds, microseconds per call")
    print("in-process scripted providers:")
    measure(scripted_chain(), "primary", 5000, 2000, 1000)
    sim = simulators.Simulator(simulators.sim_binary(), "--no-record")
    try:
        print("OpenAI provider over loopback HTTP (backstop-sim, zero latency):")
        measure(http_chain(sim.base_url), "openai", 500, 500, 100)
    finally:
        sim.stop()
    print(f"asyncio floor: call_soon_threadsafe + await  {loop_floor():8.2f}")


if __name__ == "__main__":
    main()
