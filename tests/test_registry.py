"""The download registry: resumable verified downloads, clear offline errors, manual registration."""
from __future__ import annotations

import hashlib
import io
import json
import urllib.error
import zipfile
from dataclasses import replace

import pytest

from m3el_lib.data import registry
from m3el_lib.data.synthetic import write_synthetic_dataset

PAYLOAD = bytes(range(256)) * 40


class FakeResponse(io.BytesIO):
    def __init__(self, data: bytes, status: int = 200, content_type: str = "application/octet-stream"):
        super().__init__(data)
        self.status = status
        self.headers = {"Content-Type": content_type}


@pytest.fixture()
def test_entry(monkeypatch):
    item = replace(registry.REGISTRY["clip-vit-b-32-openai"], name="test-file", file_name="w.bin",
                   sha256=hashlib.sha256(PAYLOAD).hexdigest())
    monkeypatch.setitem(registry.REGISTRY, "test-file", item)
    return item


def test_fetch_verifies_and_records(test_entry):
    path = registry.fetch("test-file", opener=lambda req: FakeResponse(PAYLOAD))
    assert path.read_bytes() == PAYLOAD
    assert registry.require("test-file") == path
    record = json.loads(registry.record_path("test-file").read_text())
    assert record["verified_by"] == "sha256"


def test_fetch_resumes_from_a_partial_file(test_entry):
    partial = registry.target_path("test-file").with_name("w.bin.part")
    partial.parent.mkdir(parents=True)
    partial.write_bytes(PAYLOAD[:1000])
    seen = {}

    def opener(request):
        seen["range"] = request.get_header("Range")
        return FakeResponse(PAYLOAD[1000:], status=206)

    assert registry.fetch("test-file", opener=opener).read_bytes() == PAYLOAD
    assert seen["range"] == "bytes=1000-"


def test_server_ignoring_range_restarts_cleanly(test_entry):
    partial = registry.target_path("test-file").with_name("w.bin.part")
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"garbage")
    assert registry.fetch("test-file", opener=lambda req: FakeResponse(PAYLOAD, status=200)).read_bytes() == PAYLOAD


def test_checksum_mismatch_keeps_nothing(test_entry):
    with pytest.raises(registry.ChecksumMismatch, match="expected"):
        registry.fetch("test-file", opener=lambda req: FakeResponse(b"wrong"))
    assert registry.local_copy("test-file") is None
    assert not registry.target_path("test-file").exists()


def test_offline_error_says_what_where_and_how(test_entry):
    def offline(request):
        raise urllib.error.URLError("Temporary failure in name resolution")

    with pytest.raises(registry.DownloadUnavailable) as err:
        registry.fetch("test-file", opener=offline)
    message = str(err.value)
    assert "w.bin" in message and test_entry.url in message
    assert str(registry.target_path("test-file")) in message
    assert "m3el register" in message


def test_web_page_instead_of_file_is_refused(test_entry):
    with pytest.raises(registry.DownloadUnavailable, match="web page"):
        registry.fetch("test-file", opener=lambda req: FakeResponse(b"<html>", content_type="text/html"))


def test_require_names_the_missing_release():
    with pytest.raises(registry.DownloadUnavailable, match="129olsROPDyK8Ziz3x99B-LHCXyZpUaG9"):
        registry.require("m3el-release")


def test_register_checks_sha256(test_entry, tmp_path):
    good = tmp_path / "good.bin"
    good.write_bytes(PAYLOAD)
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"nope")
    with pytest.raises(registry.ChecksumMismatch):
        registry.register("test-file", bad)
    assert registry.register("test-file", good).read_bytes() == PAYLOAD


def test_register_release_archive_validates_its_format(tmp_path):
    data = write_synthetic_dataset(tmp_path / "release", n=6)
    archive = tmp_path / "m3el.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in data.rglob("*"):
            zf.write(file, f"M3EL/{file.relative_to(data)}")
    path = registry.register("m3el-release", archive)
    assert (path / "train.jsonl").exists()
    record = json.loads(registry.record_path("m3el-release").read_text())
    assert record["verified_by"] == "format" and record["instances"] == 6


def test_register_rejects_archive_escaping_its_folder(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../outside.json", "[]")
    with pytest.raises(ValueError, match="outside"):
        registry.register("m3el-release", archive)


def test_register_refuses_files_that_are_not_m3el(tmp_path):
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.json").write_text(json.dumps([{"hello": 1}]))
    with pytest.raises(ValueError, match="no usable records"):
        registry.register("m3el-release", junk)
