"""In-process scripted providers for your tests: no network, no keys.

``ScriptedLLM("primary", [fail("overloaded"), reply("hello")])`` fails its first call and
answers every later one (the last step repeats); ``calls`` counts the calls it received.
"""

from backstop._native import (
    ScriptedLLM,
    Step,
    chunks,
    chunks_then_fail,
    delay,
    fail,
    hang,
    reply,
)

__all__ = ["ScriptedLLM", "Step", "chunks", "chunks_then_fail", "delay", "fail", "hang", "reply"]
