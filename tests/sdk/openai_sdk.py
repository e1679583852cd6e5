"""The official `openai` Python SDK against a running tollgate.

Usage: python3 tests/sdk/openai_sdk.py BASE_URL API_KEY

Expects the models the Rust test `dataplane::sdk` configures: `m` and `e` on an OpenAI-style
mock upstream (which knows them as `real-m` and `real-e`), `demo` and `meta/llama-3` on the
built-in mock provider. Exits non-zero on the first failed check.
"""

import array
import base64
import json
import sys

import openai


def main() -> None:
    base_url, key = sys.argv[1].rstrip("/") + "/v1", sys.argv[2]
    client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=20)
    hello = [{"role": "user", "content": "hi"}]

    # Chat.
    reply = client.chat.completions.create(model="m", messages=hello)
    assert reply.choices[0].message.content == "Hello from real-m", reply
    assert reply.usage.total_tokens == 10, reply.usage
    assert reply.model == "m", "the alias asked for, not the upstream's real-m"

    # Streaming, with usage in a final choices-less chunk.
    chunks = list(
        client.chat.completions.create(
            model="m", messages=hello, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from upstream", text
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 10, chunks[-1]
    assert all(c.usage is None for c in chunks[:-1])
    assert all(c.model == "m" for c in chunks), [c.model for c in chunks]

    # Streaming without include_usage: no usage chunk.
    plain = list(client.chat.completions.create(model="m", messages=hello, stream=True))
    assert all(c.choices for c in plain), plain[-1]

    # Tool calls.
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    reply = client.chat.completions.create(model="m", messages=hello, tools=tools)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls", choice
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather", call
    assert json.loads(call.function.arguments) == {"city": "Paris"}, call

    # The built-in mock provider, a translating adapter.
    reply = client.chat.completions.create(model="demo", messages=hello)
    assert reply.choices[0].message.content == "You said: hi", reply
    assert reply.model == "demo", reply.model
    raw = client.chat.completions.with_raw_response.create(model="demo", messages=hello)
    message = json.loads(raw.text)["choices"][0]["message"]
    assert "refusal" in message and message["refusal"] is None, message

    # Embeddings.
    vectors = client.embeddings.create(model="e", input=["a", "b"])
    assert [d.index for d in vectors.data] == [0, 1], vectors
    assert len(vectors.data[0].embedding) == 3, vectors

    # Embeddings from a translating adapter: base64 (little-endian f32) is the float vector.
    texts = ["first", "second"]
    floats = client.embeddings.create(model="demo", input=texts, encoding_format="float")
    packed = client.embeddings.create(model="demo", input=texts, encoding_format="base64")
    assert packed.model == "demo", packed.model
    for f, p in zip(floats.data, packed.data, strict=True):
        assert isinstance(p.embedding, str), p
        decoded = array.array("f", base64.b64decode(p.embedding))
        if sys.byteorder == "big":
            decoded.byteswap()
        assert len(decoded) == 8, decoded
        assert decoded.tolist() == array.array("f", f.embedding).tolist(), (decoded, f.embedding)
    # Without encoding_format the SDK asks for base64 itself and decodes it.
    default = client.embeddings.create(model="demo", input=texts)
    expected = [array.array("f", f.embedding).tolist() for f in floats.data]
    assert [list(d.embedding) for d in default.data] == expected, default

    # Models: only what the tenant may use.
    ids = sorted(m.id for m in client.models.list())
    assert ids == ["demo", "e", "m", "meta/llama-3"], ids
    model = client.models.retrieve("m")
    assert (model.id, model.object, model.owned_by) == ("m", "model", "tollgate"), model
    assert client.models.retrieve("meta/llama-3").id == "meta/llama-3"
    try:
        client.models.retrieve("no-such-model")
        raise AssertionError("an unknown model was retrieved")
    except openai.NotFoundError as error:
        assert error.code == "model_not_found", error.body

    # Errors map to the SDK's exception classes.
    try:
        client.chat.completions.create(model="no-such-model", messages=hello)
        raise AssertionError("an unknown model was accepted")
    except openai.NotFoundError as error:
        assert error.code == "model_not_found", error.body

    bad = openai.OpenAI(base_url=base_url, api_key="tg-not-a-real-key", max_retries=0)
    try:
        bad.chat.completions.create(model="m", messages=hello)
        raise AssertionError("a bad token was accepted")
    except openai.AuthenticationError as error:
        assert error.status_code == 401, error
        assert error.code == "invalid_credentials", error.body

    print("openai SDK checks passed")


if __name__ == "__main__":
    main()
