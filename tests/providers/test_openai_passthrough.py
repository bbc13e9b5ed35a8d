from __future__ import annotations

from providers.adapters.openai import OpenAIPassthrough

USAGE_EVENT = b'data: {"id":"x","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n'
CONTENT = b'data: {"id":"x","choices":[{"index":0,"delta":{"content":"hi"}}],"usage":null}\n\n'
DONE = b"data: [DONE]\n\n"


def test_passes_events_through_and_reads_usage() -> None:
    reader = OpenAIPassthrough(drop_usage_chunk=False)
    out = reader.feed(CONTENT + USAGE_EVENT + DONE)
    assert out == CONTENT + USAGE_EVENT + DONE
    assert reader.usage is not None and reader.usage.prompt_tokens == 3
    assert reader.done


def test_drops_usage_only_chunk_when_client_did_not_ask() -> None:
    reader = OpenAIPassthrough(drop_usage_chunk=True)
    out = reader.feed(CONTENT + USAGE_EVENT + DONE)
    assert out == CONTENT + DONE
    assert reader.usage is not None and reader.usage.completion_tokens == 2


def test_events_split_across_chunks_are_reassembled() -> None:
    reader = OpenAIPassthrough(drop_usage_chunk=True)
    data = CONTENT + USAGE_EVENT + DONE
    out = b"".join(reader.feed(data[i : i + 7]) for i in range(0, len(data), 7))
    assert out == CONTENT + DONE
    assert reader.usage is not None


def test_crlf_framing_is_normalised() -> None:
    reader = OpenAIPassthrough(drop_usage_chunk=False)
    out = reader.feed(CONTENT.replace(b"\n", b"\r\n") + DONE.replace(b"\n", b"\r\n"))
    assert out == CONTENT + DONE
