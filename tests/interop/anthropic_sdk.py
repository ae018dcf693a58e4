"""The official `anthropic` Python SDK against backstop's `/v1/messages`: plain, streamed and
tool use, through a chain whose Anthropic-format provider is down, so OpenAI answers.

Usage: BACKSTOP_KEY=<client key> python anthropic_sdk.py http://127.0.0.1:PORT
"""

import os
import sys

import anthropic

client = anthropic.Anthropic(base_url=sys.argv[1].rstrip("/"), api_key=os.environ["BACKSTOP_KEY"],
                             max_retries=0, timeout=20)
ASK = [{"role": "user", "content": "What is a deadlock?"}]
TOOLS = [{"name": "get_weather", "description": "Current weather in a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
passed = 0
failed = 0
answer = {}


def check(name, fn):
    global passed, failed
    try:
        fn()
        print(f"ok   {name}")
        passed += 1
    except Exception as e:  # noqa: BLE001 - report every failure, keep going
        print(f"FAIL {name}: {type(e).__name__}: {e}")
        failed += 1


def plain():
    raw = client.messages.with_raw_response.create(model="default", max_tokens=200, system="Be brief.", messages=ASK)
    assert raw.headers["x-backstop-provider"] == "openai", raw.headers
    m = raw.parse()
    assert m.type == "message" and m.role == "assistant", m
    assert m.stop_reason == "end_turn", m.stop_reason
    text = m.content[0].text
    assert text.startswith("Simulated answer from openai to: What is a deadlock?"), text
    assert m.usage.output_tokens > 0, m.usage
    answer["text"] = text


def streamed():
    with client.messages.stream(model="default", max_tokens=200, system="Be brief.", messages=ASK) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == answer.get("text"), (text, answer.get("text"))
    assert final.stop_reason == "end_turn", final.stop_reason
    assert final.content[0].text == text


def tool_use():
    ask = [{"role": "user", "content": "Weather in Oslo?"}]
    m = client.messages.create(model="default", max_tokens=200, tools=TOOLS, messages=ask)
    assert m.stop_reason == "tool_use", m
    call = next(b for b in m.content if b.type == "tool_use")
    assert call.name == "get_weather" and call.input == {"city": "sim"}, call
    follow = ask + [
        {"role": "assistant", "content": m.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "snow, -3C"}]},
    ]
    with client.messages.stream(model="default", max_tokens=200, tools=TOOLS, messages=follow) as s:
        final = s.get_final_message()
    assert final.stop_reason == "end_turn", final
    assert final.content[0].text.startswith("Simulated answer from openai after the tool returned: snow, -3C."), final


def streamed_tool_use():
    with client.messages.stream(model="default", max_tokens=200, tools=TOOLS,
                                messages=[{"role": "user", "content": "Weather?"}]) as s:
        final = s.get_final_message()
    assert final.stop_reason == "tool_use", final
    call = next(b for b in final.content if b.type == "tool_use")
    assert call.input == {"city": "sim"}, call


def errors():
    try:
        client.messages.create(model="no-such-chain", max_tokens=10, messages=ASK)
    except anthropic.NotFoundError as e:
        assert e.body["error"]["type"] == "not_found_error", e.body
    else:
        raise AssertionError("expected NotFoundError")
    bad = anthropic.Anthropic(base_url=sys.argv[1].rstrip("/"), api_key="wrong-key", max_retries=0, timeout=20)
    try:
        bad.messages.create(model="default", max_tokens=10, messages=ASK)
    except anthropic.AuthenticationError:
        return
    raise AssertionError("expected AuthenticationError")


check("plain message via failover to OpenAI", plain)
check("streamed message equals the plain one", streamed)
check("tool use round trip (tool_use, tool_result, answer)", tool_use)
check("streamed tool use assembles its input", streamed_tool_use)
check("unknown model and bad key -> the SDK's typed errors", errors)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
