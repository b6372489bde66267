"""Hostile and careless input: every case gives its exit code and one message, no traceback, runs
no code, never hangs, and loses nothing on disk.

Each row of CASES is: an id, how the input (or fault) is made, the command, the expected exit
code, a fragment of the message, and what must stay as it was. Every case also checks that no
traceback was printed and that every file present before the command (inputs, an earlier
release, an earlier build) is still there with the same bytes. Commands run in-process through
`m3el_lib.cli.main` (a subprocess per case would be slow on a shared machine).
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from m3el_lib.data import registry
from m3el_lib.cli import main
from m3el_lib.data.io import DatasetError, load_dataset
from m3el_lib.data.synthetic import write_synthetic_dataset

RELEASE = Path(__file__).parent / "fixtures" / "m3el_release" / "M3EL"


# ---------------------------------------------------------------- making inputs


def good_record() -> dict:
    return json.loads((RELEASE / "movies.json").read_text())[1]


def jsonl(*records: object) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def with_local_path(local: str) -> bytes:
    record = good_record()
    record["candidates"][0]["image"][2] = local
    return jsonl(record)


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def release_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(RELEASE.rglob("*")):
            zf.write(file, f"M3EL/{file.relative_to(RELEASE)}")
    return path


def release_tar(path: Path, mode: str) -> Path:
    with tarfile.open(path, mode) as tf:
        tf.add(RELEASE, arcname="M3EL")
    return path


def zip_with_corrupt_member(path: Path) -> Path:
    release_zip(path)
    data = bytearray(path.read_bytes())
    at = data.index(b"M3EL/movies.json") + len(b"M3EL/movies.json") + 40  # inside its compressed bytes
    data[at : at + 8] = b"\x00garbage"
    path.write_bytes(bytes(data))
    return path


def zip_of_zeros(path: Path, size: int = 20 << 20) -> Path:
    """A small zip whose one member inflates ~1000-fold (a 200 MB one would say the same)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("M3EL/zeros.json", "w") as member:
            block = bytes(1 << 20)
            for _ in range(size >> 20):
                member.write(block)
    return path


def zip_declaring(path: Path, declared: int) -> Path:
    """A stored member of 10 bytes whose headers declare `declared` bytes (a lying zip)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("M3EL/a.json", b"[        ]")
    data = bytearray(path.read_bytes())
    local = data.index(b"PK\x03\x04")
    struct.pack_into("<I", data, local + 22, declared)
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, declared)
    path.write_bytes(bytes(data))
    return path


def zip_with(path: Path, name: str, payload: bytes = b"[]", symlink: bool = False) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo(name)
        if symlink:
            info.external_attr = (0o120777 << 16)
        zf.writestr(info, payload)
    return path


class RunsCode:
    """Unpickling this runs code: it creates the file `marker`."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def crafted_checkpoint(path: Path, marker: Path, legacy: bool = False) -> Path:
    import torch

    payload = {"state_dict": {}, "resume": RunsCode(marker)}
    if legacy:
        path.write_bytes(pickle.dumps(payload))
    else:
        torch.save(payload, path)
    return path


