"""Open the built book in headless Chromium (Debian's `chromium`, driven by Playwright; `make test` installs it).

The checker is first shown to catch what it must catch on pages made here (a missing picture, a
traceback, a script from the network); then every page of the project's book, built in the
sample profile by the same runner as `make book`, must pass, with a screenshot of each saved
under `$M3EL_HOME/results/sample/screenshots/`.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from m3el_lib import book, config
from m3el_lib.book_browser import book_pages, check_book

pytestmark = [pytest.mark.browser]
SHARED_HOME = config.home()  # read before conftest gives each test a private M3EL_HOME
PIXEL_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


def test_checker_catches_broken_pictures_tracebacks_and_network_loads(tmp_path):
    (tmp_path / "pixel.png").write_bytes(PIXEL_PNG)
    good = tmp_path / "good.html"
    good.write_text("<html><body><main><h1>A fine page with a picture</h1><img src='pixel.png'>"
                    "<div style='height: 3000px'>a tall page</div></main></body></html>")
    broken = tmp_path / "broken.html"
    broken.write_text(
        "<html><head><script src='https://cdn.example.org/lib.js'></script></head><body><main><h1>Broken</h1>"
        "<img src='missing.png'><div class='cell_output'><pre>Traceback (most recent call last):\n  boom</pre></div>"
        "<script>throw new Error('thrown by the page')</script>"
        "</main></body></html>")
    reports = {Path(r.url).name: r for r in check_book(tmp_path, tmp_path / "shots", pages=[good, broken])}
    assert reports["good.html"].ok, reports["good.html"].problems
    assert reports["good.html"].images[0]["width"] == 1
    problems = "\n".join(reports["broken.html"].problems)
    assert "picture did not load" in problems and "missing.png" in problems
    assert "Traceback" in problems
    assert "requested from the network: https://cdn.example.org/lib.js" in problems
    assert "script error: " in problems and "thrown by the page" in problems
    with Image.open(tmp_path / "shots" / "good.png") as shot:  # the whole page, not just the window
        assert shot.width >= 800 and shot.height > 3000


@pytest.mark.notebooks
@pytest.mark.slow
def test_every_page_of_the_book_renders_with_its_figures():
    result = book.make_book(book.default_job("sample", home=SHARED_HOME))
    shots = SHARED_HOME / "results" / "sample" / "screenshots"
    pages = book_pages(result.html_dir)
    for chapter in result.chapter_pages():
        assert chapter in pages
    reports = check_book(result.html_dir, shots, pages=pages)
    failures = [f"{r.url}:\n  " + "\n  ".join(r.problems) for r in reports if not r.ok]
    assert not failures, "\n".join(failures)
    for report in reports:
        assert report.screenshot and report.screenshot.stat().st_size > 5_000, report.url
    chapter_reports = [r for r in reports if "/chapters/" in r.url]
    assert len(chapter_reports) == len(result.runs)
    print(f"screenshots of {len(reports)} pages in {shots}")
