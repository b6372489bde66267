"""environment.yml (for conda users) installs exactly the pins of requirements.txt."""
from __future__ import annotations

import re

from m3el_lib.config import PROJECT_ROOT


def pins(lines: list[str]) -> list[str]:
    return [line for line in lines if line and not line.startswith("#")]


def test_environment_yml_matches_requirements():
    requirements = pins([l.strip() for l in (PROJECT_ROOT / "requirements.txt").read_text().splitlines()])
    env_lines = (PROJECT_ROOT / "environment.yml").read_text().splitlines()
    pip_section = [re.sub(r"^\s*-\s*", "", l) for l in env_lines[env_lines.index("  - pip:") + 1 :] if l.strip()]
    assert sorted(p for p in pip_section if p != "-e .") == sorted(requirements)
    assert "-e ." in pip_section
    assert "  - python=3.11" in env_lines


def test_every_requirement_is_pinned_exactly():
    requirements = pins([l.strip() for l in (PROJECT_ROOT / "requirements.txt").read_text().splitlines()])
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][0-9A-Za-z.+]*", r) for r in requirements), requirements
    assert "torch==2.14.1" in requirements and "torchvision==0.29.1" in requirements