def png_bomb(path: Path, width: int = 100_000, height: int = 100_000) -> Path:
    """A valid PNG header declaring 10^10 pixels, with almost no data: a decompression bomb."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return write(path, b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def dataset_with_picture(tmp: Path, replace_with: Callable[[Path], None]) -> Path:
    """A small synthetic dataset whose first candidate picture is replaced (by a FIFO, a bomb...)."""
    data = write_synthetic_dataset(tmp / "in" / "data", n=6)
    victim = sorted((data / "images").glob("Q*.png"))[0]
    victim.unlink()
    replace_with(victim)
    return data


# ---------------------------------------------------------------- the table


@dataclass
class Ctx:
    tmp: Path
    home: Path

    @property
    def inp(self) -> Path:
        return self.tmp / "in"


@dataclass
class Case:
    id: str
    make: Callable[[Ctx], list[str]]  # makes the input or fault, returns the command's arguments
    code: int
    fragment: str  # in stderr (or stdout when the command succeeds)
    unchanged: str = "inputs"  # what must stay as it was, besides every file present before
    env: dict[str, str] = field(default_factory=dict)
    after: Callable[[Ctx], None] | None = None  # further checks on disk
    replaces: str = ""  # a folder under the test's folder that the command may replace (an earlier build)


def validate(name: str, data: bytes | str, *extra: str) -> Callable[[Ctx], list[str]]:
    return lambda ctx: ["validate", str(write(ctx.inp / name, data)), *extra]


def no_marker(ctx: Ctx) -> None:
    assert not (ctx.tmp / "ran").exists(), "a crafted file ran code"


def release_still_current(ctx: Ctx) -> None:
    record = registry.read_record("m3el-release")
    assert record is not None and Path(record["path"], "movies.json").is_file()
    leftovers = [p.name for p in (ctx.home / "data" / "m3el-release").iterdir() if not p.name.startswith("r-")]
    assert leftovers == [], leftovers


def with_release(make: Callable[[Ctx], list[str]]) -> Callable[[Ctx], list[str]]:
    def both(ctx: Ctx) -> list[str]:
        (ctx.tmp / "setup").mkdir()
        registry.register("m3el-release", release_zip(ctx.tmp / "setup" / "good.zip"))
        return make(ctx)

    return both


def fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def deep(n: int = 100_000) -> str:
    return "[" * n + "]" * n


EVALUATE = ["--model", "m3el-tiny-random", "--bootstrap", "5", "--no-save", "--split", "all"]
LATIN1 = json.dumps(good_record()).replace("Casablanca", "Casablanca caf\u00e9").encode("latin-1")

CASES: list[Case] = [
    # ---- record files that are not what they claim
    Case("latin1-jsonl", validate("a.jsonl", LATIN1 + b"\n"), 1, "a.jsonl:line 1: encoding: not UTF-8"),
    Case("latin1-json-array", validate("a.json", b"[" + LATIN1 + b"]"), 1, "a.json:line 1: encoding: not UTF-8"),
    Case("json-nested-100000-deep", validate("deep.json", deep()), 1, "deep.json:line 1: json: nested too deeply"),
    Case("jsonl-nested-100000-deep", validate("deep.jsonl", deep() + "\n"), 1, "deep.jsonl:line 1: json: nested too deeply"),
    Case("empty-file", validate("empty.jsonl", b""), 1, "no usable records"),
    Case("empty-array", validate("empty.json", "[]"), 1, "no usable records"),
    Case("blank-lines-only", validate("blank.jsonl", "\n  \n\n"), 1, "no usable records"),
    Case("truncated-array", validate("cut.json", "[" + json.dumps(good_record())[:50]), 1, "cut.json:line 1: json:"),
    Case("random-bytes", validate("noise.jsonl", bytes(range(256)) * 4), 1, "noise.jsonl:line"),
    Case("record-is-a-list", validate("list.jsonl", "[1, 2]\n"), 1, "list.jsonl:line 1: record: expected an object"),
    Case("top-level-string", validate("s.json", '"hello"'), 1, "s.json:line 1: record: expected an object"),
    Case("bom-then-valid", validate("bom.jsonl", b"\xef\xbb\xbf" + jsonl(good_record())), 0, "instances   1   rejected 0"),
    Case("u2028-inside-a-string", validate("ls.jsonl", jsonl({**good_record(), "sentence": "a\u2028b Casablanca"})), 0, "instances   1   rejected 0"),
    Case("qid-with-trailing-newline", validate("q.jsonl", jsonl({**good_record(), "Qid": "Q1000012\n"})), 1,
         "q.jsonl:line 1: Qid: 'Q1000012\\n' is not a Q<digits>"),
    Case("candidate-qid-with-newline", validate("c.jsonl", jsonl({**good_record(), "candidates": [
        {**good_record()["candidates"][1], "Qid": "Q12\n"}]})), 1, "candidates[0].Qid"),
    Case("nul-in-local-path", validate("nul.jsonl", with_local_path("/M3EL/a\0b.jpg")), 1, "NUL byte"),
    Case("absolute-path-elsewhere", validate("abs.jsonl", with_local_path("/etc/passwd")), 1, "not under the release root /M3EL/"),
    Case("dotdot-path", validate("up.jsonl", with_local_path("../../etc/passwd")), 1, "escapes the data root"),
    Case("dotdot-under-release-root", validate("up2.jsonl", with_local_path("/M3EL/../../etc/passwd")), 1, "escapes the release root"),
    Case("windows-drive-path", validate("win.jsonl", with_local_path("C:\\x.jpg")), 1, "not under the release root"),
    Case("image-wrong-shape", validate("img.jsonl", jsonl({**good_record(), "image": ["only one"]})), 1, "three strings"),
    Case("empty-candidates", validate("nc.jsonl", jsonl({**good_record(), "candidates": []})), 1, "non-empty list"),
    Case("duplicate-candidate", validate("dup.jsonl", jsonl({**good_record(), "candidates": [good_record()["candidates"][1]] * 2})), 1,
         "duplicate candidate"),
    Case("python-literal-running-code", validate("evil.jsonl", "{'Qid': __import__('os').system('touch ran')}\n"), 1,
         "ast.literal_eval", after=no_marker),
    Case("json-typo-with-apostrophes-gets-no-python-advice", validate("typo.jsonl", '{"name": "Rick\'s Caf\u00e9", }\n'), 1,
         "typo.jsonl:line 1: json: Expecting property name enclosed in double quotes (column 25)"),
    Case("python-literal-records-are-read", validate("printed.jsonl", repr(good_record()) + "\n"), 0, "instances   1   rejected 0"),
    Case("lenient-array-with-syntax-error", validate("broken.json", "[" + json.dumps(good_record()) + ",}", "--lenient"), 1,
         "1 file(s) unreadable as a whole"),
    Case("lenient-keeps-raw-text", validate("mixed.jsonl", jsonl(good_record()) + b"{oops\n", "--lenient"), 2,
         "1 record(s) rejected",
         after=lambda ctx: _quarantine_has_raw_text(ctx, "{oops")),
    Case("symlinked-picture-leaving-root", lambda ctx: ["validate", str(_release_with_link(ctx, folder=False))], 1,
         "movies.json:1: candidates[0].image: local path '/M3EL/movies_candidates_images/Casablanca-Q1000011/Q1000011.jpg' "
         "leads out of the release root through a link"),
    Case("symlinked-folder-leaving-root", lambda ctx: ["validate", str(_release_with_link(ctx, folder=True))], 1,
         "leads out of the release root through a link"),
    # ---- things that are not record files at all
    Case("dev-zero-as-dataset", lambda ctx: ["validate", "/dev/zero"], 1, "/dev/zero: not a regular file or folder"),
    Case("fifo-as-dataset", lambda ctx: ["validate", str(fifo(ctx.inp / "pipe.jsonl"))], 1, "not a regular file"),
    Case("fifo-record-file-in-folder", lambda ctx: ["validate", str(fifo(ctx.inp / "d" / "a.jsonl").parent)], 1,
         "no .json or .jsonl record files"),
    Case("plain-tar-as-dataset", lambda ctx: ["validate", str(release_tar(ctx.inp / "r.tar", "w"))], 1,
         "not a .json or .jsonl record file (an archive"),
    Case("tar-gz-as-dataset", lambda ctx: ["stats", str(release_tar(ctx.inp / "r.tar.gz", "w:gz")), "--no-figures"], 1,
         "not a .json or .jsonl record file (an archive"),
    Case("missing-path", lambda ctx: ["validate", str(ctx.inp / "nowhere")], 1, "no such file or folder"),
    Case("folder-without-records", lambda ctx: ["validate", str(write(ctx.inp / "d" / "notes.txt", "x").parent)], 1,
         "no .json or .jsonl record files"),
    # ---- registering the release
    Case("register-tar-gz-release", lambda ctx: ["register", "m3el-release", str(release_tar(ctx.inp / "r.tar.gz", "w:gz"))], 0,
         "", after=release_still_current),
    Case("register-plain-tar-release", lambda ctx: ["register", "m3el-release", str(release_tar(ctx.inp / "r.tar", "w"))], 0,
         "", after=release_still_current),
    Case("register-corrupt-zip-member", with_release(lambda ctx: ["register", "m3el-release", str(zip_with_corrupt_member(ctx.inp / "bad.zip"))]),
         1, "corrupt", "the earlier release and its registration", after=release_still_current),
    Case("register-zip-of-zeros", with_release(lambda ctx: ["register", "m3el-release", str(zip_of_zeros(ctx.inp / "zeros.zip"))]),
         1, "would expand", "the earlier release and its registration", after=release_still_current),
    Case("register-zip-declaring-200MB", with_release(lambda ctx: ["register", "m3el-release", str(zip_declaring(ctx.inp / "lie.zip", 200_000_000))]),
         1, "would expand", "the earlier release and its registration", after=release_still_current),
    Case("register-over-size-limit", with_release(lambda ctx: ["register", "m3el-release", str(release_zip(ctx.inp / "big.zip"))]),
         1, "M3EL_MAX_UNPACKED_BYTES", "the earlier release and its registration", env={"M3EL_MAX_UNPACKED_BYTES": "1000"},
         after=release_still_current),
    Case("register-zip-escaping", lambda ctx: ["register", "m3el-release", str(zip_with(ctx.inp / "up.zip", "../../outside.json"))], 1,
         "outside the release folder"),
    Case("register-zip-with-symlink", lambda ctx: ["register", "m3el-release", str(zip_with(ctx.inp / "ln.zip", "M3EL/x.json", b"/etc/passwd", symlink=True))],
         1, "link or special file"),
    Case("register-garbage-named-zip", lambda ctx: ["register", "m3el-release", str(write(ctx.inp / "junk.zip", os.urandom(300)))], 1,
         "not a .json or .jsonl record file (an archive"),
    Case("register-invalid-records-keeps-old", with_release(lambda ctx: ["register", "m3el-release", str(_zip_bytes(ctx.inp / "inv.zip", "M3EL/a.json", "[{"))]),
         1, "no usable records", "the earlier release and its registration",
         after=lambda ctx: (release_still_current(ctx), _report_survives(ctx))),
    Case("register-folder-without-records", lambda ctx: ["register", "m3el-release", str(write(ctx.inp / "d" / "x.txt", "x").parent)], 1,
         "no .json or .jsonl record files"),
    # ---- checkpoints
    Case("evaluate-crafted-checkpoint", lambda ctx: ["evaluate", "--data", str(RELEASE), "--checkpoint",
                                                     str(crafted_checkpoint(ctx.inp / "evil.pt", ctx.tmp / "ran")), *EVALUATE],
         1, "refused: not a weights-only checkpoint", after=no_marker),
    Case("evaluate-legacy-pickle-checkpoint", lambda ctx: ["evaluate", "--data", str(RELEASE), "--checkpoint",
                                                           str(crafted_checkpoint(ctx.inp / "evil.pkl", ctx.tmp / "ran", legacy=True)), *EVALUATE],
         1, "evil.pkl", after=no_marker),
    Case("evaluate-garbage-checkpoint", lambda ctx: ["evaluate", "--data", str(RELEASE), "--checkpoint",
                                                     str(write(ctx.inp / "junk.pt", os.urandom(2048))), *EVALUATE],
         1, "junk.pt: not a readable checkpoint"),
    Case("resume-crafted-checkpoint", lambda ctx: ["train", "--resume", str(crafted_checkpoint(ctx.inp / "last.pt", ctx.tmp / "ran")),
                                                   "--set", f"output_dir={ctx.tmp / 'run'}"],
         1, "refused: not a weights-only checkpoint", after=no_marker),
    Case("resume-garbage-checkpoint", lambda ctx: ["train", "--resume", str(write(ctx.inp / "last.pt", b"PK\x03\x04 not really")),
                                                   "--set", f"output_dir={ctx.tmp / 'run'}"],
         1, "last.pt: not a readable checkpoint"),
    Case("resume-from-dev-zero", lambda ctx: ["train", "--resume", "/dev/zero", "--set", f"output_dir={ctx.tmp / 'run'}"],
         1, "/dev/zero: not a regular file"),
    # ---- pictures
    Case("decompression-bomb-in-stats", lambda ctx: ["stats", str(dataset_with_picture(ctx.tmp, png_bomb)), "--out", str(ctx.tmp / "out")],
         0, "6 instances"),
    Case("fifo-picture-in-stats", lambda ctx: ["stats", str(dataset_with_picture(ctx.tmp, fifo)), "--out", str(ctx.tmp / "out")],
         0, "6 instances"),
    Case("fifo-picture-in-evaluate", lambda ctx: ["evaluate", "--data", str(dataset_with_picture(ctx.tmp, fifo)), *EVALUATE],
         0, "Acc"),
    # ---- build-dataset --out
    Case("build-into-a-thesis-folder", lambda ctx: ["build-dataset", "--out", str(write(ctx.inp / "thesis" / "chapter1.tex", "years").parent)],
         1, "not empty", "the folder and its files"),
    Case("build-into-a-file", lambda ctx: ["build-dataset", "--out", str(write(ctx.inp / "file.txt", "x"))], 1, "a file, not a folder"),
    Case("build-into-dot", lambda ctx: _chdir_and(ctx, ["build-dataset", "--out", "."]), 1, "not empty",
         "the folder; no '..work' left", after=lambda ctx: _nothing_beside(ctx.inp)),
    Case("build-into-empty-dot", lambda ctx: _chdir_empty(ctx, ["build-dataset", "--out", ".", "--per-topic", "2"]), 0,
         "instances", "the folder's parent: nothing left beside it", after=lambda ctx: _only_the_build(ctx.inp)),
    Case("rebuild-over-an-earlier-build", lambda ctx: _earlier_build(ctx), 0, "instances", "the parent",
         after=lambda ctx: _only_the_build(ctx.inp), replaces="in/built"),
    Case("build-while-another-builds", lambda ctx: _locked_build(ctx), 1, "already in progress", "the folder"),
]


def _release_with_link(ctx: Ctx, folder: bool) -> Path:
    """A copy of the release with one picture (or its whole folder) a link to a file outside it."""
    copy = ctx.inp / "M3EL"
    shutil.copytree(RELEASE, copy)
    outside = write(ctx.inp / "outside" / "Q1000011.jpg", (RELEASE / "movies_candidates_images" / "Casablanca-Q1000011" / "Q1000011.jpg").read_bytes())
    target = copy / "movies_candidates_images" / "Casablanca-Q1000011"
    if folder:
        shutil.rmtree(target)
        target.symlink_to(outside.parent)
    else:
        (target / "Q1000011.jpg").unlink()
        (target / "Q1000011.jpg").symlink_to(outside)
    return copy


def _report_survives(ctx: Ctx) -> None:
    (row,) = [json.loads(line) for line in (ctx.home / "quarantine" / "m3el-release.staging.quarantine.jsonl").read_text().splitlines()]
    assert row["whole_file"] and "json:" in row["problems"][0]


def _zip_bytes(path: Path, name: str, text: str) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(name, text)
    return path


def _quarantine_has_raw_text(ctx: Ctx, text: str) -> None:
    (report,) = (ctx.home / "quarantine").glob("*.jsonl")
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    assert rows == [{"file": str(ctx.inp / "mixed.jsonl"), "where": "line 2", "problems": rows[0]["problems"], "raw_text": text}]


def _chdir_and(ctx: Ctx, argv: list[str]) -> list[str]:
    write(ctx.inp / "project" / "notes.md", "mine")
    os.chdir(ctx.inp / "project")
    return argv


def _nothing_beside(folder: Path) -> None:
    assert sorted(p.name for p in folder.iterdir()) == ["project"]
    assert sorted(p.name for p in (folder / "project").iterdir()) == ["notes.md"]


def _chdir_empty(ctx: Ctx, argv: list[str]) -> list[str]:
    (ctx.inp / "built").mkdir()
    os.chdir(ctx.inp / "built")
    return argv


def _earlier_build(ctx: Ctx) -> list[str]:
    argv = ["build-dataset", "--out", str(ctx.inp / "built"), "--per-topic", "2"]
    assert main(argv + ["--seed", "1"]) == 0
    return argv


def _only_the_build(parent: Path) -> None:
    assert [p.name for p in parent.iterdir()] == ["built"]  # no .work, .old, .lock or staging beside it
    assert {p.name for p in (parent / "built").iterdir()} >= {".m3el-build", "manifest.json", "train.jsonl"}


def _locked_build(ctx: Ctx) -> list[str]:
    from m3el_lib.fsutil import exclusive_lock

    out = ctx.inp / "new"
    lock = exclusive_lock(out.parent / f".{out.name}.lock", "a test build")
    lock.__enter__()
    ctx.__dict__["held"] = lock
    return ["build-dataset", "--out", str(out)]


def snapshot(*roots: Path) -> dict[str, str]:
    """sha256 of every regular file under the roots (FIFOs and devices are never opened)."""
    found = {}
    for root in roots:
        for path in sorted(root.rglob("*")) if root.exists() else []:
            if path.is_symlink() or not path.is_file() or path.name.endswith(".lock"):
                continue  # a lock file is the test's own (see _locked_build)
            found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def test_the_table_is_big_enough():
    assert len(CASES) >= 40 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_case(case: Case, tmp_path, isolated_home, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    ctx = Ctx(tmp_path, isolated_home)
    ctx.inp.mkdir()
    argv = case.make(ctx)
    for key, value in case.env.items():  # after the set-up, which may register a release first
        monkeypatch.setenv(key, value)
    before = snapshot(tmp_path, isolated_home)
    capsys.readouterr()
    try:
        code = main(argv)
    finally:
        if "held" in ctx.__dict__:
            ctx.__dict__["held"].__exit__(None, None, None)
    out, err = capsys.readouterr()
    assert code == case.code, f"exit {code}; stderr:\n{err}"
    assert "Traceback" not in err and "Traceback" not in out
    assert case.fragment in (err if case.code else out + err), f"{case.fragment!r} not in:\n{err}\n{out}"
    if case.code == 1:
        assert len([line for line in err.splitlines() if line.strip()]) <= 3, err  # a message, not a dump
    after = snapshot(tmp_path, isolated_home)
    replaceable = str(tmp_path / case.replaces) + os.sep if case.replaces else None
    lost = {path for path, digest in before.items()
            if after.get(path) != digest and not (replaceable and path.startswith(replaceable))}
    assert not lost, f"changed or removed: {sorted(lost)}"
    if case.after is not None:
        case.after(ctx)


# ---------------------------------------------------------------- the loader on anything


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["Qid", "name", "description", "sentence", "image", "candidates", "split", "kb",
                         "gold_index", "topic", "provenance", "x"]) | st.text(max_size=5), children, max_size=6),
    max_leaves=30,
)


def _load_or_own_error(path: Path, lenient: bool) -> None:
    try:
        load_dataset(path, strict=not lenient, quarantine_path=path.with_suffix(".q"))
    except DatasetError:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400), suffix=st.sampled_from([".json", ".jsonl"]), lenient=st.booleans())
def test_loader_on_random_bytes_raises_only_its_own_error(tmp_path, data, suffix, lenient):
    _load_or_own_error(write(tmp_path / f"r{suffix}", data), lenient)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=JSON_VALUES, as_lines=st.booleans(), lenient=st.booleans())
def test_loader_on_random_json_raises_only_its_own_error(tmp_path, value, as_lines, lenient):
    if as_lines:
        items = value if isinstance(value, list) else [value]
        path = write(tmp_path / "r.jsonl", "\n".join(json.dumps(v) for v in items))
    else:
        path = write(tmp_path / "r.json", json.dumps(value))
    _load_or_own_error(path, lenient)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=JSON_VALUES)
def test_loader_on_a_mutated_real_record_raises_only_its_own_error(tmp_path, value):
    record = good_record()
    key = sorted(record)[hash(json.dumps(value, sort_keys=True)) % len(record)]
    record[key] = value
    _load_or_own_error(write(tmp_path / "m.jsonl", jsonl(record)), lenient=False)


# ---------------------------------------------------------------- faults outside the command line


def test_outputs_are_readable_under_the_users_umask(tmp_path):
    from m3el_lib.fsutil import atomic_write_text

    old = os.umask(0o027)
    try:
        path = atomic_write_text(tmp_path / "shared.csv", "a,b\n")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o640  # group may read: not mkstemp's 0600


def test_an_unreadable_training_cache_is_rebuilt_with_a_warning_naming_it(tmp_path):
    import torch

    from m3el_lib.training.data import cached

    path = write(tmp_path / "images.pt", b"not a tensor file")
    calls = []

    def compute():
        calls.append(1)
        return torch.zeros(2, 3), set()

    with pytest.warns(UserWarning, match=str(path)):
        inputs, failed = cached(path, ["a", "b"], compute)
    assert calls == [1] and inputs.shape == (2, 3)
    again, _ = cached(path, ["a", "b"], compute)  # rebuilt on disk: read back, not recomputed
    assert calls == [1] and torch.equal(again, inputs)


def test_an_unreadable_embedding_cache_is_rebuilt_with_a_warning_naming_it(tmp_path, caplog):
    from m3el_lib.models.embedding_cache import EmbeddingCache
    from m3el_lib.models.loading import TINY_MODEL, load_model

    cache = EmbeddingCache(load_model(TINY_MODEL), weights_id="w" * 16, data_checksum="d" * 16, root=tmp_path / "cache")
    path = write(cache.path("entity", "T"), b"\x80\x02garbage")
    with caplog.at_level("WARNING"):
        embedded = cache.texts("entity", ["Casablanca", "Thriller"])
    assert embedded.shape[0] == 2 and str(path) in caplog.text and "rebuilt" in caplog.text
    assert EmbeddingCache(None, weights_id="w" * 16, data_checksum="d" * 16, root=tmp_path / "cache").texts(
        "entity", ["Casablanca", "Thriller"]).allclose(embedded)  # the rebuilt file reads back


def test_a_bug_prints_its_traceback_and_where_to_report_it(monkeypatch, capsys):
    import m3el_lib.cli as cli

    def broken(args):
        raise ZeroDivisionError("a bug of ours")

    monkeypatch.setattr(cli, "run_info", broken)
    assert main(["info"]) == 70
    err = capsys.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError: a bug of ours" in err and err.strip().endswith(cli.REPORT_LINE)


def test_an_expected_failure_deep_inside_is_one_line_naming_the_file(monkeypatch, tmp_path, capsys):
    import m3el_lib.cli as cli

    def unwritable(args):
        raise PermissionError(13, "Permission denied", str(tmp_path / "results" / "x.csv"))

    monkeypatch.setattr(cli, "run_info", unwritable)
    assert main(["info"]) == 1
    assert capsys.readouterr().err == f"m3el info: {tmp_path / 'results' / 'x.csv'}: Permission denied\n"
