"""Open the built book in headless Chromium and check each page as a reader would see it.

Chromium (Debian's `chromium`) is driven over the DevTools protocol through a pipe
(`--remote-debugging-pipe`: JSON messages ending in NUL on file descriptors 3 and 4), so no
driver, websocket library or network port is needed. For every page: every picture loaded
(`naturalWidth > 0`), no traceback or error output shows, no script error was thrown, no
resource failed to load, and nothing was requested from the network (the book must work from
`file://` offline; such requests are also blocked); every formula was typeset by MathJax and no
raw TeX is left in the prose; every picture has an alt text; no cell whose input is hidden lost
its outputs (checked against the page's source notebook). A full-page screenshot of each page is
saved. The checks on a page's text and DOM are small pure functions (`raw_tex`,
`unrendered_formulas`, `lost_hidden_outputs`) over what `PAGE_REPORT_JS` returns.
"""
from __future__ import annotations

import base64
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from ..fsutil import atomic_write_bytes
from .runner import is_glue_record

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
)
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")
MAX_SCREENSHOT_HEIGHT = 16000  # px; longer pages are cut there
# Run in the page once it has loaded: make lazy pictures load, wait for them, then report.
PAGE_REPORT_JS = r"""
(async () => {
  const images = Array.from(document.querySelectorAll('img'));
  images.forEach(img => { img.loading = 'eager'; });
  await Promise.all(images.map(img => img.complete ? null :
      new Promise(done => { img.addEventListener('load', done); img.addEventListener('error', done);
                            setTimeout(done, 5000); })));
  const errorSelectors = ['.output.traceback', '.output.error', 'div.output.stderr', '.cell_output .stderr',
                          'div.system-message', '.problematic'];
  const errors = [];
  for (const selector of errorSelectors) {
    document.querySelectorAll(selector).forEach(el => errors.push(selector + ': ' + el.innerText.slice(0, 200)));
  }
  document.querySelectorAll('.cell_output, .output').forEach(el => {
    const text = el.innerText || '';
    if (text.includes('Traceback (most recent call last)')) errors.push('traceback: ' + text.slice(0, 200));
  });
  const main = document.querySelector('main') || document.body;
  // Maths: wait until MathJax has typeset the page (it loads deferred, then typesets asynchronously).
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await Promise.race([MathJax.startup.promise, new Promise(done => setTimeout(done, 15000))]);
  }
  const maths = Array.from(main.querySelectorAll('.math'));
  // The prose as a reader sees it: no code, and no typeset maths (whose accessible copy is TeX-free anyway).
  const prose = main.cloneNode(true);
  prose.querySelectorAll('pre, code, script, style, mjx-container, .highlight').forEach(el => el.remove());
  return {
    title: document.title,
    maths: maths.map(el => ({rendered: !!el.querySelector('mjx-container'), error: !!el.querySelector('mjx-merror'),
                             source: (el.getAttribute('data-tex') || el.textContent || '').slice(0, 120)})),
    prose: prose.textContent,
    cells: Array.from(main.querySelectorAll('div.cell')).map(el => {
      const output = el.querySelector('.cell_output');
      return {classes: el.className,
              output: !!output && ((output.textContent || '').trim().length > 0 || !!output.querySelector('img, svg, table'))};
    }),
    alt_missing: Array.from(main.querySelectorAll('img')).filter(img => !(img.getAttribute('alt') || '').trim())
                      .map(img => img.getAttribute('src')),
    images: images.map(img => ({src: img.currentSrc || img.src, width: img.naturalWidth, complete: img.complete})),
    figures: main.querySelectorAll('img').length,
    errors: errors,
    text_length: (main.innerText || '').length,
    height: Math.ceil(Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)),
    width: Math.ceil(document.documentElement.scrollWidth),
  };
})()
"""

REFRESH = re.compile(r"<meta[^>]+http-equiv=[\"']?refresh", re.IGNORECASE)


# Attributes by which a page loads something (links to other sites, <a href>, load nothing).
LOADING_ATTRIBUTES = {"script": ("src",), "img": ("src", "srcset"), "iframe": ("src",), "source": ("src", "srcset"),
                      "video": ("src", "poster"), "audio": ("src",), "embed": ("src",), "object": ("data",),
                      "input": ("src",)}
