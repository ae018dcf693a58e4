"""The official `openai` Python SDK as a real client of `backstop serve --demo`.

Usage: BACKSTOP_KEY=<client key> python openai_sdk.py http://127.0.0.1:PORT
"""

import os
import sys

import openai

base = sys.argv[1].rstrip("/") + "/v1"
key = os.environ["BACKSTOP_KEY"]
client = openai.OpenAI(base_url=base, api_key=key, max_retries=0, timeout=20)
messages = [{"role": "user", "content": "What is a deadlock?"}]
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


answer = {}


def plain_answer():
    raw = client.chat.completions.with_raw_response.create(model="default", messages=messages)
    r = raw.parse()
    text = r.choices[0].message.content
    assert text.startswith("Simulated answer from openai"), text
    assert r.choices[0].finish_reason == "stop", r.choices[0].finish_reason
    assert r.usage.total_tokens > 0, r.usage
    assert raw.headers["x-backstop-provider"] == "openai", raw.headers
    assert raw.headers["x-backstop-attempts"] == "1", raw.headers
    # The SDK's `_request_id` is the gateway's `x-request-id`.
    assert r._request_id and r._request_id == raw.headers["x-request-id"], raw.headers
    answer["text"] = text
    answer["model"] = r.model


OPENAI_FINISH_REASONS = {"stop", "length", "tool_calls", "content_filter", "function_call"}


def streamed_answer():
    raw = client.chat.completions.with_raw_response.create(
        model="default", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    assert raw.headers.get("x-accel-buffering") == "no", raw.headers
    chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == answer.get("text"), (text, answer.get("text"))
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0, chunks[-1]
    # OpenAI: with include_usage every other chunk has `usage: null`.
    assert all(c.usage is None for c in chunks[:-1]), [c.usage for c in chunks[:-1]]
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"], finishes
    # The same model as the non-streamed answer.
    assert {c.model for c in chunks} == {answer.get("model")}, ({c.model for c in chunks}, answer)


def finish_reason_and_usage_are_openai_shaped():
    r = client.chat.completions.create(model="default", messages=messages)
    assert r.choices[0].finish_reason in OPENAI_FINISH_REASONS, r.choices[0].finish_reason
    assert r.choices[0].message.refusal is None, r.choices[0].message
    u = r.usage
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens, u


def models_retrieve():
    m = client.models.retrieve("default")
    assert (m.id, m.object, m.owned_by) == ("default", "model", "backstop"), m
    try:
        client.models.retrieve("no-such-chain")
    except openai.NotFoundError:
        return
    raise AssertionError("expected NotFoundError")


def unknown_model():
    try:
        client.chat.completions.create(model="no-such-chain", messages=messages)
    except openai.NotFoundError as e:
        assert "no-such-chain" in str(e), e
        return
    raise AssertionError("expected NotFoundError")


def bad_key():
    bad = openai.OpenAI(base_url=base, api_key="wrong-key", max_retries=0, timeout=20)
    try:
        bad.chat.completions.create(model="default", messages=messages)
    except openai.AuthenticationError:
        return
    raise AssertionError("expected AuthenticationError")


def models_list():
    ids = sorted(m.id for m in client.models.list())
    assert ids == ["balanced", "default", "embed"], ids


def unsupported_field():
    try:
        client.chat.completions.create(model="default", messages=messages, n=2)
    except openai.BadRequestError as e:
        assert e.body["param"] == "n", e.body
        return
    raise AssertionError("expected BadRequestError")


def embeddings_create():
    # The SDK asks for base64 unless told otherwise and decodes it: both encodings must agree.
    texts = ["first text", "second text"]
    raw = client.embeddings.with_raw_response.create(model="embed", input=texts)
    r = raw.parse()
    assert [d.index for d in r.data] == [0, 1], r.data
    assert all(len(d.embedding) == 8 for d in r.data), r.data
    assert r.model == "text-embedding-3-small", r.model
    assert raw.headers["x-backstop-provider"] == "openai_embed", raw.headers
    floats = client.embeddings.create(model="embed", input=texts, encoding_format="float")
    for a, b in zip(r.data, floats.data):
        assert all(abs(x - y) < 1e-6 for x, y in zip(a.embedding, b.embedding)), (a, b)
    shorter = client.embeddings.create(model="embed", input="one", dimensions=4)
    assert len(shorter.data[0].embedding) == 4, shorter
    assert shorter.usage.prompt_tokens > 0, shorter.usage


def embeddings_from_a_chat_chain():
    try:
        client.embeddings.create(model="default", input="x")
    except openai.BadRequestError as e:
        assert e.body["code"] == "model_not_embeddings", e.body
        return
    raise AssertionError("expected BadRequestError")


check("plain answer with x-backstop headers", plain_answer)
check("streamed answer equals the plain one, with usage", streamed_answer)
check("finish reason, refusal and usage are OpenAI-shaped", finish_reason_and_usage_are_openai_shaped)
check("models.retrieve() serves a chain, NotFoundError otherwise", models_retrieve)
check("unknown model -> NotFoundError", unknown_model)
check("bad key -> AuthenticationError", bad_key)
check("models.list() lists the chains", models_list)
check("n=2 -> BadRequestError naming the field", unsupported_field)
check("embeddings.create(): base64 (the SDK's default) and float agree, dimensions", embeddings_create)
check("embeddings from a chat chain -> BadRequestError", embeddings_from_a_chat_chain)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
