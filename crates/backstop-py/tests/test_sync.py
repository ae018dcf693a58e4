"""The blocking ``generate()``: Ctrl-C interrupts it, and a forked child is told plainly that
the runtime did not survive the fork."""

from __future__ import annotations

import os
import signal
import threading
from typing import Dict

import pytest

from chains import tutorial_chain
from simulators import Simulator


def test_ctrl_c_interrupts_a_blocking_generate_and_counts_as_a_cancellation(
    sims: Dict[str, Simulator],
) -> None:
    sims["openai"].fail_next(1, "hang")
    # The deadline only bounds the test if the interrupt were ignored (it would fail below).
    chain, (openai, _, _) = tutorial_chain(timeout=10)

    def interrupt_once_the_call_is_sent() -> None:
        for _ in range(5000):
            if sims["openai"].requests() == 1:
                break
        os.kill(os.getpid(), signal.SIGINT)

    # Python installs its Ctrl-C handler only if SIGINT was not ignored when it started, and a
    # runner started in the background (`cmd &` without job control, nohup) ignores it: the
    # SIGINT below would then be dropped and the call run to its deadline. Install it here.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    interrupter = threading.Thread(target=interrupt_once_the_call_is_sent)
    interrupter.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            chain.generate("hi")
    finally:
        interrupter.join()
        signal.signal(signal.SIGINT, previous)
    # Like any cancellation of an in-flight call (cancel_counts_as_timeout), a timeout.
    assert openai.snapshot()["failures_in_window"] == 1
    assert sims["anthropic"].requests() == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_gets_a_clear_error_instead_of_a_hang() -> None:
    from backstop.resilience import CircuitBreaker, fallback_chain
    from backstop.testing import ScriptedLLM

    chain = fallback_chain([(ScriptedLLM("a"), CircuitBreaker("a"))])
    chain.generate("hi")  # the parent's runtime is running
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what generate() raised, then leave at once
        os.close(read)
        try:
            chain.generate("hi")
            message = b"no error"
        except RuntimeError as e:
            message = str(e).encode()
        except BaseException as e:  # pragma: no cover - reported to the parent
            message = repr(e).encode()
        os.write(write, message)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        said = pipe.read().decode()
    os.waitpid(pid, 0)
    assert "before os.fork()" in said, said
    assert chain.generate("hi").provider_used == "a"  # the parent is unaffected
