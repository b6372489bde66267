"""Open the built book in headless Chromium and check each page as a reader would see it.

Playwright drives Debian's `chromium` (`/usr/bin/chromium`; Playwright's own browser downloads
are not needed). For every page: every picture loaded (`naturalWidth > 0`), no traceback or
error output shows, no script error was thrown, no resource failed to load, and nothing was
requested from the network (the book must work from `file://` offline; such requests are also
blocked); every formula was typeset by MathJax and no raw TeX is left in the prose; every picture
has an alt text; no cell whose input is hidden lost its outputs (checked against the page's source
notebook). A full-page screenshot of each page is saved. The checks on a page's text and DOM are
small pure functions (`raw_tex`, `unrendered_formulas`, `lost_hidden_outputs`) over what
`PAGE_REPORT_JS` returns.
"""
from __future__ import annotations

import os
import re
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterator

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, Request, Route, sync_playwright

from ..fsutil import atomic_write_bytes
from .runner import is_glue_record

# Playwright adds --headless itself; the rest keep Chromium from calling home.
CHROMIUM_FLAGS = (
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
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
    raise BrowserError("headless Chromium is not installed: `make browser` (apt-get install -y chromium)")


@contextmanager
def headless_page(binary: str | None = None, window: tuple[int, int] = (1280, 1000)) -> Iterator[Page]:
    """A Playwright page in a fresh headless Chromium that aborts every request to the network."""
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=binary or find_chromium(), headless=True,
                                                 args=list(CHROMIUM_FLAGS))
        except PlaywrightError as error:
            raise BrowserError(f"Chromium did not start: {str(error).splitlines()[0]}") from None
        try:
            context = browser.new_context(viewport={"width": window[0], "height": window[1]}, service_workers="block")
            context.route(re.compile(r"^(https?|wss?)://"), _abort)
            yield context.new_page()
        finally:
            browser.close()


def _abort(route: Route) -> None:
    route.abort("blockedbyclient")


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


RAW_GLUE = re.compile(r"\{glue(?::\w+)?\}`?[^`\s]*`?")


def raw_glue(prose: str) -> list[str]:
    """MyST-NB glue roles or directives left unparsed in the page's prose (a value never pasted)."""
    return [match.group(0) for match in RAW_GLUE.finditer(prose)]


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


class _PageEvents:
    """What a page does while it is checked: its requests, failed loads and uncaught script errors."""

    def __init__(self, page: Page) -> None:
        self.problems: list[str] = []
        self._handlers = {"request": self._request, "requestfailed": self._failed,
                          "pageerror": self._script_error, "websocket": self._websocket}
        self._page = page
        for event, handler in self._handlers.items():
            page.on(event, handler)

    def detach(self) -> None:
        for event, handler in self._handlers.items():
            self._page.remove_listener(event, handler)

    def _request(self, request: Request) -> None:
        if not request.url.startswith(LOCAL_SCHEMES):
            self.problems.append(f"requested from the network: {request.url}")

    def _failed(self, request: Request) -> None:
        if request.url.startswith(LOCAL_SCHEMES):  # remote ones were blocked by us and reported above
            self.problems.append(f"a resource failed to load: {request.failure} ({request.url})")

    def _script_error(self, error: Exception) -> None:
        self.problems.append(f"script error: {str(error)[:200]}")

    def _websocket(self, socket: Any) -> None:
        self.problems.append(f"requested from the network: {socket.url}")


def check_page(page: Page, url: str, screenshot: Path | None, timeout: float = 60, redirects: bool = False,
               notebook: Path | None = None) -> PageReport:
    """Load one page, check it, and save a full-page screenshot (`notebook`: the page's source
    notebook, to check that no hidden cell lost its outputs)."""
    report = PageReport(url=url)
    events = _PageEvents(page)
    try:
        page.goto(url, wait_until="load", timeout=timeout * 1000)
        if redirects:  # the book's index.html is a meta-refresh redirect: check the page it lands on
            page.wait_for_url(lambda landed: landed != url, wait_until="load", timeout=timeout * 1000)
        checked = page.evaluate(PAGE_REPORT_JS)
    except PlaywrightError as error:
        report.problems.append(f"the page check itself failed: {str(error).splitlines()[0]}")
        return report
    finally:
        events.detach()
    report.title, report.images = checked["title"], checked["images"]
    for image in checked["images"]:
        if not image["width"]:
            report.problems.append(f"picture did not load: {image['src']}")
    report.problems += [f"shows an error: {text}" for text in checked["errors"]]
    report.problems += [f"raw TeX on the page: {text}" for text in raw_tex(checked["prose"])]
    report.problems += [f"glued value not pasted: {text}" for text in raw_glue(checked["prose"])]
    report.problems += unrendered_formulas(checked["maths"])
    report.formulas = len(checked["maths"])
    report.rendered_formulas = sum(1 for m in checked["maths"] if m["rendered"] and not m["error"])
    report.problems += [f"picture without alt text: {src}" for src in checked["alt_missing"]]
    report.hidden_inputs = sum(1 for c in checked["cells"] if any(f"tag_{tag}" in c["classes"].split() for tag in HIDING_TAGS))
    if notebook is not None and notebook.exists():
        import nbformat

        report.problems += lost_hidden_outputs(checked["cells"], nbformat.read(notebook, as_version=4))
    if checked["text_length"] < 20:
        report.problems.append("the page is (nearly) empty")
    report.problems += events.problems
    if screenshot is not None:
        clip = {"x": 0, "y": 0, "width": max(checked["width"], 800), "height": min(checked["height"], MAX_SCREENSHOT_HEIGHT)}
        report.screenshot = atomic_write_bytes(screenshot, page.screenshot(full_page=True, clip=clip, timeout=timeout * 1000))
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
    with headless_page() as browser_page:
        for page in pages or book_pages(html_dir):
            relative = page.resolve().relative_to(html_dir)
            shot = Path(screenshot_dir) / (str(relative.with_suffix("")).replace(os.sep, "__") + ".png") if screenshot_dir else None
            redirects = bool(REFRESH.search(page.read_text(encoding="utf-8", errors="replace")))
            notebook = html_dir / "_sources" / relative.with_suffix(".ipynb")
            reports.append(check_page(browser_page, page.resolve().as_uri(), shot, redirects=redirects,
                                      notebook=notebook if notebook.exists() else None))
    return reports
