"""A small, polite HTTP client for the live Wikimedia source (standard library only).

What it adds over `urllib`:

* a descriptive User-Agent, as the Wikimedia User-Agent policy asks (override with
  `M3EL_USER_AGENT`, ideally adding your own contact address);
* rate limiting: a minimum interval between requests that reach the network
  (`M3EL_HTTP_MIN_INTERVAL`, seconds, default 0.5); cache hits do not wait;
* retries with exponential backoff on 429 and 5xx (a `Retry-After` header is honoured) and on
  connection errors;
* an on-disk cache under `config.cache_dir()/http/`, keyed by method, URL and (for POST) body,
  each entry written atomically, so an interrupted run resumes where it stopped. A response is
  cached only after the caller's parser accepted it, so a malformed answer is never replayed;
* errors that name the URL.

The transport (one request in, one response out) is injectable so tests run against recorded
responses. The default transport refuses to touch the network when `M3EL_OFFLINE=1`, and inside
pytest unless `M3EL_ALLOW_NETWORK=1`, so no test reaches the network by accident.
"""
from __future__ import annotations

import email.utils
import gzip
import hashlib
import http.client
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

from m3el_lib import config
from m3el_lib.fsutil import atomic_write_bytes

T = TypeVar("T")

# The project's description (pyproject.toml), in ASCII because HTTP headers must be latin-1.
PROJECT_DESCRIPTION = (
    "offline-first companion to M3EL: A Multi-task Multi-topic Dataset for Multi-modal Entity Linking"
)
PROJECT_URL = "https://arxiv.org/abs/2410.18096"
DEFAULT_MIN_INTERVAL_S = 0.5
DEFAULT_TIMEOUT_S = 60.0
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
CACHE_FORMAT = 1


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
    """The default transport was asked for the network while it is switched off."""


@dataclass(frozen=True)
class HttpRequest:
    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    timeout: float = DEFAULT_TIMEOUT_S


@dataclass(frozen=True)
class HttpResponse:
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
    return f"m3el-companion/{project_version()} ({PROJECT_DESCRIPTION}; {PROJECT_URL}) python-urllib/{sys.version_info.major}.{sys.version_info.minor}"


def network_allowed() -> bool:
    """False when `M3EL_OFFLINE=1`, or inside a pytest run without `M3EL_ALLOW_NETWORK=1`."""
    if os.environ.get("M3EL_OFFLINE", "") not in ("", "0"):
        return False
    if "PYTEST_CURRENT_TEST" in os.environ:
        return os.environ.get("M3EL_ALLOW_NETWORK", "") not in ("", "0")
    return True


def urllib_transport(request: HttpRequest) -> HttpResponse:
    """Send one request with urllib; HTTP error statuses come back as responses, not exceptions."""
    if not network_allowed():
        raise NetworkDisabledError(
            request.url, "network access is disabled (M3EL_OFFLINE=1, or a test without M3EL_ALLOW_NETWORK=1)"
        )
    raw = urllib.request.Request(request.url, data=request.body, headers=dict(request.headers), method=request.method)
    try:
        with urllib.request.urlopen(raw, timeout=request.timeout) as reply:
            status, headers, body, final_url = reply.status, reply.headers, reply.read(), reply.geturl()
    except urllib.error.HTTPError as error:
        status, headers, body, final_url = error.code, error.headers, error.read(), request.url
    lowered = {name.lower(): value for name, value in headers.items()}
    if lowered.get("content-encoding", "").lower() == "gzip":
        body = gzip.decompress(body)
    return HttpResponse(status=status, url=final_url, body=body, headers=lowered)


def build_url(url: str, params: Mapping[str, Any] | None = None) -> str:
    """`url` with `params` appended as a query string, keys sorted so cache keys are stable."""
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


