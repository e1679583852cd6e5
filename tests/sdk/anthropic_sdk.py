"""The official `anthropic` Python SDK against a running tollgate.

Usage: python3 tests/sdk/anthropic_sdk.py BASE_URL API_KEY JWT LIMITED_KEY

Expects the models the Rust test `dataplane::sdk` configures: `claude` on a mock upstream that
speaks Anthropic's wire format (native), `gpt` on an OpenAI-compatible one (translated).
`API_KEY` is a `tg-` key (sent as `x-api-key`), `JWT` a token of the same user (sent as a
bearer), `LIMITED_KEY` a key whose user may make one request a minute.

Prints one JSON line per call, `{"request_id", "prompt", "output"}`, with the usage the SDK
was told (prompt = input + cache reads + cache writes), for the Rust test to compare with what
the gateway stored. Exits non-zero on the first failed check.
"""

import json
import sys

import anthropic

HELLO = [{"role": "user", "content": "hi"}]
TOOLS = [
    {
        "name": "get_weather",
        "description": "The weather in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]


def told(request_id, usage):
    prompt = (
        usage.input_tokens
        + (usage.cache_read_input_tokens or 0)
        + (usage.cache_creation_input_tokens or 0)
    )
    assert request_id, "every answer carries a request id"
    print(json.dumps({"request_id": request_id, "prompt": prompt, "output": usage.output_tokens}))


def check(client, model):
    # A whole answer.
    message = client.messages.create(model=model, max_tokens=64, messages=HELLO)
    assert message.model == model, message
    assert message.content[0].type == "text" and message.content[0].text, message
    told(message._request_id, message.usage)

    # A stream: text as it comes, and the final message.
    with client.messages.stream(model=model, max_tokens=64, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
        request_id = stream.response.headers.get("request-id")
    assert text == "Hello from upstream", text
    assert final.content[0].text == text and final.stop_reason == "end_turn", final
    told(request_id, final.usage)

    # Tools, whole and streamed.
    message = client.messages.create(model=model, max_tokens=64, messages=HELLO, tools=TOOLS)
    assert message.stop_reason == "tool_use", message
    call = [block for block in message.content if block.type == "tool_use"][0]
    assert call.name == "get_weather" and call.input == {"city": "Paris"}, call
    told(message._request_id, message.usage)
    with client.messages.stream(model=model, max_tokens=64, messages=HELLO, tools=TOOLS) as stream:
        final = stream.get_final_message()
        request_id = stream.response.headers.get("request-id")
    call = [block for block in final.content if block.type == "tool_use"][0]
    assert call.name == "get_weather" and call.input == {"city": "Paris"}, final
    assert final.stop_reason == "tool_use", final
    told(request_id, final.usage)

    # Counting tokens is free and needs no max_tokens.
    counted = client.messages.count_tokens(model=model, messages=HELLO)
    assert counted.input_tokens > 0, counted


def main() -> None:
    base_url, key, jwt, limited = sys.argv[1:5]
    by_key = anthropic.Anthropic(base_url=base_url, api_key=key, max_retries=0, timeout=20)
    by_token = anthropic.Anthropic(base_url=base_url, auth_token=jwt, max_retries=0, timeout=20)
    for model in ["claude", "gpt"]:
        for client in [by_key, by_token]:
            check(client, model)
    assert by_key.messages.count_tokens(model="claude", messages=HELLO).input_tokens == 42

    # Errors, in Anthropic's envelope, raise the SDK's own exceptions.
    stranger = anthropic.Anthropic(base_url=base_url, api_key="tg-not-a-key", max_retries=0)
    try:
        stranger.messages.create(model="claude", max_tokens=8, messages=HELLO)
        raise AssertionError("a wrong key was accepted")
    except anthropic.AuthenticationError as error:
        assert error.status_code == 401 and error.body["error"]["type"] == "authentication_error"
    try:
        by_key.messages.create(model="no-such-model", max_tokens=8, messages=HELLO)
        raise AssertionError("an unknown model was served")
    except anthropic.NotFoundError as error:
        assert error.body["error"]["type"] == "not_found_error", error.body
    limited_client = anthropic.Anthropic(base_url=base_url, api_key=limited, max_retries=0)
    limited_client.messages.create(model="claude", max_tokens=8, messages=HELLO)
    try:
        limited_client.messages.create(model="claude", max_tokens=8, messages=HELLO)
        raise AssertionError("the per-minute limit let a second request through")
    except anthropic.RateLimitError as error:
        assert error.body["error"]["type"] == "rate_limit_error", error.body
        assert error.response.headers.get("retry-after"), error.response.headers


if __name__ == "__main__":
    main()