LOADING_LINK_RELS = {"stylesheet", "icon", "shortcut", "preload", "modulepreload", "prefetch", "manifest",
                     "apple-touch-icon", "preconnect", "dns-prefetch"}
CSS_REMOTE = re.compile(r"(?:url\(\s*['\"]?|@import\s+['\"])\s*((?:https?:)?//[^'\")\s]+)", re.IGNORECASE)


def _is_remote(url: str) -> bool:
    return url.strip().lower().startswith(("http://", "https://", "//", "ws://", "wss://"))


class _LoadCollector(HTMLParser):
    """Collect the URLs a page would load (scripts, styles, pictures, frames, fonts in styles)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        for name in LOADING_ATTRIBUTES.get(tag, ()):
            if values.get(name):
                self.urls += [part.split()[0] for part in values[name].split(",") if part.strip()]
        if tag == "link" and LOADING_LINK_RELS & set(values.get("rel", "").lower().split()) and values.get("href"):
            self.urls.append(values["href"])
        if values.get("style"):
            self.urls += CSS_REMOTE.findall(values["style"])

    def handle_data(self, data: str) -> None:
        self.urls += CSS_REMOTE.findall(data)  # inline <style> blocks


def static_external_references(html_dir: Path) -> list[str]:
    """`FILE: URL` for every remote resource a page or stylesheet of the built book would load."""
    html_dir = Path(html_dir)
    found = []
    for page in sorted(html_dir.rglob("*.html")):
        collector = _LoadCollector()
        collector.feed(page.read_text(encoding="utf-8", errors="replace"))
        found += [f"{page.relative_to(html_dir)}: {url}" for url in collector.urls if _is_remote(url)]
    for sheet in sorted(html_dir.rglob("*.css")):
        found += [f"{sheet.relative_to(html_dir)}: {url}" for url in CSS_REMOTE.findall(sheet.read_text(errors="replace"))]
    return found


class BrowserError(RuntimeError):
    """Chromium could not be started or stopped answering."""


def find_chromium() -> str:
    """The Chromium binary, or BrowserError saying how to install it."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise BrowserError("headless Chromium is not installed: `apt-get install -y chromium` (make test does this as root)")


class DevToolsPipe:
    """A minimal DevTools client over Chromium's debugging pipe."""

    def __init__(self, binary: str | None = None, window: tuple[int, int] = (1280, 1000)) -> None:
        self.profile_dir = tempfile.mkdtemp(prefix="m3el-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def _map_pipes() -> None:  # runs in the child: its fds 3 and 4 become the protocol pipes
            read_end, write_end = os.dup(to_child_r), os.dup(from_child_w)  # out of the way of 3 and 4
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        command = [binary or find_chromium(), *CHROMIUM_FLAGS, "--remote-debugging-pipe",
                   f"--user-data-dir={self.profile_dir}", f"--window-size={window[0]},{window[1]}", "about:blank"]
        self.process = subprocess.Popen(command, preexec_fn=_map_pipes, pass_fds=(3, 4, to_child_r, from_child_w),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (BrowserError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile_dir, ignore_errors=True)

    def __enter__(self) -> "DevToolsPipe":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrowserError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_child], [], [], remaining)
            if ready:
                chunk = os.read(self._from_child, 1 << 20)
                if not chunk:
                    raise BrowserError("Chromium closed the DevTools pipe (did it crash?)")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60) -> dict:
        """Send one command and return its result (events that arrive meanwhile are kept)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, session: str | None = None, timeout: float = 60) -> dict:
        """Wait for an event (or take it if it already arrived)."""
        deadline = time.monotonic() + timeout
        while True:
            for index, event in enumerate(self.events):
                if event.get("method") == method and (session is None or event.get("sessionId") == session):
                    return self.events.pop(index)
            self.events.append(self._read_message(deadline))


# ---------------------------------------------------------------------------- page checks
# Small functions over what a page shows (its text, its DOM as reported by PAGE_REPORT_JS), so
# any browser driver can run them.

RAW_TEX = re.compile(
    r"\\\(|\\\)|\\\[|\\\]|\$\$"  # MathJax/Sphinx delimiters
    r"|\\(?:frac|mathrm|mathcal|mathbb|operatorname|sum|prod|begin|end|left|right|langle|rangle|lVert|hat|bar|text|qquad|cdot|in|sim|le|ge)\b"
    r"|\$[^$\n]{0,80}?[\\^_][^$\n]{0,80}?\$"  # $...$ with TeX inside, left untypeset
)


def raw_tex(prose: str) -> list[str]:
    """Raw TeX a reader would see in the page's prose (code excluded): each with its context."""
    found = []
    for match in RAW_TEX.finditer(prose):
        start, end = max(0, match.start() - 30), min(len(prose), match.end() + 30)
        found.append(" ".join(prose[start:end].split()))
    return found