class ResponseCache:
    """Responses on disk, one file per request: a JSON header line, a newline, the raw body."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @staticmethod
    def key(method: str, url: str, body: bytes | None) -> str:
        digest = hashlib.sha256(f"{method.upper()} {url}".encode())
        if body:
            digest.update(b"\0")
            digest.update(body)
        return digest.hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.resp"

    def get(self, key: str) -> HttpResponse | None:
        path = self.path(key)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return None
        head, sep, body = blob.partition(b"\n")
        try:
            meta = json.loads(head.decode("utf-8")) if sep else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            meta = None
        if not isinstance(meta, dict) or meta.get("format") != CACHE_FORMAT:
            # An unreadable entry (e.g. from another version) is refetched, not trusted.
            return None
        return HttpResponse(status=int(meta["status"]), url=str(meta["url"]), body=body, headers=dict(meta["headers"]))

    def put(self, key: str, method: str, response: HttpResponse) -> None:
        kept = {k: v for k, v in response.headers.items() if k in ("content-type", "last-modified", "etag")}
        meta = {"format": CACHE_FORMAT, "method": method, "url": response.url, "status": response.status, "headers": kept}
        atomic_write_bytes(self.path(key), json.dumps(meta, sort_keys=True).encode("utf-8") + b"\n" + response.body)


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
        backoff_base: float = 1.0,
        max_backoff: float = 120.0,
        timeout: float = DEFAULT_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.transport = transport or urllib_transport
        self.cache = ResponseCache(Path(cache_dir) if cache_dir else config.cache_dir() / "http") if use_cache else None
        self.user_agent = user_agent or default_user_agent()
        if min_interval is None:
            min_interval = float(os.environ.get("M3EL_HTTP_MIN_INTERVAL", DEFAULT_MIN_INTERVAL_S))
        self.limiter = RateLimiter(min_interval, clock, sleep)
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.max_backoff = max_backoff
        self.timeout = timeout
        self._sleep = sleep
        self._wall_clock = wall_clock
        self.requests_sent = 0  # requests that went to the transport (retries included)
        self.cache_hits = 0

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
        key = ResponseCache.key(method, url, body)
        cached = self.cache.get(key) if self.cache else None
        if cached is not None:
            self.cache_hits += 1
            return parse(cached) if parse else cached
        response = self._send_with_retries(method, url, headers or {}, body, ok_statuses)
        result = parse(response) if parse else response  # raises before caching when malformed
        if self.cache:
            self.cache.put(key, method, response)
        return result

    def _send_with_retries(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, ok_statuses: tuple[int, ...]
    ) -> HttpResponse:
        full_headers = {"User-Agent": self.user_agent, "Accept-Encoding": "gzip", **headers}
        request = HttpRequest(method=method, url=url, headers=full_headers, body=body, timeout=self.timeout)
        last_problem = ""
        for attempt in range(self.max_retries + 1):
            self.limiter.wait()
            self.requests_sent += 1
            retry_after: float | None = None
            try:
                response = self.transport(request)
            except NetworkDisabledError:
                raise
            except (OSError, http.client.HTTPException) as error:  # URLError, timeouts, resets, cut-off bodies
                last_problem = f"connection failed: {error}"
            else:
                if 200 <= response.status < 300 or response.status in ok_statuses:
                    return response
                if response.status not in RETRY_STATUSES:
                    raise HttpError(url, f"HTTP {response.status}: {_snippet(response.body)}", status=response.status)
                last_problem = f"HTTP {response.status}"
                retry_after = self._retry_after(response.header("retry-after"))
            if attempt == self.max_retries:
                break
            delay = retry_after if retry_after is not None else self.backoff_base * (2**attempt)
            self._sleep(min(delay, self.max_backoff) if retry_after is None else delay)
        raise HttpError(url, f"gave up after {self.max_retries + 1} attempts; last: {last_problem}")

    def _retry_after(self, value: str | None) -> float | None:
        """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
        if not value:
            return None
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, moment.timestamp() - self._wall_clock())


def _snippet(body: bytes, limit: int = 200) -> str:
    text = body[:limit].decode("utf-8", errors="replace").strip().replace("\n", " ")
    return text or "(empty body)"
