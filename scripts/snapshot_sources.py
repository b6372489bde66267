"""Readers for the snapshot's second wave of sources: WordNet entities, KGeography maps and flags, Noto emoji.

Used only by `scripts/build_snapshot.py`. Each reader turns one unpacked Debian package into
plain records; which record becomes which entity or picture is decided in `build_snapshot.py`
and `snapshot_pictures.py`.

* `read_wordnet(data_noun)`: the noun synsets that are *instances* (named entities: Paris the
  city, Paris the Trojan prince, Paris the Texas town), with their lemmas, their gloss, the
  lemmas of their instance hypernyms ("national capital", "town") and WordNet's lexicographer
  file (noun.person, noun.location, ...).
* `read_kgeography(folder)`: every division of every KGeography map (`*.kgm`): its name, the
  map it is on, its colour on that map and its flag file if any. `locator_map` draws one
  division in red on its map (other land grey), cropped around it: a real map, recoloured.
* `gcompris_pictures(folder)`: the pictures inside GCompris's Qt resource bundles (`*.rcc`, read
  by `read_rcc`), named by their file names; `debian_licence` finds each one's licence in the
  package's machine-readable copyright file.
* `emoji_pictures(font)`: every single-code-point emoji of Noto Color Emoji with its Unicode
  name (Python's `unicodedata`), and `render_emoji` draws one.
"""
from __future__ import annotations

import re
import unicodedata
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

WORDNET_LEXNAMES = {
    3: "Tops", 4: "act", 5: "animal", 6: "artifact", 7: "attribute", 8: "body", 9: "cognition", 10: "communication",
    11: "event", 12: "feeling", 13: "food", 14: "group", 15: "location", 16: "motive", 17: "object", 18: "person",
    19: "phenomenon", 20: "plant", 21: "possession", 22: "process", 23: "quantity", 24: "relation", 25: "shape",
    26: "state", 27: "substance", 28: "time",
}


@dataclass(frozen=True)
class WordNetEntity:
    offset: str  # the synset's byte offset in data.noun: its id in WordNet 3.0
    lemmas: tuple[str, ...]  # "Paris", "City_of_Light", ...
    lexname: str  # "location", "person", ...
    hypernyms: tuple[str, ...]  # first lemma of each instance hypernym, spaces for underscores
    gloss: str


def read_wordnet(data_noun: Path) -> list[WordNetEntity]:
    """The instance synsets of WordNet 3.0's `data.noun` (those with an `@i` instance-hypernym pointer)."""
    first_lemma: dict[str, str] = {}
    parsed: list[tuple[str, tuple[str, ...], str, list[str], str]] = []
    for line in data_noun.read_text(encoding="latin-1").splitlines():
        if line.startswith("  ") or " | " not in line:
            continue  # the licence header
        head, _, gloss = line.partition(" | ")
        fields = head.split()
        offset, lexfile, count = fields[0], int(fields[1]), int(fields[3], 16)
        lemmas = tuple(fields[4 + 2 * i] for i in range(count))
        at = 4 + 2 * count
        pointers = [(fields[at + 1 + 4 * k], fields[at + 2 + 4 * k]) for k in range(int(fields[at]))]
        first_lemma[offset] = lemmas[0].replace("_", " ")
        instance_of = [target for symbol, target in pointers if symbol == "@i"]
        if instance_of:
            parsed.append((offset, lemmas, WORDNET_LEXNAMES[lexfile], instance_of, gloss.strip()))
    return [
        WordNetEntity(offset, lemmas, lexname, tuple(first_lemma[t] for t in targets), gloss)
        for offset, lemmas, lexname, targets, gloss in parsed
    ]


def lemma_name(lemma: str) -> str:
    """A WordNet lemma as a name: underscores to spaces, a trailing sense marker like `(a)` dropped."""
    return re.sub(r"\(\w+\)$", "", lemma).replace("_", " ").strip()


# ---------------------------------------------------------------- KGeography


@dataclass(frozen=True)
class Division:
    map_file: str  # the .kgm file, e.g. "usa.kgm"
    map_name: str  # "USA", "Spain (Provinces)", "World"
    divisions_name: str  # "States", "Provinces", "Countries"
    name: str  # "Georgia"
    colour: tuple[int, int, int]
    flag: str  # "flags/usa_georgia.png" or ""
    image: str  # the map picture, e.g. "usa.png"


def read_kgeography(folder: Path, only: str = "*.kgm") -> list[Division]:
    """Every division (not marked `ignore`) of every map (or of the map file `only`), in file order."""
    divisions: list[Division] = []
    for kgm in sorted(folder.glob(only)):
        root = ET.parse(kgm).getroot()  # a local, checksummed package file (no external entities are resolved)
        map_name = (root.findtext("name") or "").strip()
        kind = (root.findtext("divisionsName") or "").strip()
        image = (root.findtext("mapFile") or "").strip()
        for node in root.iter("division"):
            if (node.findtext("ignore") or "").strip() == "yes":
                continue
            colour = tuple(int(node.findtext(f"color/{c}") or 0) for c in ("red", "green", "blue"))
            flag = (node.findtext("flag") or "").strip()
            divisions.append(Division(kgm.name, map_name, kind, (node.findtext("name") or "").strip(), colour,
                                      f"flags/{flag}" if flag else "", image))
    return divisions


