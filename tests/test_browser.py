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

from m3el_lib import config
from m3el_lib.book import runner as book
from m3el_lib.book.browser import book_pages, check_book, lost_hidden_outputs, raw_glue, raw_tex, unrendered_formulas

pytestmark = [pytest.mark.browser]
SHARED_HOME = config.home()  # read before conftest gives each test a private M3EL_HOME
PIXEL_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


def test_checker_catches_broken_pictures_tracebacks_and_network_loads(tmp_path):
    (tmp_path / "pixel.png").write_bytes(PIXEL_PNG)
    good = tmp_path / "good.html"
    good.write_text("<html><body><main><h1>A fine page with a picture</h1><img src='pixel.png' alt='one pixel'>"
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
    assert "picture without alt text: missing.png" in problems
    assert "script error: " in problems and "thrown by the page" in problems
    with Image.open(tmp_path / "shots" / "good.png") as shot:  # the whole page, not just the window
        assert shot.width >= 800 and shot.height > 3000


def test_raw_tex_is_found_in_prose_and_plain_dollars_are_not():
    assert raw_tex("It costs $5, or $6 with the tax; see section 2.") == []
    found = raw_tex("The loss is \\frac{1}{K} and $a_i$ here, or \\(x\\) and $$y$$.")
    assert any("\\frac" in f for f in found) and any("$a_i$" in f for f in found)
    assert any("\\(x" in f for f in found) and any("$$y$$" in f for f in found)


def test_glue_left_unparsed_in_the_prose_is_found():
    assert raw_glue("Acc@1 is 41.0% on 12 instances (profile sample).") == []
    assert raw_glue("Acc@1 is {glue:text}`acc:.1%` here, and {glue}`table` there.") == ["{glue:text}`acc:.1%`", "{glue}`table`"]


def test_unrendered_and_erroneous_formulas_are_named():
    maths = [{"rendered": True, "error": False, "source": "a"}, {"rendered": False, "error": False, "source": "\\frac{1}{K}"},
             {"rendered": True, "error": True, "source": "\\badmacro"}]
    assert unrendered_formulas(maths) == ["formula not rendered: \\frac{1}{K}", "formula has a TeX error: \\badmacro"]


def test_a_hidden_cell_that_lost_its_output_is_found():
    import nbformat

    v4 = nbformat.v4
    out = v4.new_output("stream", name="stdout", text="42\n")
    notebook = v4.new_notebook(cells=[
        v4.new_code_cell("x", metadata={"tags": ["injected-parameters", "remove-cell"]}),
        v4.new_code_cell("import json\nprint(42)", outputs=[out], metadata={"tags": ["hide-input"]}),
        v4.new_code_cell("warn()", outputs=[v4.new_output("stream", name="stderr", text="w")], metadata={"tags": ["hide-input"]}),
        v4.new_code_cell("print(42)", outputs=[out]),
        v4.new_code_cell("glue('n', 3, display=False)", metadata={"tags": ["hide-input"]}, outputs=[v4.new_output(
            "display_data", data={"application/papermill.record/text/plain": "3"})]),
    ])
    shown = [{"classes": "cell tag_hide-input", "output": True}, {"classes": "cell tag_hide-input", "output": False},
             {"classes": "cell", "output": True}, {"classes": "cell tag_hide-input", "output": False}]
    assert lost_hidden_outputs(shown, notebook) == []
    shown[0]["output"] = False
    assert lost_hidden_outputs(shown, notebook) == ["code cell 1 (hide-input) lost its output"]
    assert "the page shows 2 code cells, its notebook has 4" in lost_hidden_outputs(shown[:2], notebook)


def test_formulas_typeset_by_the_bundled_mathjax_pass_and_untypeset_ones_fail(tmp_path):
    import importlib.util
    import shutil

    bundled = Path(importlib.util.find_spec("sphinx-mathjax-offline").origin).parent / "static" / "mathjax"
    shutil.copytree(bundled, tmp_path / "mathjax")
    body = ("<main><h1>Maths</h1><p>Inline <span class='math notranslate nohighlight'>\\(\\frac{1}{K_i}\\)</span>.</p>"
            "<div class='math notranslate nohighlight'>\\[\\mathrm{MRR} = \\frac{H_K}{K}\\]</div></main>")
    typeset = tmp_path / "typeset.html"
    typeset.write_text(f"<html><head><script defer src='mathjax/tex-chtml.js'></script></head><body>{body}</body></html>")
    raw = tmp_path / "raw.html"
    raw.write_text(f"<html><body>{body}</body></html>")
    reports = {Path(r.url).name: r for r in check_book(tmp_path, None, pages=[typeset, raw])}
    assert reports["typeset.html"].ok, reports["typeset.html"].problems
    assert reports["typeset.html"].formulas == reports["typeset.html"].rendered_formulas == 2
    problems = "\n".join(reports["raw.html"].problems)
    assert problems.count("formula not rendered") == 2 and "raw TeX on the page" in problems


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
    formulas = sum(r.rendered_formulas for r in reports)
    assert formulas >= 8, f"only {formulas} formulas rendered across the book"
    assert all(r.hidden_inputs >= 2 for r in chapter_reports)  # at least the parameters and the imports are folded
    print(f"{formulas} formulas rendered; screenshots of {len(reports)} pages in {shots}")
