"""Start ``backstop-sim`` provider simulators on loopback and point the providers at them.

Used by ``try_tutorial.py`` and by the tests (``tests/conftest.py``). Each simulator is a
separate process speaking the OpenAI, Anthropic and Groq wire formats; faults are injected
through its ``/_sim/`` control API (see crates/backstop-sim/src/lib.rs).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any, Dict, Optional

REPO = Path(__file__).resolve().parents[3]
PROVIDERS = ("openai", "anthropic", "groq")

# Loopback only, whatever proxy the environment names.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def sim_binary(build: bool = False) -> Path:
    """The ``backstop-sim`` binary: ``$BACKSTOP_SIM``, else the workspace's debug or release
    build; with ``build``, ``cargo build -p backstop-sim`` makes one when there is none."""
    env = os.environ.get("BACKSTOP_SIM")
    if env:
        return Path(env)
    for profile in ("debug", "release"):
        candidate = REPO / "target" / profile / "backstop-sim"
        if candidate.exists():
            return candidate
    if build and shutil.which("cargo"):
        subprocess.run(
            ["cargo", "build", "--quiet", "-p", "backstop-sim"], cwd=REPO, check=True
        )
        return REPO / "target" / "debug" / "backstop-sim"
    raise FileNotFoundError(
        "backstop-sim not found: build it with `cargo build -p backstop-sim` "
        "or set BACKSTOP_SIM to its path"
    )


class Simulator:
    """One ``backstop-sim`` process on 127.0.0.1 (a free port)."""

    def __init__(self, binary: Path, *extra_args: str) -> None:
        self.process = subprocess.Popen(
            [str(binary), "--listen", "127.0.0.1:0", *extra_args],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        prefix = "backstop-sim listening on "
        if not line.startswith(prefix):
            self.process.kill()
            raise RuntimeError(f"backstop-sim did not start: {line!r}")
        self.base_url = line[len(prefix) :]

    def control(self, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"content-type": "application/json"},
        )
        with _OPENER.open(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def fail_next(self, count: int, fault: Any) -> None:
        """The next ``count`` requests get ``fault`` (e.g. ``{"status": 503}``, ``"hang"``)."""
        self.control("POST", "/_sim/faults", {"next": [{"count": count, "fault": fault}]})

    def fail_randomly(self, rate: float, fault: Any, scope: str = "all") -> None:
        """Each request gets ``fault`` with probability ``rate``."""
        self.control(
            "POST",
            "/_sim/faults",
            {"random": [{"rate": rate, "fault": fault, "scope": scope}]},
        )

    def reset(self) -> None:
        """No faults, zero counters, default timing (no delays, 8 chunks)."""
        self.control("POST", "/_sim/reset", {})
        self.control(
            "POST",
            "/_sim/timing",
            {"latency_ms": 0, "ttft_ms": 0, "chunk_delay_ms": 0, "chunks": 8},
        )

    def requests(self) -> int:
        """Requests received since the last reset."""
        return int(self.control("GET", "/_sim/stats")["requests"])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def provider_env(sims: Dict[str, Simulator]) -> Dict[str, str]:
    """The environment variables that point the providers at the simulators, with fake keys."""
    return {
        "OPENAI_BASE_URL": sims["openai"].base_url + "/v1",
        "ANTHROPIC_BASE_URL": sims["anthropic"].base_url,
        "GROQ_BASE_URL": sims["groq"].base_url,
        "OPENAI_API_KEY": "sk-test-openai",
        "ANTHROPIC_API_KEY": "sk-ant-test",
        "GROQ_API_KEY": "gsk_test",
        "NO_PROXY": "127.0.0.1,localhost",
    }


def start_all(binary: Path) -> Dict[str, Simulator]:
    """One simulator per provider of the tutorial's chain."""
    sims: Dict[str, Simulator] = {}
    try:
        for name in PROVIDERS:
            sims[name] = Simulator(binary)
    except BaseException:
        stop_all(sims)
        raise
    return sims


def stop_all(sims: Dict[str, Simulator]) -> None:
    for sim in sims.values():
        sim.stop()