def map_colours(folder: Path, map_file: str) -> set[tuple[int, int, int]]:
    """The colours of a map's land divisions (those not marked `ignore`)."""
    return {d.colour for d in read_kgeography(folder, map_file)}


def locator_map(map_image: Image.Image, colour: tuple[int, int, int], land: set[tuple[int, int, int]]) -> Image.Image | None:
    """The map with one division in red and the other divisions grey, cropped around the division."""
    pixels = np.asarray(map_image.convert("RGB"), dtype=np.uint8)
    packed = (pixels[..., 0].astype(np.int32) << 16) | (pixels[..., 1].astype(np.int32) << 8) | pixels[..., 2]
    target = packed == ((colour[0] << 16) | (colour[1] << 8) | colour[2])
    if target.sum() < 4:
        return None  # too small to be seen
    land_mask = np.isin(packed, [(r << 16) | (g << 8) | b for r, g, b in land])
    out = pixels.copy()
    out[land_mask] = (200, 200, 200)
    out[target] = (214, 39, 40)
    rows, cols = np.nonzero(target)
    height, width = target.shape
    # Wide enough to show where the division lies, tight enough that a small one stays visible at 128 px.
    half_h = max((rows.max() - rows.min()) * 1.5, height * 0.06)
    half_w = max((cols.max() - cols.min()) * 1.5, width * 0.06)
    centre_r, centre_c = (rows.max() + rows.min()) / 2, (cols.max() + cols.min()) / 2
    box = (int(max(0, centre_c - half_w)), int(max(0, centre_r - half_h)),
           int(min(width, centre_c + half_w)), int(min(height, centre_r + half_h)))
    return Image.fromarray(out, mode="RGB").crop(box)


# ---------------------------------------------------------------- Noto Color Emoji

# Unicode names of emoji that are signs, symbols, faces or gestures, not pictures of a thing.
_EMOJI_SKIP = re.compile(
    r"\b(?:FACE WITH|SMILING|GRINNING|FACE$|HAND|SIGN|SYMBOL|BUTTON|ARROW|SQUARED|CIRCLED|KEYCAP|MARK|INDICATOR|"
    r"MODIFIER|SELECTOR|TAG|CLOCK|HEART|PERSON|MAN|WOMAN|BOY|GIRL|BABY|FAMILY|GESTURE|LATIN|DIGIT|NUMBER|"
    r"SQUARE|CIRCLE|TRIANGLE|DIAMOND|ZODIAC|JAPANESE|CJK|IDEOGRAPH|NEGATIVE)\b"
)
EMOJI_SIZE = 109  # the one bitmap size Noto Color Emoji ships


def emoji_pictures(font_path: Path) -> list[tuple[str, str]]:
    """(code point as `U+XXXX`, Unicode name) for every pictorial single-code-point emoji in the font."""
    from fontTools.ttLib import TTFont

    font = TTFont(str(font_path), lazy=True)
    found = []
    for code in sorted(font.getBestCmap()):
        if code < 0x2300:
            continue  # ASCII digits, #, *, copyright and friends
        name = unicodedata.name(chr(code), "")
        if name and not _EMOJI_SKIP.search(name):
            found.append((f"U+{code:04X}", name))
    font.close()
    return found


def render_emoji(font_path: Path, code: str) -> Image.Image:
    """One emoji drawn by the colour font on a transparent background."""
    font = ImageFont.truetype(str(font_path), EMOJI_SIZE)
    image = Image.new("RGBA", (EMOJI_SIZE + 40, EMOJI_SIZE + 40), (255, 255, 255, 0))
    ImageDraw.Draw(image).text((10, 10), chr(int(code[2:], 16)), font=font, embedded_color=True)
    return image


# ---------------------------------------------------------------- WordNet entities beside the Vital Articles

_STOP = frozenset("a an and the of in on at to for from by with as or is was that which who its it his her their this "
                  "one also into than near".split())


def content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]+", unicodedata.normalize("NFKD", text.lower())) if len(w) > 2 and w not in _STOP}


