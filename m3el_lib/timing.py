"""Where the minutes go: named stages (decode, encode, train, evaluate, bootstrap, figures, ...)
timed across the library, so a cold book build can be profiled per notebook and per stage.

`with stage("encode"):` adds the block's wall time to that stage. Time is exclusive: a stage
entered inside another pauses the outer one, so the stages of a run add up to the time spent in
any of them. When `M3EL_STAGE_LOG` names a file (the book runner sets it for every notebook it
executes), the totals are written there as JSON when the process exits.
"""
from __future__ import annotations

import atexit
import json
import os
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

STAGE_LOG_ENV = "M3EL_STAGE_LOG"

_seconds: dict[str, float] = defaultdict(float)
_calls: dict[str, int] = defaultdict(int)
_local = threading.local()


def _stack() -> list[list]:
    if not hasattr(_local, "stack"):
        _local.stack = []
    return _local.stack


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Count the block's wall time (minus nested stages) towards `name`."""
    stack = _stack()
    now = time.perf_counter()
    if stack:  # pause the enclosing stage
        outer = stack[-1]
        _seconds[outer[0]] += now - outer[1]
    frame = [name, now]
    stack.append(frame)
    _calls[name] += 1
    try:
        yield
    finally:
        end = time.perf_counter()
        _seconds[name] += end - frame[1]
        stack.pop()
        if stack:
            stack[-1][1] = end  # resume the enclosing stage


def totals() -> dict[str, dict[str, float]]:
    """{stage: {"seconds": s, "calls": n}} so far in this process."""
    return {name: {"seconds": round(_seconds[name], 3), "calls": _calls[name]} for name in sorted(_seconds)}


def reset() -> None:
    _seconds.clear()
    _calls.clear()


def _write_log() -> None:
    target = os.environ.get(STAGE_LOG_ENV)
    if target and _seconds:
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(totals(), indent=1))
        os.replace(tmp, path)


atexit.register(_write_log)


def timed(name: str):
    """Decorator form of `stage`."""
    import functools

    def wrap(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            with stage(name):
                return fn(*args, **kwargs)

        return run

    return wrap
