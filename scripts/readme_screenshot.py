"""Make `docs/book.png`, the README's picture of the book, from a built book.

Usage: `.venv/bin/python scripts/readme_screenshot.py [PAGE ...]` after `make book`; PAGE is a
path inside the HTML folder (default: the instance gallery and the mathematics page). Each page
is shot in headless Chromium at 1280 x 900, once its maths is typeset, scrolled to its first
figure or display formula; the shots are put side by side, scaled to 1400 px wide and reduced to
256 colours so that the committed PNG stays small.
"""
from __future__ import annotations

import io
import sys
from pathlib import Path

from PIL import Image
from playwright.sync_api import Page

from m3el_lib import config
from m3el_lib.book import runner as book
from m3el_lib.book.browser import headless_page

OUT = config.PROJECT_ROOT / "docs" / "book.png"
WIDTH = 1400
SCROLL_TO_FIGURE_JS = """
(async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  const figure = Array.from(document.querySelectorAll('main img')).find(img => img.naturalWidth > 200)
                 || document.querySelector('main div.math');
  if (figure) { window.scrollTo(0, figure.getBoundingClientRect().top + window.scrollY - 150); }
  await new Promise(done => setTimeout(done, 300));
})()
"""


def shoot(browser: Page, page: Path) -> Image.Image:
    browser.goto(page.resolve().as_uri(), wait_until="load")
    browser.evaluate("() => window.MathJax && MathJax.startup ? MathJax.startup.promise : null")  # formulas typeset
    # Scroll the first figure of the page's content into view, a little below the top.
    browser.evaluate(SCROLL_TO_FIGURE_JS)
    return Image.open(io.BytesIO(browser.screenshot())).convert("RGB")


def main(argv: list[str]) -> int:
    html = book.default_job("sample").html_dir
    pages = [html / name for name in argv] or [html / "instances.html", html / "methods.html"]
    with headless_page(window=(1280, 900)) as browser:
        shots = [shoot(browser, page) for page in pages]
    canvas = Image.new("RGB", (sum(s.width for s in shots) + 16 * (len(shots) - 1), max(s.height for s in shots)), "#cccccc")
    x = 0
    for shot in shots:
        canvas.paste(shot, (x, 0))
        x += shot.width + 16
    canvas = canvas.resize((WIDTH, round(canvas.height * WIDTH / canvas.width)), Image.LANCZOS)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    canvas.quantize(colors=256, method=Image.MEDIANCUT).save(OUT, optimize=True)
    print(f"{OUT}: {OUT.stat().st_size // 1024} KiB from {', '.join(p.name for p in pages)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
