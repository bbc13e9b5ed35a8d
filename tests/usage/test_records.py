"""usage_record_batch: every record is stored with its cost, the key's name at the time and an
error text without secrets; the recorder's writer thread goes through it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from gateway.recorder import Record, Recorder
from gateway.snapshot import snapshot_mark_dirty
from tests.factories import ApiKeyFactory, PriceOverrideFactory, ProviderConnectionFactory
from usage.models import UsageRecord
from usage.services import usage_record_batch

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_snapshot() -> None:
    snapshot_mark_dirty()


def test_batch_stores_cost_and_every_usage_field() -> None:
    PriceOverrideFactory.create(
        model="pinned", input=Decimal("2"), output=Decimal("10"), cached=Decimal("0.5"), reasoning=Decimal("4")
    )
    key = ApiKeyFactory.create(name="billing-team")
    record = Record(
        request_id="r1",
        endpoint="/v1/chat/completions",
        status_code=200,
        api_key_id=key.pk,
        provider="openai",
        model="pinned",
        connection_id=7,
        stream=True,
        prompt_tokens=3000,
        completion_tokens=1500,
        cached_tokens=1000,
        reasoning_tokens=500,
        cache_creation_tokens=0,
        client_format="anthropic",
        latency_ms=812.34567,
        ttfb_ms=95.12345,
        created_at=1_790_000_000.0,
    )
    assert usage_record_batch(records=[record]) == 1
    row = UsageRecord.objects.get()
    # fresh 2000 x 2/1M = 0.004; cached 1000 x 0.5/1M = 0.0005; visible 1000 x 10/1M = 0.01;
    # reasoning 500 x 4/1M = 0.002
    assert row.cost_usd == Decimal("0.0165")
    assert (row.api_key_id, row.api_key_name) == (key.pk, "billing-team")
    assert (row.client_format, row.connection_id, row.stream) == ("anthropic", 7, True)
    assert (row.cached_tokens, row.reasoning_tokens) == (1000, 500)
    assert (row.latency_ms, row.ttfb_ms) == (812.346, 95.123)
    assert row.created_at.timestamp() == 1_790_000_000.0


def test_images_audio_and_unknown_models() -> None:
    PriceOverrideFactory.create(model="painter", input=None, output=None, per_image=Decimal("0.04"))
    PriceOverrideFactory.create(model="listener", input=None, output=None, per_audio_second=Decimal("0.0001"))

    def ok(request_id: str, model: str, **usage: float) -> Record:
        record = Record(request_id=request_id, endpoint="/v1/x", status_code=200, provider="openai", model=model)
        for name, value in usage.items():
            setattr(record, name, value)
        return record

    records = [
        ok("img", "painter", images=3),
        ok("aud", "listener", audio_seconds=62.5),
        ok("unk", "nobody-knows", prompt_tokens=10**6),
        Record(request_id="401", endpoint="/v1/chat/completions", status_code=401, error="Invalid API key"),
    ]
    usage_record_batch(records=records)
    costs = dict(UsageRecord.objects.values_list("request_id", "cost_usd"))
    assert costs == {"img": Decimal("0.12"), "aud": Decimal("0.00625"), "unk": 0, "401": 0}
    assert UsageRecord.objects.get(request_id="img").images == 3
    assert UsageRecord.objects.get(request_id="aud").audio_seconds == 62.5


def test_key_name_is_kept_when_the_key_is_renamed_later() -> None:
    key = ApiKeyFactory.create(name="old-name")
    usage_record_batch(records=[Record(request_id="a", endpoint="e", status_code=200, api_key_id=key.pk)])
    key.name = "new-name"
    key.save()
    snapshot_mark_dirty()
    usage_record_batch(records=[Record(request_id="b", endpoint="e", status_code=200, api_key_id=key.pk)])
    names = dict(UsageRecord.objects.values_list("request_id", "api_key_name"))
    assert names == {"a": "old-name", "b": "new-name"}
    usage_record_batch(records=[Record(request_id="c", endpoint="e", status_code=200, api_key_id=999_999)])
    assert UsageRecord.objects.get(request_id="c").api_key_name == ""


def test_errors_are_stored_without_provider_or_client_keys() -> None:
    provider_key = "prov-secret-0123456789abcdef"
    ProviderConnectionFactory.create(api_key=provider_key)
    client_key = "sk-omni-ABCDEFGHIJKLMNOPQRSTUV"
    google_key = "AIzaSyA-1234567890abcdefghijklmnopqrstu"
    error = (
        f"upstream said: invalid key {provider_key}; "
        f"GET https://generativelanguage.googleapis.com/v1beta/models?key={google_key}&alt=sse failed; "
        f"headers Authorization: Bearer {client_key} x-api-key: {provider_key}"
    )
    usage_record_batch(records=[Record(request_id="e", endpoint="e", status_code=502, error=error)])
    stored = UsageRecord.objects.get().error
    for secret in (provider_key, client_key, google_key):
        assert secret not in stored
    assert "upstream said: invalid key [redacted]" in stored
    assert "?key=[redacted]&alt=sse" in stored


def test_long_errors_are_cut() -> None:
    usage_record_batch(records=[Record(request_id="e", endpoint="e", status_code=500, error="x" * 50_000)])
    assert len(UsageRecord.objects.get().error) == 2000


@pytest.mark.django_db(transaction=True)
def test_recorder_thread_writes_priced_records() -> None:
    PriceOverrideFactory.create(model="threaded", input=Decimal("1"), output=Decimal("1"))
    recorder = Recorder()
    try:
        for n in range(20):
            recorder.record(
                Record(
                    request_id=f"t{n}",
                    endpoint="/v1/chat/completions",
                    status_code=200,
                    provider="openai",
                    model="threaded",
                    prompt_tokens=500_000,
                    completion_tokens=500_000,
                )
            )
        assert recorder.flush(10)
    finally:
        recorder.stop()
    assert recorder.failed == 0
    costs = set(UsageRecord.objects.values_list("cost_usd", flat=True))
    assert UsageRecord.objects.count() == 20 and costs == {Decimal("1")}


def test_records_are_kept_when_prices_cannot_be_read(monkeypatch: pytest.MonkeyPatch) -> None:
    from usage.services import records as records_module

    def broken() -> None:
        raise RuntimeError("catalog unreadable")

    monkeypatch.setattr(records_module, "price_table", broken)
    error = "bad key sk-proj-0123456789abcdefghij"
    usage_record_batch(records=[Record(request_id="x", endpoint="e", status_code=502, model="gpt-4o", error=error)])
    row = UsageRecord.objects.get()
    assert row.cost_usd == 0 and "sk-proj-0123456789abcdefghij" not in row.error


def test_a_batch_longer_than_one_insert_statement_keeps_every_row_and_its_values() -> None:
    from usage.models import RequestLog
    from usage.services.records import MAX_ROWS_PER_STATEMENT

    count = 3 * MAX_ROWS_PER_STATEMENT + 37  # full statements, then shorter ones (32 + 4 + 1)
    records = [
        Record(
            request_id=f"m{n}",
            endpoint="/v1/chat/completions",
            status_code=200 if n % 7 else 502,
            provider="openai",
            model="gpt-4o",
            prompt_tokens=n,
            completion_tokens=2 * n,
            latency_ms=n / 10,
            body_log={"headers": {"x-n": str(n)}, "requestBody": f"question {n}", "responseBody": f"answer {n}"}
            if n % 3 == 0
            else None,
        )
        for n in range(count)
    ]
    assert usage_record_batch(records=records) == count
    rows = UsageRecord.objects.values_list("request_id", "prompt_tokens", "completion_tokens", "status_code")
    assert sorted(rows) == sorted((f"m{n}", n, 2 * n, 200 if n % 7 else 502) for n in range(count))
    logs = RequestLog.objects.values_list("request_id", "request_headers", "request_body", "response_body")
    assert sorted(logs) == sorted(
        (f"m{n}", {"x-n": str(n)}, f"question {n}", f"answer {n}") for n in range(0, count, 3)
    )


@pytest.mark.django_db(transaction=True)
def test_a_writer_that_is_behind_writes_what_is_queued_in_bigger_batches(settings: Any) -> None:
    from gateway.recorder import CATCH_UP_FACTOR

    settings.RECORDER_BATCH_SIZE = 10
    recorder = Recorder()
    queued = 10 * CATCH_UP_FACTOR * 2 + 5
    # Queued before the writer thread starts: the backlog a busy writer finds.
    for n in range(queued):
        recorder._queue.put(Record(request_id=f"b{n}", endpoint="/v1/chat/completions", status_code=200))
    try:
        recorder.record_locally(Record(request_id="last", endpoint="/v1/chat/completions", status_code=200))
        assert recorder.flush(10)
    finally:
        recorder.stop()
    assert recorder.written == queued + 1 and recorder.failed == 0
    assert recorder.batches == 3  # 100 + 100 + 6 records, not 21 batches of 10
    assert UsageRecord.objects.count() == queued + 1
