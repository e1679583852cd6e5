"""The official `openai` Python SDK's Responses API and legacy completions against tollgate.

Usage: python3 tests/sdk/openai_dialects.py BASE_URL API_KEY

Expects the models the Rust test `dataplane::sdk` configures for it: `gpt` on an OpenAI-style
mock upstream that serves the Responses API, `compat` on one configured without it (so
/v1/responses is translated to chat completions), `claude` on an Anthropic-style one. Exits
non-zero on the first failed check.
"""

import json
import sys

import openai


def check_usage(usage, total, input_tokens=None):
    assert usage is not None, "no usage"
    assert usage.total_tokens == total, usage
    assert usage.input_tokens + usage.output_tokens == total, usage
    if input_tokens is not None:
        assert usage.input_tokens == input_tokens, usage


def streamed_response(client, **kwargs):
    """The text of a streamed response and its final `response.completed` event."""
    events = list(client.responses.create(stream=True, **kwargs))
    numbers = [event.sequence_number for event in events]
    assert numbers == list(range(len(numbers))), numbers
    assert events[0].type == "response.created", events[0]
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1]
    assert final.type == "response.completed", final
    return text, final


def responses(client):
    # Native: the upstream serves the Responses API.
    reply = client.responses.create(model="gpt", input="hi", max_output_tokens=100)
    assert reply.output_text == "Hello from gpt-real", reply
    assert reply.model == "gpt", reply.model
    check_usage(reply.usage, 17, input_tokens=11)
    assert reply.usage.input_tokens_details.cached_tokens == 3, reply.usage
    assert reply.usage.output_tokens_details.reasoning_tokens == 2, reply.usage

    text, final = streamed_response(client, model="gpt", input="hi")
    assert text == "Hello from upstream", text
    assert final.response.output_text == "Hello from upstream", final.response
    check_usage(final.response.usage, 17)

    # Translated: the upstream speaks chat completions only.
    reply = client.responses.create(
        model="compat",
        instructions="Be brief.",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
    )
    assert reply.output_text == "Hello from compat-real", reply
    assert reply.model == "compat", reply.model
    assert reply.status == "completed", reply
    check_usage(reply.usage, 10, input_tokens=7)

    text, final = streamed_response(client, model="compat", input="hi")
    assert text == "Hello from upstream", text
    assert final.response.output_text == "Hello from upstream", final.response
    assert final.response.model == "compat", final.response
    check_usage(final.response.usage, 10)

    # The SDK's own stream helper accumulates the translated events into a response.
    with client.responses.stream(model="compat", input="hi") as stream:
        for _ in stream:
            pass
        accumulated = stream.get_final_response()
    assert accumulated.output_text == "Hello from upstream", accumulated

    tools = [
        {
            "type": "function",
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    reply = client.responses.create(model="compat", input="weather?", tools=tools)
    call = reply.output[0]
    assert call.type == "function_call" and call.name == "get_weather", reply.output
    assert json.loads(call.arguments) == {"city": "Paris"}, call

    # State needs an upstream that keeps it.
    try:
        client.responses.create(model="compat", input="and?", previous_response_id="resp_1")
        raise AssertionError("previous_response_id was accepted on a translated route")
    except openai.BadRequestError as error:
        assert error.param == "previous_response_id", error.body


def completions(client):
    reply = client.completions.create(model="gpt", prompt="Say hi", max_tokens=20, n=2)
    assert [c.text for c in reply.choices] == ["Hello from gpt-real #0", "Hello from gpt-real #1"]
    assert reply.usage.total_tokens == 9, reply.usage

    for model, total in [("gpt", 9), ("claude", 20)]:
        chunks = list(
            client.completions.create(
                model=model,
                prompt="Say hi",
                max_tokens=20,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        text = "".join(c.choices[0].text for c in chunks if c.choices)
        assert text == "Hello from upstream", (model, text)
        assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == total, chunks[-1]

    reply = client.completions.create(model="claude", prompt="Say hi", max_tokens=20)
    assert reply.choices[0].text == "Hello from claude-real", reply
    assert reply.model == "claude", reply.model
    assert reply.usage.total_tokens == 20, reply.usage


def main() -> None:
    base_url, key = sys.argv[1].rstrip("/") + "/v1", sys.argv[2]
    client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=20)
    responses(client)
    completions(client)
    print("openai SDK dialect checks passed")


if __name__ == "__main__":
    main()
