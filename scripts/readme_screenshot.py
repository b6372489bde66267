"""Make `docs/book.png`, the README's picture of the book, from a built book.

Usage: `.venv/bin/python scripts/readme_screenshot.py [PAGE ...]` after `make book`; PAGE is a
path inside the HTML folder (default: the introduction and the statistics chapter). Each page
is shot in headless Chromium at 1280 x 900, scrolled to its first figure; the shots are put side
by side, scaled to 1400 px wide and reduced to 256 colours so that the committed PNG stays small.
"""
from __future__ import annotations

import io
import sys
from pathlib import Path

from PIL import Image
from playwright.sync_api import Page

from m3el_lib import book, config
from m3el_lib.book_browser import headless_page

OUT = config.PROJECT_ROOT / "docs" / "book.png"
WIDTH = 1400
SCROLL_TO_FIGURE_JS = """
(async () => {
  const figure = Array.from(document.querySelectorAll('main img')).find(img => img.naturalWidth > 200);
  if (figure) { window.scrollTo(0, figure.getBoundingClientRect().top + window.scrollY - 150); }
  await new Promise(done => setTimeout(done, 300));
})()
"""


def shoot(browser: Page, page: Path) -> Image.Image:
    browser.goto(page.resolve().as_uri(), wait_until="load")
    # Scroll the first figure of the page's content into view, a little below the top.
    browser.evaluate(SCROLL_TO_FIGURE_JS)
    return Image.open(io.BytesIO(browser.screenshot())).convert("RGB")


def main(argv: list[str]) -> int:
    html = book.default_job("sample").html_dir
    chapters = sorted((html / book.CHAPTERS).glob("*.html"))
    statistics = [chapter for chapter in chapters if "statistics" in chapter.name][:1]
    pages = [html / name for name in argv] or [html / "intro.html", *statistics]
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
