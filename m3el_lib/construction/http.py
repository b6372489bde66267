"""The polite HTTP client of the live Wikimedia source, on `requests`, urllib3's `Retry` and `requests-cache`.

What the libraries do, configured for Wikimedia's etiquette:

* `requests` sends, with a descriptive User-Agent as the Wikimedia User-Agent policy asks
  (override with `M3EL_USER_AGENT`, ideally adding your own contact address);
* `urllib3.util.Retry` retries 429 and 5xx answers and broken connections with exponential
  backoff (`backoff_factor * 2**(n-1)` seconds before the n-th retry in a row, none before the
  first, capped at `max_backoff`), honouring a `Retry-After` header (seconds or an HTTP date);
* `requests-cache` stores responses in one SQLite file under `config.cache_dir()/http/`
  (transactional, so an interrupted run resumes where it stopped; JSON-serialised, never pickled).

What is ours: the rule that a response is cached only after the caller's parser accepted it (so a
malformed answer is never replayed; requests-cache's `CachedSession` would store it before the
parser runs, so we use its storage directly), a minimum interval between requests that reach the
network (`M3EL_HTTP_MIN_INTERVAL`, seconds, default 0.5; retries keep it too, cache hits do not
wait), and errors that name the URL.

Tests replace the network with `transport`: a function from `HttpRequest` to `HttpResponse`,
served through `TransportAdapter`, a requests transport adapter that answers from urllib3's own
connection pool, so urllib3's retry logic runs unchanged. The real adapter refuses the network
when `M3EL_OFFLINE=1`, and inside pytest unless `M3EL_ALLOW_NETWORK=1`.
"""
from __future__ import annotations

import io
import json
import os
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

import requests
import requests.adapters
import requests_cache
import urllib3
from urllib3.exceptions import InvalidHeader
from urllib3.util.retry import Retry

from m3el_lib import config

T = TypeVar("T")

# The project's description (pyproject.toml), in ASCII because HTTP headers must be latin-1.
PROJECT_DESCRIPTION = (
    "offline-first companion to M3EL: A Multi-task Multi-topic Dataset for Multi-modal Entity Linking"
)
PROJECT_URL = "https://arxiv.org/abs/2410.18096"
DEFAULT_MIN_INTERVAL_S = 0.5
DEFAULT_TIMEOUT_S = 60.0
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
CACHE_FILE = "responses.sqlite"


