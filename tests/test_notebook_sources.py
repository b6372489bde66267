"""Static checks of the notebooks' sources (no kernel): no code cell builds prose, and every value
the prose pastes with MyST-NB's glue roles is glued by a code cell of the same notebook.

Prose belongs in Markdown cells; numbers reach it through `glue(name, value, display=False)` and
`{glue:text}`; a computed list or remark comes from a library function (`m3el_lib.reports.findings`)
and is glued as `Markdown(library_call(...))` for `{glue:md}`. So a code cell may call
`Markdown(...)` only as the value it glues, and only on a call's result, never on a string it
assembles itself.
"""
from __future__ import annotations

import ast
import re

import jupytext
import pytest

from m3el_lib import config
from m3el_lib.book.runner import discover_notebooks

NOTEBOOKS = discover_notebooks(config.NOTEBOOKS_DIR)
GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`([^`]+)`")
GLUE_DIRECTIVE = re.compile(r"^```\{glue(?::\w+)?\}\s+(\S+)", re.MULTILINE)


def _name(node: ast.AST) -> str:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""


def prose_built_in_code(source: str) -> list[str]:
    """Where a code cell's source builds Markdown prose: `display(Markdown(...))`, a Markdown of an
    assembled string, or a Markdown that is not the value handed to `glue`."""
    tree = ast.parse(source)
    glued = {id(call.args[1]) for call in ast.walk(tree)
             if isinstance(call, ast.Call) and _name(call.func) == "glue" and len(call.args) > 1}
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and _name(node.func) == "Markdown"):
            continue
        text = ast.unparse(node)[:80]
        if id(node) not in glued:
            found.append(f"line {node.lineno}: Markdown shown, not glued: {text}")
        elif not (len(node.args) == 1 and isinstance(node.args[0], ast.Call)):
            found.append(f"line {node.lineno}: Markdown of a string assembled in the cell: {text}")
    return found


def glued_names(source: str) -> list[re.Pattern[str]]:
    """The names a code cell glues, as patterns (a name built by an f-string matches any filling)."""
    names = []
    for call in ast.walk(ast.parse(source)):
        if not (isinstance(call, ast.Call) and _name(call.func) == "glue" and call.args):
            continue
        key = call.args[0]
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            names.append(re.compile(re.escape(key.value)))
        elif isinstance(key, ast.JoinedStr):
            names.append(re.compile("".join(re.escape(part.value) if isinstance(part, ast.Constant) else ".+"
                                            for part in key.values)))
    return names


def pasted_names(markdown: str) -> list[str]:
    """The glued names a Markdown cell pastes (`{glue:text}`name:format``, ```{glue:md} name``)."""
    roles = [key.rsplit(":", 1)[0] if ":" in key else key for key in GLUE_ROLE.findall(markdown)]
    return roles + GLUE_DIRECTIVE.findall(markdown)


def test_the_checker_finds_prose_built_in_code_and_allows_glued_library_markdown():
    assert prose_built_in_code('display(Markdown(f"Acc@1 is **{acc:.1%}**"))')
    assert prose_built_in_code('text = Markdown("\\n".join(lines))\nglue("x", text, display=False)')
    assert prose_built_in_code('glue("summary", Markdown(f"- {n} instances"), display=False)')
    assert prose_built_in_code('glue("summary", Markdown("- " + name), display=False)')
    assert prose_built_in_code('from IPython.display import Markdown as M\nIPython.display.Markdown(card)')
    assert prose_built_in_code('glue("n", 3, display=False)\nglue("acc", acc, display=False)') == []
    assert prose_built_in_code('glue("remarks", Markdown(statistics_remarks(tables)), display=False)') == []
    assert prose_built_in_code('glue("card", Markdown(card.read_text()), display=False)') == []


def test_glued_and_pasted_names_are_read_from_the_sources():
    patterns = glued_names('glue("n_test", 3, display=False)\nfor t in tasks:\n    glue(f"acc_{t}", 1.0, display=False)')
    assert [p.pattern for p in patterns] == ["n_test", "acc_.+"]
    markdown = ("Took **{glue:text}`secs:.0f` s**, {glue:text}`acc_T-I:.1%` and {glue:text}`name`.\n\n"
                "```{glue:md} remarks\n:format: myst\n```\n\n```{glue} table\n```")
    assert pasted_names(markdown) == ["secs", "acc_T-I", "name", "remarks", "table"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_no_code_cell_of_a_notebook_builds_prose(path):
    notebook = jupytext.read(path)
    problems = [f"{path.name} cell {index}, {problem}" for index, cell in enumerate(notebook.cells)
                if cell.cell_type == "code" for problem in prose_built_in_code(cell.source)]
    assert not problems, "write the prose in a Markdown cell and glue the numbers:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_value_the_prose_pastes_is_glued_in_the_same_notebook(path):
    notebook = jupytext.read(path)
    glued = [pattern for cell in notebook.cells if cell.cell_type == "code" for pattern in glued_names(cell.source)]
    pasted = [name for cell in notebook.cells if cell.cell_type == "markdown" for name in pasted_names(cell.source)]
    missing = sorted({name for name in pasted if not any(pattern.fullmatch(name) for pattern in glued)})
    assert not missing, f"{path.name} pastes values no code cell glues: {missing}"
