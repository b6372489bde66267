"""Tests of the polite HTTP client (`m3el_lib.construction.http`) through a scripted transport.

Nothing here sleeps or touches the network: the clock and sleep are fakes, and the transport
replays scripted responses through `TransportAdapter`, so requests, urllib3's `Retry` and
requests-cache run as they do against the network.
"""
from __future__ import annotations

import email.utils
import sqlite3
import time
from pathlib import Path

import pytest

from m3el_lib.construction import http
from m3el_lib.construction.http import (
    HttpClient,
    HttpError,
    HttpRequest,
    HttpResponse,
    MalformedResponseError,
    NetworkDisabledError,
)
from fakes import FakeClock

URL = "https://example.org/api"


class Scripted:
    """A transport answering from a list of responses (or exceptions), recording each request."""

    def __init__(self, clock: FakeClock, replies: list[HttpResponse | Exception], latency: float = 0.0) -> None:
        self.clock = clock
        self.replies = list(replies)
        self.latency = latency
        self.requests: list[HttpRequest] = []
        self.sent_at: list[float] = []

    def __call__(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        self.sent_at.append(self.clock.now)
        self.clock.now += self.latency
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return HttpResponse(status=reply.status, url=request.url, body=reply.body, headers=reply.headers)


def reply(status: int = 200, body: bytes = b'{"ok": true}', **headers: str) -> HttpResponse:
    return HttpResponse(status=status, url="", body=body, headers={k.replace("_", "-").lower(): v for k, v in headers.items()})


def make_client(tmp_path: Path, replies: list, min_interval: float = 0.0, **options) -> tuple[HttpClient, Scripted, FakeClock]:
    clock = FakeClock()
    transport = Scripted(clock, replies, latency=options.pop("latency", 0.0))
    client = HttpClient(
        transport=transport, cache_dir=tmp_path / "http", min_interval=min_interval, clock=clock.time, sleep=clock.sleep, **options
    )
    return client, transport, clock


def cached_count(client: HttpClient) -> int:
    return len(list(client.cache.responses.keys())) if client.cache else 0


def test_default_user_agent_names_the_project_and_can_be_overridden(monkeypatch):
    monkeypatch.delenv("M3EL_USER_AGENT", raising=False)
    agent = http.default_user_agent()
    assert agent.startswith("m3el-companion/")
    assert "offline-first companion" in agent and "https://arxiv.org/abs/2410.18096" in agent
    monkeypatch.setenv("M3EL_USER_AGENT", "my-run/1.0 (me@example.org)")
    assert http.default_user_agent() == "my-run/1.0 (me@example.org)"


def test_requests_carry_the_user_agent_and_sorted_query(tmp_path):
    client, transport, _ = make_client(tmp_path, [reply()], user_agent="ua-test/1 (x@example.org)")
    client.get(URL, params={"b": 2, "a": "x y"})
    sent = transport.requests[0]
    assert sent.url == URL + "?a=x+y&b=2"
    assert sent.headers["User-Agent"] == "ua-test/1 (x@example.org)"
    assert sent.method == "GET"


def test_429_then_success_honours_retry_after(tmp_path):
    client, transport, clock = make_client(tmp_path, [reply(429, b"slow down", retry_after="7"), reply()])
    assert client.get(URL, parse=HttpResponse.json) == {"ok": True}
    assert len(transport.requests) == 2
    assert clock.sleeps == [7.0]  # the server's wait, not our backoff


def test_retry_after_as_an_http_date(tmp_path):
    # urllib3 reads the date against the real clock, so the wait is "about 30 s" (whole seconds).
    in_30_s = email.utils.formatdate(time.time() + 30, usegmt=True)
    client, transport, clock = make_client(tmp_path, [reply(429, retry_after=in_30_s), reply()])
    client.get(URL)
    assert len(clock.sleeps) == 1 and 28.0 <= clock.sleeps[0] <= 30.0


def test_500s_back_off_exponentially_after_an_immediate_first_retry(tmp_path):
    # urllib3's rule: no backoff before the first retry, then factor * 2**(n-1) before the n-th.
    client, transport, clock = make_client(tmp_path, [reply(500, b"oops"), reply(503), reply(502), reply()], backoff_factor=2.0)
    assert client.get(URL).status == 200
    assert len(transport.requests) == 4
    assert clock.sleeps == [4.0, 8.0]


def test_the_minimum_interval_holds_between_retries(tmp_path):
    client, transport, clock = make_client(tmp_path, [reply(500), reply()], min_interval=0.5)
    assert client.get(URL).status == 200
    assert transport.sent_at[1] - transport.sent_at[0] == pytest.approx(0.5)


def test_connection_errors_are_retried(tmp_path):
    client, transport, clock = make_client(tmp_path, [ConnectionResetError("reset"), TimeoutError("slow"), reply()])
    assert client.get(URL).status == 200
    assert len(transport.requests) == 3 and clock.sleeps == [2.0]


def test_gives_up_after_max_retries_naming_the_url(tmp_path):
    client, transport, clock = make_client(tmp_path, [reply(502)] * 3, max_retries=2)
    with pytest.raises(HttpError, match=r"gave up after 3 attempts; last: HTTP 502 \(https://example.org/api\)"):
        client.get(URL)
    assert len(transport.requests) == 3 and clock.sleeps == [2.0]
    assert cached_count(client) == 0


def test_connection_failures_give_up_naming_the_url(tmp_path):
    client, transport, _ = make_client(tmp_path, [ConnectionRefusedError("refused")] * 3, max_retries=2)
    with pytest.raises(HttpError, match=r"gave up after 3 attempts; last: connection failed: .*refused.* \(https://example.org/api\)"):
        client.get(URL)
    assert len(transport.requests) == 3


def test_backoff_is_capped(tmp_path):
    client, _, clock = make_client(tmp_path, [reply(500)] * 5 + [reply()], backoff_factor=10.0, max_backoff=25.0)
    client.get(URL)
    assert clock.sleeps == [20.0, 25.0, 25.0, 25.0]


def test_client_errors_are_not_retried(tmp_path):
    client, transport, _ = make_client(tmp_path, [reply(403, b"forbidden: bad user agent")])
    with pytest.raises(HttpError, match="HTTP 403: forbidden: bad user agent") as caught:
        client.get(URL)
    assert caught.value.status == 403 and caught.value.url == URL
    assert len(transport.requests) == 1


def test_ok_statuses_are_returned_and_cached(tmp_path):
    client, transport, _ = make_client(tmp_path, [reply(404, b"{}")])
    assert client.get(URL, ok_statuses=(404,)).status == 404
    assert client.get(URL, ok_statuses=(404,)).status == 404
    assert len(transport.requests) == 1


def test_cache_makes_a_second_run_issue_no_request(tmp_path):
    first, transport, _ = make_client(tmp_path, [reply(body=b'{"n": 1}')])
    assert first.get(URL, params={"q": "x"}, parse=HttpResponse.json) == {"n": 1}
    second, transport2, _ = make_client(tmp_path, [])  # same cache folder, a new run
    assert second.get(URL, params={"q": "x"}, parse=HttpResponse.json) == {"n": 1}
    assert transport2.requests == [] and second.cache_hits == 1 and second.requests_sent == 0


def test_post_is_cached_by_body(tmp_path):
    client, transport, _ = make_client(tmp_path, [reply(body=b'"a"'), reply(body=b'"b"')])
    assert client.post(URL, {"query": "A"}, parse=HttpResponse.json) == "a"
    assert client.post(URL, {"query": "B"}, parse=HttpResponse.json) == "b"
    assert client.post(URL, {"query": "A"}, parse=HttpResponse.json) == "a"
    assert len(transport.requests) == 2
    assert transport.requests[0].body == b"query=A"


def test_a_response_the_parser_rejects_is_not_cached(tmp_path):
    client, transport, _ = make_client(tmp_path, [reply(body=b"<html>maintenance</html>"), reply(body=b"[1]")])
    with pytest.raises(MalformedResponseError, match=r"body is not JSON .*\(https://example.org/api\)"):
        client.get(URL, parse=HttpResponse.json)
    assert client.get(URL, parse=HttpResponse.json) == [1]  # asked again, not replayed from cache
    assert len(transport.requests) == 2


def test_a_damaged_cache_entry_is_refetched(tmp_path):
    client, transport, _ = make_client(tmp_path, [reply(body=b"1"), reply(body=b"2")])
    client.get(URL)
    with sqlite3.connect(tmp_path / "http" / http.CACHE_FILE) as database:
        assert database.execute("UPDATE responses SET value = ?", (b"garbage, not a response",)).rowcount == 1
    assert client.get(URL).body == b"2"
    assert len(transport.requests) == 2


def test_binary_bodies_and_headers_survive_the_cache(tmp_path):
    picture = bytes(range(256)) * 4
    first, _, _ = make_client(tmp_path, [reply(body=picture, content_type="image/png")])
    assert first.get(URL).body == picture
    second, transport2, _ = make_client(tmp_path, [])
    again = second.get(URL)
    assert (again.body, again.header("Content-Type"), transport2.requests) == (picture, "image/png", [])


def test_use_cache_false_writes_nothing(tmp_path):
    client, transport, _ = make_client(tmp_path, [reply(), reply()], use_cache=False)
    client.get(URL)
    client.get(URL)
    assert len(transport.requests) == 2 and client.cache is None and not (tmp_path / "http").exists()


def test_rate_limiter_spaces_requests(tmp_path):
    replies = [reply() for _ in range(4)]
    client, transport, clock = make_client(tmp_path, replies, min_interval=1.5, latency=0.25, use_cache=False)
    for n in range(4):
        client.get(URL, params={"n": n})
    gaps = [b - a for a, b in zip(transport.sent_at, transport.sent_at[1:])]
    assert gaps == [pytest.approx(1.5)] * 3
    assert clock.sleeps == [pytest.approx(1.25)] * 3  # only the part of the interval not spent waiting


def test_rate_limiter_does_not_delay_cache_hits(tmp_path):
    client, transport, clock = make_client(tmp_path, [reply()], min_interval=5.0)
    for _ in range(3):
        client.get(URL)
    assert clock.sleeps == [] and len(transport.requests) == 1


def test_min_interval_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("M3EL_HTTP_MIN_INTERVAL", "2.5")
    assert HttpClient(cache_dir=tmp_path).limiter.min_interval == 2.5


def test_default_cache_lives_under_the_config_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("M3EL_HOME", str(tmp_path / "home"))
    client = HttpClient()
    assert client.cache is not None and client.cache_dir == tmp_path / "home" / "cache" / "http"
    assert Path(client.cache.db_path) == client.cache_dir / http.CACHE_FILE


def test_default_transport_refuses_the_network_in_tests(tmp_path, monkeypatch):
    monkeypatch.delenv("M3EL_ALLOW_NETWORK", raising=False)
    client = HttpClient(cache_dir=tmp_path, min_interval=0.0)
    with pytest.raises(NetworkDisabledError, match=r"network access is disabled .*\(https://query.wikidata.org/sparql\)"):
        client.get("https://query.wikidata.org/sparql")
    assert client.requests_sent == 1  # refused at once: no retries, no sleeping


def test_offline_switch_refuses_the_network(monkeypatch):
    monkeypatch.setenv("M3EL_OFFLINE", "1")
    monkeypatch.setenv("M3EL_ALLOW_NETWORK", "1")
    assert not http.network_allowed()
    monkeypatch.delenv("M3EL_OFFLINE")
    assert http.network_allowed()  # allowed explicitly even inside pytest


def test_a_connection_cut_while_reading_the_answer_is_retried(tmp_path):
    import http.client as stdlib_http

    client, transport, clock = make_client(tmp_path, [stdlib_http.IncompleteRead(b"{"), reply()])
    assert client.get(URL).status == 200
    assert len(transport.requests) == 2 and clock.sleeps == []  # urllib3 retries the first failure at once


def test_the_real_adapter_over_a_loopback_server(tmp_path, monkeypatch):
    """requests, urllib3's Retry and the cache over real sockets (127.0.0.1 only, not the network)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    answers = [(503, {"Retry-After": "3"}, b"busy"), (200, {"Content-Type": "application/json"}, b'{"hello": "loopback"}')]
    agents: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            agents.append(self.headers["User-Agent"])
            status, headers, body = answers.pop(0)
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("M3EL_ALLOW_NETWORK", "1")
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    url = f"http://127.0.0.1:{server.server_address[1]}/api"
    try:
        clock = FakeClock()
        client = HttpClient(cache_dir=tmp_path, min_interval=0.0, clock=clock.time, sleep=clock.sleep, user_agent="ua-loop/1")
        assert client.get(url, parse=HttpResponse.json) == {"hello": "loopback"}
        assert clock.sleeps == [3.0] and agents == ["ua-loop/1", "ua-loop/1"] and client.requests_sent == 2
        again = HttpClient(cache_dir=tmp_path, min_interval=0.0, clock=clock.time, sleep=clock.sleep)
        assert again.get(url, parse=HttpResponse.json) == {"hello": "loopback"} and again.requests_sent == 0
    finally:
        server.shutdown()