class HttpError(RuntimeError):
    """A request that failed for good; the message names the URL."""

    def __init__(self, url: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{message} ({url})")
        self.url = url
        self.status = status


class MalformedResponseError(HttpError):
    """A response that arrived but is not in the documented format."""

    def __init__(self, url: str, problem: str) -> None:
        super().__init__(url, f"malformed response: {problem}")
        self.problem = problem


class NetworkDisabledError(HttpError):
    """The real adapter was asked for the network while it is switched off."""


@dataclass(frozen=True)
class HttpRequest:
    """One attempt as a test transport sees it."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    timeout: float = DEFAULT_TIMEOUT_S


@dataclass(frozen=True)
class HttpResponse:
    """A final response (fresh or from the cache), as parsers see it."""

    status: int
    url: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """The body parsed as JSON; MalformedResponseError (naming the URL) when it is not."""
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise MalformedResponseError(self.url, f"body is not JSON ({error})") from None

    @classmethod
    def of(cls, response: requests.Response) -> "HttpResponse":
        headers = {name.lower(): value for name, value in response.headers.items()}
        return cls(status=response.status_code, url=response.url, body=response.content, headers=headers)


Transport = Callable[[HttpRequest], HttpResponse]


def project_version() -> str:
    """The library's version (`m3el_lib.__version__`)."""
    import m3el_lib

    return str(getattr(m3el_lib, "__version__", "0"))


def default_user_agent() -> str:
    """`M3EL_USER_AGENT` if set, else a descriptive default naming the project and its paper."""
    override = os.environ.get("M3EL_USER_AGENT", "").strip()
    if override:
        return override
    return f"m3el-companion/{project_version()} ({PROJECT_DESCRIPTION}; {PROJECT_URL}) python-requests/{requests.__version__}"


def network_allowed() -> bool:
    """False when `M3EL_OFFLINE=1`, or inside a pytest run without `M3EL_ALLOW_NETWORK=1`."""
    if os.environ.get("M3EL_OFFLINE", "") not in ("", "0"):
        return False
    if "PYTEST_CURRENT_TEST" in os.environ:
        return os.environ.get("M3EL_ALLOW_NETWORK", "") not in ("", "0")
    return True


def build_url(url: str, params: Mapping[str, Any] | None = None) -> str:
    """`url` with `params` appended as a query string, keys sorted so URLs and cache keys are stable."""
    if not params:
        return url
    query = urllib.parse.urlencode(sorted((k, str(v)) for k, v in params.items()))
    return f"{url}{'&' if '?' in url else '?'}{query}"


class RateLimiter:
    """Spaces calls at least `min_interval` seconds apart on an injectable clock."""

    def __init__(self, min_interval: float, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self.min_interval = max(0.0, min_interval)
        self._clock = clock
        self._sleep = sleep
        self._last: float | None = None

    def wait(self) -> None:
        now = self._clock()
        if self._last is not None:
            remaining = self._last + self.min_interval - now
            if remaining > 0:
                self._sleep(remaining)
                now = self._clock()
        self._last = now


class PoliteRetry(Retry):
    """urllib3's `Retry`, sleeping through the client (an injectable sleep, then the rate limit).

    Which answers are retried, how often and how long to wait are urllib3's decisions; only the
    act of waiting is routed to `pause(seconds)` and `before_attempt()`, which the client sets.
    """

    pause: Callable[[float], None] = staticmethod(time.sleep)
    before_attempt: Callable[[], None] = staticmethod(lambda: None)

    def new(self, **changes: Any) -> "PoliteRetry":
        retry = super().new(**changes)
        retry.pause, retry.before_attempt = self.pause, self.before_attempt
        return retry

    def sleep(self, response: Any = None) -> None:
        wait = None
        if self.respect_retry_after_header and response is not None:
            try:
                wait = self.get_retry_after(response)
            except InvalidHeader:  # an unreadable Retry-After: fall back to the backoff
                wait = None
        if not wait:
            wait = self.get_backoff_time()
        if wait > 0:
            self.pause(wait)
        self.before_attempt()


class NetworkAdapter(requests.adapters.HTTPAdapter):
    """requests' own adapter, behind the offline guard."""

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if not network_allowed():
            raise NetworkDisabledError(
                str(request.url), "network access is disabled (M3EL_OFFLINE=1, or a test without M3EL_ALLOW_NETWORK=1)"
            )
        return super().send(request, *args, **kwargs)


class TransportPool(urllib3.HTTPConnectionPool):
    """A urllib3 pool whose wire is a `Transport`: urllib3's retry loop (`urlopen`) runs unchanged."""

    def __init__(self, scheme: str, host: str, port: int | None, transport: Transport, **options: Any) -> None:
        super().__init__(host, port, **options)
        self.scheme = scheme
        self.transport = transport

    def _make_request(self, conn: Any, method: str, url: str, body: Any = None, headers: Any = None,
                      retries: Retry | None = None, timeout: Any = None, **options: Any) -> urllib3.HTTPResponse:
        default_port = {"http": 80, "https": 443}[self.scheme]
        netloc = self.host if self.port in (None, default_port) else f"{self.host}:{self.port}"
        payload = body.encode("utf-8") if isinstance(body, str) else body
        request = HttpRequest(method=method, url=f"{self.scheme}://{netloc}{url}", headers=dict(headers or {}), body=payload)
        reply = self.transport(request)
        return urllib3.HTTPResponse(
            body=io.BytesIO(reply.body), headers=dict(reply.headers), status=reply.status,
            preload_content=options.get("preload_content", True), decode_content=options.get("decode_content", True),
            request_method=method, request_url=request.url, retries=retries,
        )


class TransportAdapter(requests.adapters.HTTPAdapter):
    """A requests transport adapter that answers every request from a `Transport` (tests, recordings)."""

    def __init__(self, transport: Transport, **options: Any) -> None:
        self.transport = transport
        super().__init__(**options)

    def get_connection_with_tls_context(self, request: requests.PreparedRequest, verify: Any,
                                        proxies: Any = None, cert: Any = None) -> TransportPool:
        parts = urllib.parse.urlsplit(str(request.url))
        return TransportPool(parts.scheme, parts.hostname or "", parts.port, self.transport)

    def request_url(self, request: requests.PreparedRequest, proxies: Any) -> str:
        return request.path_url  # never the proxy form: nothing leaves the process


def open_cache(folder: Path) -> requests_cache.SQLiteCache:
    """requests-cache's SQLite store in `folder` (JSON-serialised: nothing is unpickled)."""
    folder.mkdir(parents=True, exist_ok=True)
    return requests_cache.SQLiteCache(folder / CACHE_FILE, serializer="json", decode_content=False)


class HttpClient:
    """GET/POST with User-Agent, rate limit, retries and a disk cache; see the module docstring."""

    def __init__(
        self,
        transport: Transport | None = None,
        cache_dir: Path | str | None = None,
        use_cache: bool = True,
        user_agent: str | None = None,
        min_interval: float | None = None,
        max_retries: int = 5,
        backoff_factor: float = 1.0,
        max_backoff: float = 120.0,
        timeout: float = DEFAULT_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir else config.cache_dir() / "http"
        self.cache = open_cache(self.cache_dir) if use_cache else None
        self.user_agent = user_agent or default_user_agent()
        if min_interval is None:
            min_interval = float(os.environ.get("M3EL_HTTP_MIN_INTERVAL", DEFAULT_MIN_INTERVAL_S))
        self.limiter = RateLimiter(min_interval, clock, sleep)
        self.max_retries = max_retries
        self.timeout = timeout
        self.requests_sent = 0  # attempts that went to the adapter (retries included)
        self.cache_hits = 0
        retry = PoliteRetry(
            total=max_retries, status_forcelist=RETRY_STATUSES, allowed_methods={"GET", "POST"},
            backoff_factor=backoff_factor, backoff_max=max_backoff, raise_on_status=False,
        )
        retry.pause, retry.before_attempt = sleep, self._before_attempt
        adapter = TransportAdapter(transport, max_retries=retry) if transport else NetworkAdapter(max_retries=retry)
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": self.user_agent})
        for prefix in ("http://", "https://"):
            self.session.mount(prefix, adapter)

    def get(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        parse: Callable[[HttpResponse], T] | None = None,
        ok_statuses: tuple[int, ...] = (),
    ) -> T | HttpResponse:
        """GET `url`; with `parse`, return its result and cache the response only if it parsed."""
        return self.request("GET", build_url(url, params), headers=headers, parse=parse, ok_statuses=ok_statuses)

    def post(
        self,
        url: str,
        form: Mapping[str, Any],
        headers: Mapping[str, str] | None = None,
        parse: Callable[[HttpResponse], T] | None = None,
    ) -> T | HttpResponse:
        """POST `form` url-encoded (e.g. a long SPARQL query); cached by URL and body."""
        body = urllib.parse.urlencode(sorted((k, str(v)) for k, v in form.items())).encode("utf-8")
        extra = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        return self.request("POST", url, headers=extra, body=body, parse=parse)

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        parse: Callable[[HttpResponse], T] | None = None,
        ok_statuses: tuple[int, ...] = (),
    ) -> T | HttpResponse:
        """One request through cache, rate limit and retries.

        2xx responses and those in `ok_statuses` (e.g. 404 for a missing page) are returned and
        cached; other statuses raise HttpError naming the URL once retries are used up.
        """
        prepared = self.session.prepare_request(requests.Request(method, url, headers=dict(headers or {}), data=body))
        key = self.cache.create_key(prepared) if self.cache else ""
        cached = self.cache.get_response(key) if self.cache else None
        if cached is not None:
            self.cache_hits += 1
            response = HttpResponse.of(cached)
            return parse(response) if parse else response
        fresh = self._send(prepared, ok_statuses)
        response = HttpResponse.of(fresh)
        result = parse(response) if parse else response  # raises before caching when malformed
        if self.cache:
            self.cache.save_response(fresh, cache_key=key)
        return result

    def _before_attempt(self) -> None:
        self.limiter.wait()
        self.requests_sent += 1

    def _send(self, prepared: requests.PreparedRequest, ok_statuses: tuple[int, ...]) -> requests.Response:
        url = str(prepared.url)
        first = self.requests_sent
        self._before_attempt()
        try:
            # As `Session.request` would: proxies and CA bundle from the environment (HTTPS_PROXY, ...).
            settings = self.session.merge_environment_settings(url, {}, None, None, None)
            response = self.session.send(prepared, timeout=self.timeout, allow_redirects=True, **settings)
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as error:
            attempts = self.requests_sent - first
            raise HttpError(url, f"gave up after {attempts} attempts; last: connection failed: {_reason(error)}") from None
        status = response.status_code
        if 200 <= status < 300 or status in ok_statuses:
            return response
        if status in RETRY_STATUSES:  # urllib3 handed back the last answer once its retries were used up
            raise HttpError(url, f"gave up after {self.requests_sent - first} attempts; last: HTTP {status}", status=status)
        raise HttpError(url, f"HTTP {status}: {_snippet(response.content)}", status=status)


def _reason(error: Exception) -> str:
    """The innermost cause urllib3 reports (MaxRetryError wraps the last failure)."""
    cause = error.args[0] if error.args else error
    return str(getattr(cause, "reason", cause))


def _snippet(body: bytes, limit: int = 200) -> str:
    text = body[:limit].decode("utf-8", errors="replace").strip().replace("\n", " ")
    return text or "(empty body)"
