"""Sphinx extension of the M³EL book: no page loads or names anything from the network.

Jupyter Book 1 always loads sphinx-thebe (live code cells on a remote kernel), which we do not
use. It adds its configuration script twice, a SyntaxError in every page's console, and names a
CDN URL for the thebe bundle. Its scripts are removed from every page here.
"""
from __future__ import annotations

from typing import Any


def is_thebe_script(script: Any) -> bool:
    """True for sphinx-thebe's script file and its inline configuration script."""
    filename = getattr(script, "filename", None) or ""
    body = (getattr(script, "attributes", None) or {}).get("body", "")
    return "sphinx-thebe" in str(filename) or "THEBE_JS_URL" in str(body)


def drop_thebe(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    scripts = context.get("script_files")
    if scripts is not None:
        context["script_files"] = [script for script in scripts if not is_thebe_script(script)]


def setup(app: Any) -> dict[str, Any]:
    app.connect("html-page-context", drop_thebe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
