"""The official `openai` Python SDK: a two-turn tool round trip (call -> tool result ->
answer), streamed and not, through a chain whose Anthropic-format first provider is down and
fails over to an OpenAI-format one; and a json_schema answer that parses.

Usage: BACKSTOP_KEY=<client key> python openai_sdk_tools.py http://127.0.0.1:PORT
"""

import json
import os
import sys

import openai

base = sys.argv[1].rstrip("/") + "/v1"
client = openai.OpenAI(base_url=base, api_key=os.environ["BACKSTOP_KEY"], max_retries=0, timeout=20)
TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}]
ASK = {"role": "user", "content": "What is the weather in Paris?"}
passed = 0
failed = 0


def check(name, fn):
    global passed, failed
    try:
        fn()
        print(f"ok   {name}")
        passed += 1
    except Exception as e:  # noqa: BLE001 - report every failure, keep going
        print(f"FAIL {name}: {type(e).__name__}: {e}")
        failed += 1


def answer_after(call_id, call_name, call_args, stream):
    """The second turn: the tool's result goes back, the model answers."""
    messages = [
        ASK,
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": call_name, "arguments": call_args}}]},
        {"role": "tool", "tool_call_id": call_id, "content": "sunny, 21C"},
    ]
    if not stream:
        raw = client.chat.completions.with_raw_response.create(model="default", messages=messages, tools=TOOLS)
        assert raw.headers["x-backstop-provider"] == "openai", raw.headers
        r = raw.parse()
        assert r.choices[0].finish_reason == "stop", r.choices[0]
        return r.choices[0].message.content
    chunks = list(client.chat.completions.create(model="default", messages=messages, tools=TOOLS, stream=True))
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"], finishes
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def round_trip_plain():
    raw = client.chat.completions.with_raw_response.create(model="default", messages=[ASK], tools=TOOLS)
    assert raw.headers["x-backstop-provider"] == "openai", raw.headers
    # The Anthropic provider was tried (and retried) before OpenAI answered.
    assert int(raw.headers["x-backstop-attempts"]) >= 2, raw.headers
    r = raw.parse()
    assert r.choices[0].finish_reason == "tool_calls", r.choices[0]
    call = r.choices[0].message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather", call
    assert json.loads(call.function.arguments) == {"city": "sim"}, call.function.arguments
    text = answer_after(call.id, call.function.name, call.function.arguments, stream=False)
    assert text.startswith("Simulated answer from openai after the tool returned: sunny, 21C."), text


def round_trip_streamed():
    chunks = list(client.chat.completions.create(model="default", messages=[ASK], tools=TOOLS, stream=True))
    calls = {}
    for c in chunks:
        for d in (c.choices[0].delta.tool_calls or []) if c.choices else []:
            slot = calls.setdefault(d.index, {"id": None, "name": "", "arguments": ""})
            if d.id:
                slot["id"] = d.id
            if d.function and d.function.name:
                slot["name"] += d.function.name
            if d.function and d.function.arguments:
                slot["arguments"] += d.function.arguments
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["tool_calls"], finishes
    assert list(calls) == [0], calls
    call = calls[0]
    assert call["id"] and call["name"] == "get_weather", call
    assert json.loads(call["arguments"]) == {"city": "sim"}, call
    text = answer_after(call["id"], call["name"], call["arguments"], stream=True)
    assert text.startswith("Simulated answer from openai after the tool returned: sunny, 21C."), text


def json_schema_answer():
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
              "required": ["name", "age"], "additionalProperties": False}
    r = client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": "Invent a person."}],
        response_format={"type": "json_schema", "json_schema": {"name": "person", "strict": True, "schema": schema}})
    person = json.loads(r.choices[0].message.content)
    assert set(person) == {"name", "age"} and isinstance(person["age"], int), person


check("tool round trip (call, result, answer) via failover", round_trip_plain)
check("streamed tool round trip via failover", round_trip_streamed)
check("json_schema answer parses", json_schema_answer)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
