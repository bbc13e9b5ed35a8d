"""The Redis usage stream: a gateway process killed with SIGKILL under load has recorded every
request it answered completely; a consumer that dies before acknowledging leaves its entries
to another; Redis down means records go straight to the database."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
import redis

from gateway.recorder import Record, recorder
from gateway.redis_client import get_sync_redis
from gateway.usage_stream import GROUP, publish_durably, records_encode, stream_key
from tests.e2e.test_openai_chat import make_connection, make_key
from tests.fakes.provider import Behaviour, FakeProvider
from tests.live_server import GatewayProcess, free_port
from usage.models import RequestLog, UsageRecord
from usage.services import usage_record_batch, usage_stream_consume

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

REDIS_URL = "redis://127.0.0.1:6379/2"
HI: Any = [{"role": "user", "content": "x"}]


@pytest.fixture
def usage_stream(settings: Any) -> Iterator[redis.Redis]:
    """This test's stream (namespaced by the test database), empty, on a real Redis."""
    settings.REDIS_URL = REDIS_URL
    get_sync_redis.cache_clear()
    client = get_sync_redis()
    client.delete(stream_key())
    yield client
    client.delete(stream_key())
    get_sync_redis.cache_clear()


class SlowLink:
    """A TCP proxy to Redis that delays Redis's answers by `delay` seconds: a slow network.
    While a pipeline waits for its answer the next records wait in the process, so a
    response sent before its record is in Redis shows as a lost record when the process dies."""

    def __init__(self, port: int, delay: float) -> None:
        self.target, self.delay = port, delay
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self.thread.start()
        started.wait(5)

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", self.port))
        started.set()
        self.loop.run_forever()
        server.close()
        self.loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        await asyncio.gather(self._pipe(reader, up_writer, 0), self._pipe(up_reader, writer, self.delay))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def forward() -> None:
            while True:
                at, data = await queue.get()
                if not data:
                    writer.close()
                    return
                await asyncio.sleep(max(0.0, at - time.monotonic()))
                writer.write(data)

        sender = asyncio.ensure_future(forward())
        while True:
            try:
                data = await reader.read(65536)
            except ConnectionError:
                data = b""
            queue.put_nowait((time.monotonic() + delay, data))
            if not data:
                break
        await sender

    def stop(self) -> None:
        async def end_connections() -> None:
            tasks = asyncio.all_tasks() - {asyncio.current_task()}
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(end_connections(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def wait_for_key(proc: GatewayProcess, key: str) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if httpx.get(f"{proc.base_url}/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200:
            return
        time.sleep(0.05)
    raise AssertionError("the gateway process did not see the key")


def test_sigkill_under_load_loses_no_answered_request(usage_stream: redis.Redis, fake_provider: FakeProvider) -> None:
    make_connection(fake_provider.openai_base_url)
    key = make_key()
    fake_provider.behave(Behaviour(delay=0.02, reply="one two three"))
    # Redis answers 100 ms late: records published after their response would still be
    # waiting in the process when it dies.
    link = SlowLink(6379, delay=0.1)
    proc = GatewayProcess(extra_env={"REDIS_URL": f"redis://127.0.0.1:{link.port}/2"}).start()
    answered: list[str] = []
    try:
        wait_for_key(proc, key)

        async def load() -> None:
            async with (
                openai.AsyncOpenAI(base_url=proc.base_url, api_key=key, max_retries=0) as client,
                httpx.AsyncClient(base_url=proc.base_url, timeout=30) as http,
            ):

                async def one(stream: bool) -> None:
                    if not stream:
                        raw = await client.chat.completions.with_raw_response.create(model="openai/gpt-4o", messages=HI)
                        raw.parse()
                        answered.append(raw.headers["x-request-id"])
                        return
                    # Raw bytes for streams: complete means the last event, `data: [DONE]`, arrived
                    # (the SDK hides it, and a cut after the finish_reason chunk looks complete).
                    body = {"model": "openai/gpt-4o", "messages": HI, "stream": True}
                    headers = {"Authorization": f"Bearer {key}"}
                    async with http.stream("POST", "/chat/completions", json=body, headers=headers) as response:
                        text = (await response.aread()).decode()
                    if response.status_code == 200 and text.rstrip().endswith("data: [DONE]"):
                        answered.append(response.headers["x-request-id"])

                async def worker(n: int) -> None:
                    for i in range(500):
                        try:
                            await one(stream=(n + i) % 2 == 0)
                        except (openai.APIError, httpx.HTTPError):
                            return

                tasks = [asyncio.create_task(worker(n)) for n in range(8)]
                await asyncio.sleep(2.5)
                assert proc.proc is not None
                proc.proc.send_signal(signal.SIGKILL)
                await asyncio.gather(*tasks)

        asyncio.run(load())
    finally:
        proc.stop()
        link.stop()
    assert len(answered) > 20, len(answered)
    assert not UsageRecord.objects.exists()  # nothing was written by the killed process itself
    usage_stream_consume(consumer="test-consumer")
    stored = set(UsageRecord.objects.values_list("request_id", flat=True))
    assert set(answered) <= stored
    assert set(RequestLog.objects.values_list("request_id", flat=True)) == stored
    assert usage_stream.xlen(stream_key()) == 0  # acknowledged and deleted


def _add(client: redis.Redis, n: int) -> list[Record]:
    records = [
        Record(request_id=f"req-{i}", endpoint="/v1/chat/completions", status_code=200, provider="openai")
        for i in range(n)
    ]
    for record in records:  # as three gateway batches
        client.xadd(stream_key(), {"r": records_encode([record])})
    return records


def test_entries_of_a_consumer_that_died_before_acknowledging_are_claimed(usage_stream: redis.Redis) -> None:
    key = stream_key()
    records = _add(usage_stream, 3)
    usage_stream.xgroup_create(key, GROUP, id="0", mkstream=True)
    # A consumer reads the entries and dies: they stay pending on it.
    usage_stream.xreadgroup(GROUP, "dead-worker", {key: ">"}, count=10)
    assert usage_stream_consume(consumer="live-worker", claim_idle_seconds=3600) == 0
    assert not UsageRecord.objects.exists()

    time.sleep(0.3)  # the entries are now idle for longer than the claim threshold below
    assert usage_stream_consume(consumer="live-worker", claim_idle_seconds=0.2) == 3
    assert sorted(UsageRecord.objects.values_list("request_id", flat=True)) == [r.request_id for r in records]
    assert usage_stream.xpending(key, GROUP)["pending"] == 0
    assert usage_stream.xlen(key) == 0


def test_claimed_entries_already_committed_are_not_written_twice(usage_stream: redis.Redis) -> None:
    key = stream_key()
    records = _add(usage_stream, 2)
    usage_stream.xgroup_create(key, GROUP, id="0", mkstream=True)
    usage_stream.xreadgroup(GROUP, "dead-worker", {key: ">"}, count=10)
    usage_record_batch(records=records[:1])  # the dead worker committed the first, then died before XACK
    time.sleep(0.3)
    assert usage_stream_consume(consumer="live-worker", claim_idle_seconds=0.2) == 1
    assert sorted(UsageRecord.objects.values_list("request_id", flat=True)) == ["req-0", "req-1"]


def test_redis_down_records_go_to_the_database(settings: Any) -> None:
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    get_sync_redis.cache_clear()
    records = [Record(request_id=f"down-{i}", endpoint="/v1/chat/completions", status_code=200) for i in range(3)]

    async def answer() -> None:
        await asyncio.gather(*(publish_durably(r) for r in records[:2]))
        recorder.record(records[2])  # the fallback lasts: later records skip Redis
        await asyncio.sleep(0)

    try:
        asyncio.run(answer())
        recorder.flush(10)  # the stream part fails (Redis down); the records are written anyway
    finally:
        get_sync_redis.cache_clear()
    assert sorted(UsageRecord.objects.values_list("request_id", flat=True)) == ["down-0", "down-1", "down-2"]


def test_the_celery_task_and_the_command_consume_the_stream(usage_stream: redis.Redis) -> None:
    from io import StringIO

    from django.core.management import call_command

    from omniroute_site.celery import app as celery_app
    from usage.tasks import consume_usage_stream

    schedule = {entry["task"]: entry for entry in celery_app.conf.beat_schedule.values()}
    assert schedule["usage.tasks.consume_usage_stream"]["schedule"] == 1.0
    _add(usage_stream, 2)
    assert consume_usage_stream() == 2
    usage_stream.xadd(stream_key(), {"r": records_encode([Record(request_id="cmd", endpoint="e", status_code=200)])})
    out = StringIO()
    call_command("consume_usage", "--once", stdout=out)
    assert out.getvalue().strip() == "1 usage records written"
    assert UsageRecord.objects.count() == 3 and usage_stream.xlen(stream_key()) == 0


def test_bodies_of_no_log_keys_never_reach_redis(usage_stream: redis.Redis) -> None:
    from gateway.http import Request
    from gateway.models import ApiKey
    from gateway.snapshot import snapshot_mark_dirty
    from gateway.usage_capture import Capture

    make_key(no_log=True)
    make_key()
    private, normal = ApiKey.objects.order_by("id").values_list("id", flat=True)
    snapshot_mark_dirty()
    scope = {"method": "POST", "path": "/v1/chat/completions", "headers": [(b"content-type", b"application/json")]}

    def record(key_id: int, text: bytes) -> Record:
        capture = Capture(Request(scope, None), 1024)
        capture.request.add(text)
        return Record(request_id=text.decode(), endpoint="e", status_code=200, api_key_id=key_id, body_log=capture)

    async def answer() -> None:
        await publish_durably(record(private, b"private-question"))
        await publish_durably(record(normal, b"public-question"))

    asyncio.run(answer())
    stored: Any = usage_stream.xrange(stream_key())
    entries = b"".join(fields[b"r"] for _, fields in stored)
    assert entries.count(b"private-question") == 1  # the request id only, not the body
    assert entries.count(b"public-question") == 2  # request id and body


def test_the_wait_for_redis_is_not_counted_as_upstream_time(
    usage_stream: redis.Redis, fake_provider: FakeProvider
) -> None:
    """A record travels with its latency frozen before the response's last bytes; the time
    its XADD then takes must not be added to the attempt's upstream time, or every
    request's gateway overhead (latency minus upstream time) comes out as zero."""
    from gateway.models import ApiKey
    from tests.usage.test_telemetry_e2e import scrape, value

    make_connection(fake_provider.openai_base_url)
    key, admin = make_key(), make_key(scope=ApiKey.SCOPE_ADMIN)
    fake_provider.behave(Behaviour(reply="ok"))
    link = SlowLink(6379, delay=0.3)  # every Redis answer, the XADD's too, comes 300 ms late
    proc = GatewayProcess(extra_env={"REDIS_URL": f"redis://127.0.0.1:{link.port}/2"}).start()
    try:
        wait_for_key(proc, key)
        before = scrape(proc.url, admin)
        sdk = openai.OpenAI(base_url=proc.base_url, api_key=key, max_retries=0)
        for _ in range(3):
            sdk.chat.completions.create(model="openai/gpt-4o", messages=HI)
        time.sleep(1.5)  # the process shares its metrics about once a second
        after = scrape(proc.url, admin)
    finally:
        proc.stop()
        link.stop()

    def delta(name: str) -> float:
        return value(after, name, provider="openai") - value(before, name, provider="openai")

    assert delta("omniroute_gateway_overhead_seconds_count") == 3
    duration = delta("omniroute_request_duration_seconds_sum")
    overhead = delta("omniroute_gateway_overhead_seconds_sum")
    # Upstream time = duration - overhead: three instant answers of the fake provider (the
    # gateway's own Redis reads before each attempt, 300 ms each here, are overhead). Were
    # the XADD waits counted as upstream time, it would take at least one of them (300 ms).
    assert 0 < overhead < duration
    assert duration - overhead < 0.15