def same_entity_pairs(
    wordnet: list[WordNetEntity],
    articles: dict[str, tuple[str, str, str]],
    name_of: dict[str, list[str]],
    min_score: int = 2,
) -> dict[str, str]:
    """WordNet offset -> Vital title for the synsets that *are* a Vital Article (so they are not added twice).

    `articles` maps a title to (our topic, description, lead paragraph), `name_of` a normalised
    name to the titles with that name. A synset and an article with the same name (any lemma)
    score one point per content word the gloss shares with the article's text, one more when
    their topics agree and two more for a name of two or more words (rarely a homonym); a score
    of `min_score` makes them the same entity, pairs taken best first, each side at most once.
    A wrong merge only drops a WordNet homonym; a missed one would put the same entity twice
    among the candidates, so the rule leans towards merging.
    """
    from snapshot_pictures import normalise  # the one normaliser of names
    from snapshot_topics import wordnet_topic

    scored: list[tuple[int, str, str]] = []
    for entity in wordnet:
        gloss = content_words(entity.gloss + " " + " ".join(entity.hypernyms))
        topic = wordnet_topic(entity.lexname, entity.hypernyms)[0]
        for lemma in entity.lemmas:
            name = normalise(lemma_name(lemma))
            for title in sorted(name_of.get(name, [])):
                article_topic, description, extract = articles[title]
                score = len(gloss & content_words(f"{title} {description} {extract}"))
                score += (article_topic == topic) + 2 * (len(name.split()) >= 2)
                if score >= min_score:
                    scored.append((score, entity.offset, title))
    pairs: dict[str, str] = {}
    taken: set[str] = set()
    for _, offset, title in sorted(scored, key=lambda s: (-s[0], s[1], s[2])):
        if offset not in pairs and title not in taken:
            pairs[offset] = title
            taken.add(title)
    return pairs


# ---------------------------------------------------------------- GCompris resource bundles (Qt .rcc)

# Bundles whose pictures are puzzle pieces, icons, symbols or backdrops named after something else.
GCOMPRIS_SKIP = frozenset({
    "paintings", "details", "core", "menu", "crane", "clickgame", "photo_hunter", "drawletters", "piano_composition",
    "digital_electricity", "analog_electricity", "babyshapes", "learn_digits", "magic-hat-minus", "magic-hat-plus",
    "sudoku", "graph-coloring", "redraw", "comparator", "path_encoding", "explore_world_music", "hangman", "balancebox",
})
PICTURE_SUFFIXES = (".webp", ".png", ".jpg", ".svg")


def read_rcc(data: bytes, where: str) -> dict[str, bytes]:
    """Path -> file bytes of a Qt resource bundle (formats 1-3; zlib-compressed entries inflated, zstd ones left out)."""
    import struct
    import zlib

    if data[:4] != b"qres":
        raise ValueError(f"{where}: not a Qt resource bundle")
    version, tree, data_at, names_at = struct.unpack(">IIII", data[4:20])
    node_size = 14 if version == 1 else 22
    files: dict[str, bytes] = {}

    def name(offset: int) -> str:
        (length,) = struct.unpack(">H", data[names_at + offset:names_at + offset + 2])
        return data[names_at + offset + 6:names_at + offset + 6 + 2 * length].decode("utf-16-be")

    stack = [(0, "")]
    while stack:
        index, prefix = stack.pop()
        at = tree + index * node_size
        name_offset, flags = struct.unpack(">IH", data[at:at + 6])
        path = prefix + (name(name_offset) if index else "")
        if flags & 2:  # a directory: its children are consecutive nodes
            count, first = struct.unpack(">II", data[at + 6:at + 14])
            stack += [(child, path + "/" if index else "") for child in range(first, first + count)]
            continue
        (offset,) = struct.unpack(">I", data[at + 10:at + 14])
        (size,) = struct.unpack(">I", data[data_at + offset:data_at + offset + 4])
        blob = data[data_at + offset + 4:data_at + offset + 4 + size]
        if flags & 4:
            continue  # zstd: none of the pictures we use
        files[path] = zlib.decompress(blob[4:]) if flags & 1 else blob
    return files


def gcompris_pictures(rcc_folder: Path) -> list[tuple[str, str]]:
    """(bundle file, path inside it) of every picture in an activity's `resource/` folder, sorted."""
    found = []
    for bundle in sorted(rcc_folder.glob("*.rcc")):
        if bundle.stem in GCOMPRIS_SKIP:
            continue
        for path in sorted(read_rcc(bundle.read_bytes(), str(bundle))):
            if "/resource/" in path and path.lower().endswith(PICTURE_SUFFIXES):
                found.append((bundle.name, path))
    return found


def picture_words(path: str) -> str:
    """The words of a picture's file name: "greatPyramidOfGiza_2.webp" -> "great pyramid of giza"."""
    stem = Path(path).stem
    stem = re.sub(r"([a-z])([A-Z])", r"\1 \2", stem)
    return " ".join(w for w in re.split(r"[_\-\s]+", stem.lower()) if w and not w.isdigit()).strip()


def debian_licence(copyright_text: str, path: str) -> str:
    """The `License:` of the last `Files:` paragraph of a machine-readable debian/copyright matching `path`."""
    import fnmatch

    licence = ""
    for paragraph in re.split(r"\n\s*\n", copyright_text):
        files = re.search(r"^Files:\s*(.*(?:\n\s+.*)*)", paragraph, flags=re.MULTILINE)
        found = re.search(r"^License:\s*(.+)$", paragraph, flags=re.MULTILINE)
        if files and found and any(fnmatch.fnmatch(path, pattern) for pattern in files.group(1).split()):
            licence = found.group(1).strip()
    return licence
