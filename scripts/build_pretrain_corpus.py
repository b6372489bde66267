"""Build the sample CLIP's pretraining corpus `data/pretrain_corpus/`: picture-caption pairs that
Debian packages ship, disjoint from M³EL-mini.

One command (it needs `apt-get download`, i.e. the Debian registry, and rebuilds M³EL-mini from
the committed snapshot when that is out of date):

    .venv/bin/python scripts/build_pretrain_corpus.py            # downloads the .debs into a temp folder
    .venv/bin/python scripts/build_pretrain_corpus.py --src DIR  # or reuse .debs already in DIR

Re-run it whenever `data/snapshot/` changes: the exclusions are computed against the snapshot and
the M³EL-mini built from it, and `tests/test_pretrain_corpus.py` fails until the corpus is rebuilt.

Sources (versions pinned below, their sha256 recorded in `corpus.json`) and their captions, all
real text from the package, never a template filled with names from M³EL-mini:

* `openclipart-png`: the clip's file name (title words, usually followed by the author's name)
  and its own folder ("bison leif lodahl (mammals)"). Generated backgrounds and patterns, the
  1,378 near-identical stars of `shapes/stars` and the user-interface icons are left out;
* `tuxpaint-stamps-default`: the English description beside each PNG stamp ("A red kangaroo.");
* `fonts-noto-color-emoji`: each single-code-point emoji the font draws, rendered from its
  bitmaps, with its Unicode character name in lower case ("dog face"); and each emoji *sequence*
  it draws as one picture (flags, keycaps, ZWJ sequences such as "woman scientist"; skin-tone
  variants left out), captioned with its CLDR name from Unicode's `emoji-test.txt` (Debian
  `unicode-data`) in lower case ("flag: peru");
* `fonts-symbola`: the same Unicode emoji (code points with the `Emoji` property of Unicode's
  `emoji-data.txt`) as Symbola draws them, black line drawings, with their Unicode character names;
* `kgeography-data`: every flag a map file lists, captioned "flag of <division>", and
  every map, captioned "map of <map>: <its divisions>" (names as the map files spell them);
* `gcompris-qt-data`: the pictures of GCompris's activities, read from its Qt resource bundles
  as the snapshot reads them (`gcompris_pictures`: the same bundles of puzzle pieces and
  backdrops left out), captioned by the words of their file name, numbers dropped, and their
  folder where it says more than the activity's layout: "juche tower (monuments)", "drum kit".
  Names under three letters ("wr", a chess piece) are left out. SVG pictures are rendered with
  cairosvg, as the snapshot renders them (`.venv/bin/pip install cairosvg==2.9.1`).

Exclusions, in this order, each counted in `corpus.json`:
1. a picture whose source file a snapshot picture uses (same package folder and path), or whose
   source bytes equal such a file's, or that the snapshot cuts one of its pictures from (a
   KGeography map it recolours for a division), or an emoji whose code point the snapshot draws
   (in any font); for GCompris, the member of a resource bundle the snapshot uses (the bundle's
   other pictures are separate files);
2. a caption that names the gold entity of any M³EL-mini *test* instance (its normalised name
   as whole words; test entities are disjoint from training ones, the split is by entity);
3. a picture identical (sha256 of our JPEG) or near-identical (16x16 grey, mirrored too: mean
   difference under 6 of 255) to any M³EL-mini or snapshot picture; or identical, or the same to
   the eye (under 2 of 255), to a picture already in the corpus.
A deterministic 5% (by sha256) is marked `heldout`: never trained on, used for zero-shot checks.

Output: `pairs.jsonl.gz` (one pair a line: sha256, caption, source, source_path, licence, shard,
split), `shards/pictures-NN.zip` (stored JPEGs named `<sha256>.jpg`, RGB on white, at most 112 px a side),
`corpus.json` (inputs, parameters, counts), `SOURCES.md`, `LICENSES/`.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
import unicodedata
import zipfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from build_snapshot import gcompris_file, render_svg_bytes  # noqa: E402
from build_snapshot import to_jpeg as snapshot_jpeg  # noqa: E402
from snapshot_sources import debian_licence, gcompris_pictures, picture_words  # noqa: E402
from m3el_lib.fsutil import atomic_write_bytes, atomic_write_json, atomic_write_text, sha256_bytes, swap_folder_into_place  # noqa: E402
from m3el_lib.models.pretrain_corpus import (  # noqa: E402
    CORPUS_DIR,
    HELDOUT_PERCENT,
    fingerprints,
    is_bundle_member,
    is_heldout,
    names_in,
    near_duplicate_of,
    snapshot_sources,
    test_entity_names,
    uses_snapshot_source,
)

DEBIAN = {
    "openclipart-png": "1:0.18+dfsg-19",
    "tuxpaint-stamps-default": "2022.06.04-1",
    "fonts-noto-color-emoji": "2.042-0+deb12u1",
    "kgeography-data": "4:22.12.3-1",
    "fonts-symbola": "2.60-1.1",
    "gcompris-qt-data": "3.1-2",  # the snapshot's version: its exclusions name the same bundle members
    "unicode-data": "15.0.0-1",  # captions only: the CLDR names of emoji sequences
}
CONTENT_ROOTS = {  # where each package keeps its pictures; paths in the corpus are relative to it
    "openclipart": ("openclipart-png", "usr/share/openclipart/png"),
    "tuxpaint": ("tuxpaint-stamps-default", "usr/share/tuxpaint/stamps"),
    "noto-emoji": ("fonts-noto-color-emoji", "usr/share/fonts/truetype/noto"),
    "kgeography": ("kgeography-data", "usr/share/kgeography"),
    "symbola": ("fonts-symbola", "usr/share/fonts/truetype/ancient-scripts"),
    "gcompris": ("gcompris-qt-data", "usr/share/gcompris-qt/rcc"),  # paths: "<bundle>.rcc#<path inside it>"
}
TEXT_INPUTS = {"unicode": ("unicode-data", "usr/share/unicode/emoji")}  # no pictures: caption text only
LICENCES = {
    "openclipart": "Public domain (Open Clip Art Library, Debian openclipart-png)",
    "tuxpaint": "GPL-2.0-or-later (Tux Paint stamps, Debian tuxpaint-stamps-default)",
    "noto-emoji": "SIL Open Font License 1.1 (Noto Color Emoji, Debian fonts-noto-color-emoji)",
    "kgeography": "GPL-2.0-or-later (KGeography maps and flags, Debian kgeography-data)",
    "symbola": "Free for any use (Symbola font by George Douros, Debian fonts-symbola)",
    "gcompris": "Per file, from debian/copyright (GCompris, Debian gcompris-qt-data)",
}
# Emoji sequence names: Unicode data files, Unicode License v3 (Debian unicode-data).
# Left out: generated backgrounds and patterns, 1,378 near-identical stars, and user-interface icons
# (abstract glyphs named after program actions, "document save").
OPENCLIPART_SKIPPED = ("shapes/stars/", "special/gradients/", "special/patterns/", "computer/icons/")
EMOJI_SKIPPED_CATEGORIES = {"Mn", "Me", "Cf", "Sk", "Zs", "Nd", "Po", "Sm"}
EMOJI_SIZE = 109  # the one bitmap size Noto Color Emoji carries
MAX_SIDE = 112
JPEG_QUALITY = 75
SHARD_PAIRS = 2000
# Within the corpus only pictures that are the same to the eye are dropped (clip-art variants in
# other colours stay); against M³EL-mini the library's wider margin applies.
SAME_PICTURE_GREY = 2.0
Image.MAX_IMAGE_PIXELS = None  # inputs are checksummed Debian packages; some clips are posters


@dataclass
class Candidate:
    """A picture-caption pair before the exclusions."""

    origin: str
    source_path: str  # relative to the package's content root
    caption: str
    load: Callable[[], Image.Image]
    licence: str = ""  # when the source's licence is per file; else LICENCES[origin]


# ---------------------------------------------------------------- inputs


def fetch_debs(src: Path | None, work: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for name, version in DEBIAN.items():
        pattern = f"{name}_*.deb"
        hits = [hit for hit in sorted(src.glob(pattern)) if hit.is_file()] if src else []  # a dangling link is no .deb
        if not hits:
            subprocess.run(["apt-get", "download", f"{name}={version}"], cwd=work, check=True)
            hits = sorted(work.glob(pattern))
        if not hits:
            raise FileNotFoundError(f"{name}: no {pattern} after apt-get download")
        found[name] = hits[0]
    return found


def debian_copyright(work: Path, package: str) -> Path:
    """The `debian/copyright` an unpacked package ships (licences, per file for some)."""
    return work / package / "usr/share/doc" / package / "copyright"


def unpack(debs: dict[str, Path], work: Path) -> dict[str, Path]:
    roots = {}
    for origin, (package, content) in {**CONTENT_ROOTS, **TEXT_INPUTS}.items():
        target = work / package
        if not target.exists():
            subprocess.run(["dpkg", "-x", str(debs[package]), str(target)], check=True)
        roots[origin] = target / content
    return roots


# ---------------------------------------------------------------- candidates per source


def _words(text: str) -> str:
    return " ".join(w for w in re.split(r"[_\-\s]+", text) if w)


def openclipart(root: Path) -> list[Candidate]:
    found = []
    for path in sorted(root.rglob("*.png")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(OPENCLIPART_SKIPPED):
            continue
        title = re.sub(r"\s*\d+$", "", _words(PurePosixPath(rel).stem)).strip()
        folder = _words(PurePosixPath(rel).parent.name)  # the clip's own category (its parents are broad)
        if title:
            found.append(Candidate("openclipart", rel, f"{title} ({folder})", lambda p=path: Image.open(p)))
    return found


def tuxpaint(root: Path) -> list[Candidate]:
    found = []
    for path in sorted(root.rglob("*.png")):
        text = path.with_suffix(".txt")
        if not text.exists():
            continue
        first = text.read_text(encoding="utf-8", errors="replace").splitlines()
        caption = first[0].strip() if first else ""
        if caption and "=" not in caption.split(" ")[0]:
            found.append(Candidate("tuxpaint", path.relative_to(root).as_posix(), caption, lambda p=path: Image.open(p)))
    return found


def emoji(root: Path) -> list[Candidate]:
    from fontTools.ttLib import TTFont

    font_path = root / "NotoColorEmoji.ttf"
    codepoints = sorted(TTFont(font_path).getBestCmap())
    font = ImageFont.truetype(str(font_path), EMOJI_SIZE)
    found = []
    for code in codepoints:
        char = chr(code)
        name = unicodedata.name(char, "")
        if code < 0x2000 or not name or unicodedata.category(char) in EMOJI_SKIPPED_CATEGORIES:
            continue
        if "REGIONAL INDICATOR" in name or "EMOJI MODIFIER" in name or name.startswith(("TAG ", "VARIATION SELECTOR")):
            continue
        found.append(Candidate("noto-emoji", f"NotoColorEmoji.ttf#U+{code:04X}", name.lower(), lambda c=char: _render_emoji(font, c)))
    return found


def emoji_sequences(root: Path, unicode_root: Path) -> list[Candidate]:
    """Emoji sequences Noto Color Emoji draws as one picture, named as emoji-test.txt names them.

    Single code points are `emoji()`'s; skin-tone variants (the same picture in five tones) are left
    out; a sequence the font does not join into one glyph (wider than one emoji) is skipped."""
    font = ImageFont.truetype(str(root / "NotoColorEmoji.ttf"), EMOJI_SIZE, layout_engine=ImageFont.Layout.RAQM)
    one_wide = font.getbbox("\U0001F600")[2]
    found = []
    for codes, name in _emoji_test(unicode_root / "emoji-test.txt"):
        if len([c for c in codes if c != 0xFE0F]) < 2 or "skin tone" in name:
            continue
        text = "".join(map(chr, codes))
        if font.getbbox(text)[2] > 1.5 * one_wide:
            continue
        path = "NotoColorEmoji.ttf#" + "_".join(f"U+{c:04X}" for c in codes)
        found.append(Candidate("noto-emoji", path, name.lower(), lambda t=text: _render_emoji(font, t)))
    return found


def _emoji_test(path: Path) -> list[tuple[list[int], str]]:
    """(code points, CLDR name) of every fully-qualified emoji listed in Unicode's emoji-test.txt."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        fields, _, comment = line.partition("#")
        if "; fully-qualified" not in fields:
            continue
        codes = [int(c, 16) for c in fields.split(";")[0].split()]
        name = comment.split(None, 2)[2].strip()  # "<emoji> E<version> <name>"
        rows.append((codes, name))
    return rows