def unrendered_formulas(maths: list[dict[str, Any]]) -> list[str]:
    """Formulas (Sphinx `.math` elements) that MathJax did not typeset, or typeset as an error."""
    problems = []
    for formula in maths:
        if not formula.get("rendered"):
            problems.append(f"formula not rendered: {formula.get('source', '')[:80]}")
        elif formula.get("error"):
            problems.append(f"formula has a TeX error: {formula.get('source', '')[:80]}")
    return problems


HIDING_TAGS = {"hide-input", "remove-input", "hide-cell"}


def lost_hidden_outputs(page_cells: list[dict[str, Any]], notebook: Any) -> list[str]:
    """Cells whose input is hidden but whose outputs the page lost.

    `page_cells`: the page's code cells in order (`classes`, `output`: whether it shows any);
    `notebook`: the notebook the page was built from. Cells tagged remove-cell are not on the page;
    stderr is removed from every page by the book's configuration and glued values are shown in
    the prose, not under their cell, so neither counts.
    """
    code = [c for c in notebook.cells if c.get("cell_type") == "code"
            and "remove-cell" not in c.get("metadata", {}).get("tags", [])]
    if len(code) != len(page_cells):
        return [f"the page shows {len(page_cells)} code cells, its notebook has {len(code)}"]
    problems = []
    for number, (cell, shown) in enumerate(zip(code, page_cells), start=1):
        tags = set(cell.get("metadata", {}).get("tags", []))
        if not tags & HIDING_TAGS or "remove-output" in tags:
            continue
        outputs = [o for o in cell.get("outputs", []) if not is_glue_record(o)
                   and not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
        if outputs and not shown.get("output"):
            problems.append(f"code cell {number} ({', '.join(sorted(tags & HIDING_TAGS))}) lost its output")
    return problems


@dataclass
class PageReport:
    """What one page showed."""

    url: str
    title: str = ""
    images: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    screenshot: Path | None = None
    formulas: int = 0  # formulas on the page
    rendered_formulas: int = 0  # of which MathJax typeset without error
    hidden_inputs: int = 0  # code cells whose input is folded or removed

    @property
    def ok(self) -> bool:
        return not self.problems


def _page_session(browser: DevToolsPipe) -> str:
    targets = browser.send("Target.getTargets")["targetInfos"]
    page = next((t for t in targets if t.get("type") == "page"), None)
    target_id = page["targetId"] if page else browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.send("Target.attachToTarget", {"targetId": target_id, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Network"):
        browser.send(f"{domain}.enable", session=session)
    # Anything that leaves the machine is blocked, and still reported below as a problem.
    browser.send("Network.setBlockedURLs", {"urls": ["http://*", "https://*", "ws://*", "wss://*"]}, session=session)
    return session


def _network_problems(events: list[dict[str, Any]]) -> list[str]:
    problems = []
    for event in events:
        params = event.get("params", {})
        if event.get("method") == "Network.requestWillBeSent":
            url = params.get("request", {}).get("url", "")
            if not url.startswith(LOCAL_SCHEMES):
                problems.append(f"requested from the network: {url}")
        elif event.get("method") == "Network.loadingFailed" and not params.get("canceled"):
            if params.get("blockedReason") is None:
                problems.append(f"a resource failed to load: {params.get('errorText')} (request {params.get('requestId')})")
        elif event.get("method") == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text", "")
            problems.append(f"script error: {text[:200]}")
    return problems


def check_page(browser: DevToolsPipe, session: str, url: str, screenshot: Path | None, timeout: float = 60,
               redirects: bool = False, notebook: Path | None = None) -> PageReport:
    """Load one page, check it, and save a full-page screenshot (`notebook`: the page's source
    notebook, to check that no hidden cell lost its outputs)."""
    report = PageReport(url=url)
    browser.events.clear()
    browser.send("Page.navigate", {"url": url}, session=session)
    browser.wait_for("Page.loadEventFired", session=session, timeout=timeout)
    if redirects:  # the book's index.html is a meta-refresh redirect: check the page it lands on
        browser.wait_for("Page.loadEventFired", session=session, timeout=timeout)
    result = browser.send("Runtime.evaluate", {"expression": PAGE_REPORT_JS, "awaitPromise": True, "returnByValue": True},
                          session=session, timeout=timeout)
    if "exceptionDetails" in result:
        report.problems.append(f"the page check itself failed: {result['exceptionDetails'].get('text')}")
        return report
    page = result["result"]["value"]
    report.title, report.images = page["title"], page["images"]
    for image in page["images"]:
        if not image["width"]:
            report.problems.append(f"picture did not load: {image['src']}")
    report.problems += [f"shows an error: {text}" for text in page["errors"]]
    report.problems += [f"raw TeX on the page: {text}" for text in raw_tex(page["prose"])]
    report.problems += unrendered_formulas(page["maths"])
    report.formulas = len(page["maths"])
    report.rendered_formulas = sum(1 for m in page["maths"] if m["rendered"] and not m["error"])
    report.problems += [f"picture without alt text: {src}" for src in page["alt_missing"]]
    report.hidden_inputs = sum(1 for c in page["cells"] if any(f"tag_{tag}" in c["classes"].split() for tag in HIDING_TAGS))
    if notebook is not None and notebook.exists():
        import nbformat

        report.problems += lost_hidden_outputs(page["cells"], nbformat.read(notebook, as_version=4))
    if page["text_length"] < 20:
        report.problems.append("the page is (nearly) empty")
    report.problems += _network_problems(browser.events)
    if screenshot is not None:
        height = min(page["height"], MAX_SCREENSHOT_HEIGHT)
        shot = browser.send("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": max(page["width"], 800), "height": height, "scale": 1},
        }, session=session, timeout=timeout)
        report.screenshot = atomic_write_bytes(screenshot, base64.b64decode(shot["data"]))
    return report


def book_pages(html_dir: Path) -> list[Path]:
    """The index and every content page of a built book (not search, genindex, sources)."""
    html_dir = Path(html_dir)
    skip = {"search.html", "genindex.html", "py-modindex.html"}
    pages = [p for p in sorted(html_dir.rglob("*.html"))
             if p.name not in skip and not p.relative_to(html_dir).parts[0].startswith("_")]
    index = html_dir / "index.html"
    return [index] + [p for p in pages if p != index] if index in pages else pages


def check_book(html_dir: Path, screenshot_dir: Path | None, pages: list[Path] | None = None) -> list[PageReport]:
    """Check every page of the book in one headless Chromium; one report per page."""
    html_dir = Path(html_dir).resolve()
    reports = []
    with DevToolsPipe() as browser:
        session = _page_session(browser)
        for page in pages or book_pages(html_dir):
            relative = page.resolve().relative_to(html_dir)
            shot = Path(screenshot_dir) / (str(relative.with_suffix("")).replace(os.sep, "__") + ".png") if screenshot_dir else None
            redirects = bool(REFRESH.search(page.read_text(encoding="utf-8", errors="replace")))
            notebook = html_dir / "_sources" / relative.with_suffix(".ipynb")
            reports.append(check_page(browser, session, page.resolve().as_uri(), shot, redirects=redirects,
                                      notebook=notebook if notebook.exists() else None))
    return reports