def symbola(root: Path, unicode_root: Path) -> list[Candidate]:
    """Every code point with Unicode's `Emoji` property that Symbola draws, by its character name."""
    from fontTools.ttLib import TTFont

    font_path = root / "Symbola_hint.ttf"
    drawn = TTFont(font_path).getBestCmap()
    font = ImageFont.truetype(str(font_path), EMOJI_SIZE)
    found = []
    for code in sorted(_emoji_property(unicode_root / "emoji-data.txt") & set(drawn)):
        char = chr(code)
        name = unicodedata.name(char, "")
        if code < 0x2000 or not name or unicodedata.category(char) in EMOJI_SKIPPED_CATEGORIES or "REGIONAL INDICATOR" in name:
            continue
        found.append(Candidate("symbola", f"Symbola_hint.ttf#U+{code:04X}", name.lower(), lambda c=char: _render_glyph(font, c)))
    return found


def _emoji_property(path: Path) -> set[int]:
    codes: set[int] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.partition("#")[0].split(";")
        if len(fields) != 2 or fields[1].strip() != "Emoji":
            continue
        first, _, last = fields[0].strip().partition("..")
        codes.update(range(int(first, 16), int(last or first, 16) + 1))
    return codes


def _render_glyph(font: ImageFont.FreeTypeFont, char: str) -> Image.Image:
    canvas = Image.new("RGBA", (EMOJI_SIZE * 2, EMOJI_SIZE * 2), (255, 255, 255, 0))
    ImageDraw.Draw(canvas).text((EMOJI_SIZE // 2, EMOJI_SIZE // 2), char, font=font, fill=(0, 0, 0, 255))
    return canvas


def _render_emoji(font: ImageFont.FreeTypeFont, char: str) -> Image.Image:
    canvas = Image.new("RGBA", (EMOJI_SIZE * 2, EMOJI_SIZE * 2), (255, 255, 255, 0))
    ImageDraw.Draw(canvas).text((EMOJI_SIZE // 2, EMOJI_SIZE // 2), char, font=font, embedded_color=True)
    return canvas


def kgeography(root: Path) -> list[Candidate]:
    found, flags_seen = [], set()
    for map_file in sorted(root.glob("*.kgm")):
        tree = ET.parse(map_file).getroot()
        map_name = (tree.findtext("name") or "").strip()
        divisions_name = (tree.findtext("divisionsName") or "").strip()
        picture = root / (tree.findtext("mapFile") or "")
        if map_name and picture.is_file():
            caption = f"map of {map_name}: {divisions_name.lower()}" if divisions_name else f"map of {map_name}"
            found.append(Candidate("kgeography", picture.relative_to(root).as_posix(), caption, lambda p=picture: Image.open(p)))
        for division in tree.iter("division"):
            flag, name = division.findtext("flag"), (division.findtext("name") or "").strip()
            flag_path = root / "flags" / flag if flag else None
            if not flag_path or not name or not flag_path.is_file() or flag in flags_seen:
                continue
            flags_seen.add(flag)
            found.append(Candidate("kgeography", f"flags/{flag}", f"flag of {name}", lambda p=flag_path: Image.open(p)))
    return found


def gcompris(root: Path, copyright_text: str) -> list[Candidate]:
    """GCompris's activity pictures (the snapshot's reading of its bundles), by file name and folder."""
    found = []
    for bundle, inner in gcompris_pictures(root):
        caption = gcompris_caption(inner)
        if len(caption.partition(" (")[0]) < 3:
            continue
        licence = debian_licence(copyright_text, inner.removeprefix("gcompris/")) or "see debian/copyright"
        found.append(Candidate("gcompris", f"{bundle}#{inner}", caption, lambda b=bundle, i=inner: _gcompris_image(root, b, i),
                               f"{licence} (GCompris, Debian gcompris-qt-data)"))
    return found


def gcompris_caption(inner: str) -> str:
    """"…/categorization/resource/images/monuments/jucheTower.webp" -> "juche tower (monuments)"."""
    words = [re.sub(r"\d+$", "", word) for word in picture_words(inner).split()]
    caption = " ".join(word for word in words if len(word) > 1)
    folder = PurePosixPath(inner).parent.name
    if folder not in ("resource", "images") and not folder.startswith("words"):  # the activity's layout, not the picture
        caption += f" ({_words(folder)})"
    return caption.strip()


def _gcompris_image(root: Path, bundle: str, inner: str) -> Image.Image:
    data = gcompris_file(root, f"{bundle}#{inner}")
    return render_svg_bytes(data) if inner.lower().endswith(".svg") else Image.open(io.BytesIO(data))


# ---------------------------------------------------------------- pictures


def to_jpeg(image: Image.Image) -> bytes:
    """RGB on white, the transparent margin trimmed, at most MAX_SIDE px a side, no metadata
    (the snapshot's conversion, at the corpus's size and quality)."""
    return snapshot_jpeg(image, max_side=MAX_SIDE, quality=JPEG_QUALITY)


# ---------------------------------------------------------------- build


def used_source_bytes(roots: dict[str, Path], used: set[tuple[str, str]]) -> set[str]:
    """sha256 of every source file the snapshot uses that is in one of our packages."""
    digests = set()
    for origin, path in used:
        data = source_bytes(roots, origin, path)
        if data is not None:
            digests.add(hashlib.sha256(data).hexdigest())
    return digests


def source_bytes(roots: dict[str, Path], origin: str, path: str) -> bytes | None:
    """The bytes of a source file under its package's content root (a bundle member's for
    "<bundle>.rcc#<inner>"), or None when there is no such file."""
    root = roots.get(origin)
    if root is None:
        return None
    if is_bundle_member(path):
        try:
            return gcompris_file(root, path)
        except (OSError, KeyError, ValueError):
            return None
    file = root / path
    return file.read_bytes() if file.is_file() else None


def build(src: Path | None, out: Path, work: Path) -> dict:
    from m3el_lib import config
    from m3el_lib.construction.sample import ensure_sample
    from m3el_lib.data.io import load_dataset

    debs = fetch_debs(src, work)
    roots = unpack(debs, work)
    sample = load_dataset(ensure_sample())
    test_names = test_entity_names(sample)
    used = snapshot_sources(config.SNAPSHOT_DIR)
    used_paths = {path for _, path in used}
    used_bytes = used_source_bytes(roots, used)
    known = fingerprints(sorted((sample.root / "images").glob("*.jpg")) + sorted((config.SNAPSHOT_DIR / "images").glob("*.jpg")))
    known_sha = {sha256_bytes(p.read_bytes()) for p in (sample.root / "images").glob("*.jpg")}

    candidates = (openclipart(roots["openclipart"]) + tuxpaint(roots["tuxpaint"]) + emoji(roots["noto-emoji"]) + kgeography(roots["kgeography"])
                  + emoji_sequences(roots["noto-emoji"], roots["unicode"]) + symbola(roots["symbola"], roots["unicode"])
                  + gcompris(roots["gcompris"], debian_copyright(work, "gcompris-qt-data").read_text(encoding="utf-8")))
    counts = {"candidates": len(candidates), "excluded_snapshot_source": 0, "excluded_test_entity_caption": 0,
              "excluded_sample_picture": 0, "excluded_duplicate": 0, "unreadable": 0}
    kept, n_kept = np.zeros((len(candidates), 16, 16), dtype=np.float32), 0
    seen_sha: set[str] = set()
    pairs, pictures = [], {}
    for cand in candidates:
        data = source_bytes(roots, cand.origin, cand.source_path)
        if uses_snapshot_source(cand.origin, cand.source_path, used, used_paths) or (
            data is not None and hashlib.sha256(data).hexdigest() in used_bytes
        ):
            counts["excluded_snapshot_source"] += 1
            continue
        if names_in(cand.caption, test_names):
            counts["excluded_test_entity_caption"] += 1
            continue
        try:
            with cand.load() as image:
                jpeg = to_jpeg(image)
        except (OSError, ValueError) as err:
            print(f"skipped unreadable {cand.origin}:{cand.source_path}: {err}", file=sys.stderr)
            counts["unreadable"] += 1
            continue
        digest = sha256_bytes(jpeg)
        row = fingerprints([jpeg])[0]
        if digest in known_sha or near_duplicate_of(row, known) >= 0:
            counts["excluded_sample_picture"] += 1
            continue
        if digest in seen_sha or near_duplicate_of(row, kept[:n_kept], SAME_PICTURE_GREY) >= 0:
            counts["excluded_duplicate"] += 1
            continue
        kept[n_kept], n_kept = row, n_kept + 1
        seen_sha.add(digest)
        pictures[digest] = jpeg
        pairs.append({"sha256": digest, "caption": cand.caption, "source": cand.origin, "source_path": cand.source_path,
                      "licence": cand.licence or LICENCES[cand.origin], "split": "heldout" if is_heldout(digest) else "train"})
    write(out, pairs, pictures, debs, work, counts, sample)
    return json.loads((out / "corpus.json").read_text())


def deterministic_zip(members: list[tuple[str, bytes]]) -> bytes:
    """A zip of stored (already compressed) JPEGs with fixed dates: the same bytes on every run."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, mode="w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def write(final: Path, pairs: list[dict], pictures: dict[str, bytes], debs: dict[str, Path], work: Path, counts: dict, sample) -> None:
    """Write the whole corpus beside `final`, then swap it into place: a run killed on the way
    leaves the previous corpus whole (and a `.<name>.building` folder the next run replaces)."""
    out = final.parent / f".{final.name}.building"
    if out.exists():
        shutil.rmtree(out)
    for start in range(0, len(pairs), SHARD_PAIRS):
        shard = f"shards/pictures-{start // SHARD_PAIRS:02d}.zip"
        chunk = pairs[start : start + SHARD_PAIRS]
        for pair in chunk:
            pair["shard"] = shard
        atomic_write_bytes(out / shard, deterministic_zip([(f"{p['sha256']}.jpg", pictures[p["sha256"]]) for p in chunk]))
    lines = "".join(json.dumps(p, ensure_ascii=False, sort_keys=True) + "\n" for p in pairs).encode()
    atomic_write_bytes(out / "pairs.jsonl.gz", gzip.compress(lines, mtime=0))
    by_source: dict[str, int] = {}
    for pair in pairs:
        by_source[pair["source"]] = by_source.get(pair["source"], 0) + 1
    counts.update({"pairs": len(pairs), "heldout": sum(p["split"] == "heldout" for p in pairs), "by_source": by_source,
                   "bytes_of_shards": sum((out / s).stat().st_size for s in {p["shard"] for p in pairs})})
    from m3el_lib.construction.snapshot import snapshot_checksum
    from m3el_lib import config

    manifest = {
        "format": "m3el-pretrain-corpus/1",
        "inputs": {name: {"version": DEBIAN[name], "file": deb.name, "sha256": sha256_bytes(deb.read_bytes())} for name, deb in debs.items()},
        "excluded_against": {"snapshot_checksum": snapshot_checksum(config.SNAPSHOT_DIR), "m3el_mini_checksum": sample.checksum},
        "parameters": {"max_side": MAX_SIDE, "jpeg_quality": JPEG_QUALITY, "heldout_percent": HELDOUT_PERCENT,
                       "openclipart_skipped": list(OPENCLIPART_SKIPPED), "shard_pairs": SHARD_PAIRS},
        "counts": counts,
    }
    atomic_write_json(out / "corpus.json", manifest)
    atomic_write_text(out / "SOURCES.md", sources_markdown(manifest))
    licences = out / "LICENSES"
    licences.mkdir(parents=True, exist_ok=True)
    for package, _ in {**CONTENT_ROOTS, **TEXT_INPUTS}.values():
        shutil.copyfile(debian_copyright(work, package), licences / f"{package}.copyright.txt")
    swap_folder_into_place(out, final)


def sources_markdown(manifest: dict) -> str:
    counts = manifest["counts"]
    rows = "\n".join(
        f"| `{package}` {info['version']} | {counts['by_source'].get(origin, 0):,} | {LICENCES[origin]} | `LICENSES/{package}.copyright.txt` |"
        for origin, (package, _) in CONTENT_ROOTS.items()
        for info in [manifest["inputs"][package]]
    )
    return f"""# The sample CLIP's pretraining corpus: sources, licences, how it was made

Picture-caption pairs for `m3el pretrain` (the sample's miniature stand-in for CLIP; see the
book's sample-CLIP chapter). Built by `scripts/build_pretrain_corpus.py` (its docstring says how
captions are taken and what is left out); `corpus.json` records the packages' sha256, the
parameters and the counts. Re-run the script whenever `data/snapshot/` changes.

| Debian package | pairs | licence | licence text here |
| --- | --- | --- | --- |
{rows}

{counts['pairs']:,} pairs ({counts['heldout']:,} held out), {counts['bytes_of_shards'] / 2**20:.1f} MB of pictures in
`shards/` (RGB JPEG on white, at most {MAX_SIDE} px a side). Left out: {counts['excluded_snapshot_source']:,}
pictures whose source file the snapshot uses, {counts['excluded_test_entity_caption']:,} whose caption names an
M³EL-mini test entity, {counts['excluded_sample_picture']:,} identical or near-identical to an M³EL-mini or
snapshot picture, {counts['excluded_duplicate']:,} duplicates within the corpus.

Captions are the packages' own text: openclipart file names (title words, usually with the
author's name) and folder; Tux Paint's English stamp descriptions; the Unicode character names of
the emoji Noto Color Emoji draws (pictures rendered from the font's bitmaps) and the CLDR names
of the emoji sequences it draws (flags, keycaps, joined sequences; from Unicode's `emoji-test.txt`,
Debian `unicode-data` {manifest['inputs']['unicode-data']['version']}, Unicode License v3, `LICENSES/unicode-data.copyright.txt`);
the Unicode character names of the emoji Symbola draws (black line drawings); the division and
map names of KGeography's map files, as "flag of ..." and "map of ..."; the file names (words,
numbers dropped) and folders of GCompris's activity pictures, each pair with the licence its
debian/copyright gives the file.
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", type=Path, default=None, help="folder holding already downloaded .debs")
    parser.add_argument("--out", type=Path, default=CORPUS_DIR)
    parser.add_argument("--work", type=Path, default=None, help="keep the unpacked packages here (default: a temporary folder)")
    args = parser.parse_args()
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
        manifest = build(args.src, args.out, args.work)
    else:
        with tempfile.TemporaryDirectory(prefix="m3el-corpus-") as tmp:
            manifest = build(args.src, args.out, Path(tmp))
    print(json.dumps(manifest["counts"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
