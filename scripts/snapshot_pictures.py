"""Which picture shows which Wikipedia article: the conservative matching for the snapshot.

Used only by `scripts/build_snapshot.py`. A picture is kept only when its label names an
article *and* the article's topic fits the picture's folder (an animals/ picture can only show a
nature article), and only when that name picks exactly one such article (ambiguity means "skip").
Labels come from:

* tuxpaint-stamps: the English description in the `.txt` beside each stamp ("A red kangaroo.");
  the head of the noun phrase is matched, longest suffix first ("red kangaroo", "kangaroo");
* openclipart: the file name, whose first words are the clip's title and whose last ones are the
  author ("bison_leif_lodahl_01"); the leading words are matched; country flags must match whole;
* flagpy: the country name of each flag; matplotlib: its `grace_hopper.jpg` sample photo;
* KGeography: a division's name on a map (`match_division`): a country on a world or continent
  map, a state or province on a country's map when exactly one place of that name says it is
  in that country (Georgia on the USA map is the state, not the country or the colony);
* GCompris: the file name of a picture in an activity's resources ("tajMahal.webp"), whole;
* Noto emoji: the Unicode name of the emoji ("ELEPHANT", "RED APPLE"), matched like a Tux Paint
  description but never to a person.

`REJECTED` lists the matches we looked at and judged wrong (the label names the article but the
picture does not show it), so a rerun makes the same choices.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import PurePosixPath

ANY_TOPIC = frozenset({"nature", "countries", "places", "science_technology", "culture_society", "people"})
NATURE = frozenset({"nature"})
NATURE_OR_CULTURE = frozenset({"nature", "culture_society"})
CULTURE = frozenset({"culture_society"})
TECH = frozenset({"science_technology"})
TECH_OR_CULTURE = frozenset({"science_technology", "culture_society"})
PLACES = frozenset({"countries", "places"})
BUILDINGS = frozenset({"culture_society", "science_technology", "places"})

# Folder prefix -> topics an article must have to be shown by a picture from that folder.
# Folders not listed (alphabets, road signs, coins, jigsaw pieces, icons, ...) are not used.
TUXPAINT_FOLDERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("animals/", NATURE),
    ("plants/", NATURE),
    ("food/", NATURE_OR_CULTURE),
    ("hobbies/music/", CULTURE),
    ("hobbies/", TECH_OR_CULTURE),
    ("space/", TECH),
    ("vehicles/", TECH_OR_CULTURE),
    ("military/vehicles/", TECH),
    ("town/monuments/", BUILDINGS),
    ("town/houses/", BUILDINGS),
    ("town/cartoon/", BUILDINGS),
    ("clothes/", CULTURE),
    ("household/", TECH_OR_CULTURE),
    ("medical/", frozenset({"nature", "science_technology"})),
    ("sports/", CULTURE),
    ("seasonal/", frozenset({"nature", "culture_society"})),
    ("naturalforces/", frozenset({"nature", "science_technology"})),
    ("people/body_parts/", NATURE),
)
OPENCLIPART_FOLDERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("animals/", NATURE),
    ("plants/", NATURE),
    ("food/fruit/", NATURE_OR_CULTURE),
    ("food/vegetables/", NATURE_OR_CULTURE),
    ("recreation/music/", CULTURE),
    ("recreation/sports/", CULTURE),
    ("science/astronomy/", TECH),
    ("geography/astronomy/", TECH),
    ("geography/", PLACES),
    ("buildings/", BUILDINGS),
    ("transportation/vehicles/", TECH),
    ("electronics/", TECH),
    ("tools/", TECH),
)
OPENCLIPART_FLAG_FOLDERS = tuple(f"signs_and_symbols/flags/{r}/" for r in ("africa", "america", "asia", "europe", "oceania"))

# Names that differ between a source's label and the Wikipedia title (checked by hand).
ALIASES: dict[str, str] = {
    "libyan arab jamahiriya": "Libya",
    "viet nam": "Vietnam",
    "cote divoire": "Ivory Coast",
    "ivory coast": "Ivory Coast",
    "congo kinshasa": "Democratic Republic of the Congo",
    "democratic republic of the congo": "Democratic Republic of the Congo",
    "congo brazzaville": "Republic of the Congo",
    "republic of the congo": "Republic of the Congo",
    "swaziland": "Eswatini",
    "macedonia": "North Macedonia",
    "suisse": "Switzerland",
    "capeverde": "Cape Verde",
    "maledives": "Maldives",
    "maldives": "Maldives",
    "brunei darussalam": "Brunei",
    "syrian arab republic": "Syria",
    "russian federation": "Russia",
    "timor leste": "Timor-Leste",
    "east timor": "Timor-Leste",
    "guineabissau": "Guinea-Bissau",
    "guinea bissau": "Guinea-Bissau",
    "georgia": "Georgia (country)",
    "gambia": "The Gambia",
    "bahamas": "The Bahamas",
    "united states": "United States",
    "united states of america": "United States",
    "czech republic": "Czech Republic",
    "micronesia": "Federated States of Micronesia",
    "australia": "Australia",
    "ireland": "Republic of Ireland",
    "vatican city": "Vatican City",
    # people in openclipart file names
    "einstein": "Albert Einstein",
    "bach": "Johann Sebastian Bach",
    "beethoveo": "Ludwig van Beethoven",
    "handel": "George Frideric Handel",
}

# (source file, article) pairs judged wrong on review: the label names the article, the picture does not show it.
REJECTED: frozenset[tuple[str, str]] = frozenset({
    ("animals/birds/cartoon/penguin_with_spider.png", "Spider"),
    ("animals/mammals/aquatic/sea_lion.png", "Lion"),
    ("animals/mammals/bears/cartoon/teddy_bear.png", "Bear"),
    ("animals/mammals/bears/toys/edward_bear.png", "Bear"),
    ("food/fruit/avocado.png", "Fruit"),
    ("food/fruit/cherimoya.png", "Fruit"),
    ("food/spices/ginger.png", "Root"),
    ("food/vegetables/pattypan_squash.png", "Squash (sport)"),
    ("household/dishes/glass.png", "Water"),
    ("household/electronics/compact_disc.svg", "Music"),
    ("household/globe.svg", "Earth"),
    ("plants/eggplant.png", "Fruit"),
    ("plants/thyme.png", "Plant"),
    ("plants/trees/rambutan.png", "Tree"),
    ("seasonal/christmas/lamp.png", "Light"),
    ("seasonal/christmas/star.png", "Star"),
    ("seasonal/easter/chick-in-egg.png", "Egg"),
    ("seasonal/easter/wrapped_chocolate_easter_egg.png", "Egg"),
    ("seasonal/easter/wrapped_chocolate_easter_egg_2.png", "Egg"),
    ("seasonal/newyears/party-horn-in.png", "Horn (instrument)"),
    ("seasonal/newyears/party-horn-out.png", "Horn (instrument)"),
    ("space/apollo_lander.png", "Module (mathematics)"),
    ("sports/trophy_cup.png", "Cup"),
    ("vehicles/locomotive/cartoon/tanker.png", "Liquid"),
    ("animals/fish/giraffe_cichlid_01.png", "Giraffe"),
    ("geography/valencia_01.png", "Valencia"),
    ("geography/madrid_01.png", "Madrid"),
    ("plants/human_humain_umano_sed_r.png", "Human"),
    ("recreation/music/jazz_enrique_meza_c_01.png", "Jazz"),
    ("recreation/music/jazz_enrique_meza_c_02.png", "Jazz"),
    ("recreation/sports/a_boy_plays_soccer_01.png", "Boy"),
    ("tools/lock.png", "Lock (water navigation)"),
    ("tools/lock_-_open_afief_halumi_01.png", "Lock (water navigation)"),
    ("tools/weapons/mortar_01.png", "Mortar (weapon)"),
    ("transportation/vehicles/curve_ahead.png", "Curve"),
    # emoji and GCompris pictures named after another sense of the word than the article's
    ("U+1F388", "Balloon (aeronautics)"),  # a party balloon
    ("U+1F50B", "Battery (crime)"),
    ("U+26F2", "Fountain (Duchamp)"),
    ("U+1F512", "Lock (water navigation)"),
    ("U+1F48D", "Ring (mathematics)"),
    ("family.rcc#gcompris/src/activities/family/resource/rings.svg", "Ring (mathematics)"),
    ("instruments.rcc#gcompris/src/activities/instruments/resource/organ.svg", "Organ (biology)"),
    ("babymatch.rcc#gcompris/src/activities/babymatch/resource/images/rape.svg", "Rape"),  # rapeseed, the plant
    ("erase.rcc#gcompris/src/activities/erase/resource/chamaeleon.webp", "Chamaeleon (constellation)"),  # the lizard
    ("categorization.rcc#gcompris/src/activities/categorization/resource/images/numbers/numbers.webp", "Numbers (book)"),
    ("lang.rcc#gcompris/src/activities/lang/resource/words_sample/color.webp", "Color"),
})

# Descriptions whose noun phrase is not what the stamp shows, read by hand.
CAPTION_OVERRIDES: dict[str, str] = {"town/monuments/cartoon/eiffel_tower.png": "eiffel tower"}

# An openclipart title whose next word is one of these shows a part or accessory ("baseball_bat"), not the thing.
_ACCESSORIES = frozenset(
    "bat cap glove racket racquets shoe shoes juice core hallway umbrella display theory flag ball box cage burner "
    "board puller roller brush symbol".split()
)

# First words of openclipart titles that only modify the noun after them.
_MODIFIERS = frozenset(
    "contour cartoon color colour new angry crazy happy sleeping bored flying emperor simple little big red green "
    "yellow pink blue brown black white tenor french electric war dall az old young baby orange military".split()
)

_QUANTIFIERS = re.compile(
    r"^(?:a|an|the|some|two|three|our|a pair of|a couple of|a bunch of|a cluster of|a head of|a string of|"
    r"a quarter of|a glass of|a slice of|a plant of|a very|very)\s+"
)


@dataclass(frozen=True)
class Article:
    title: str
    topic: str
    description: str
    text: str = ""  # the lead paragraph (Wikipedia) or gloss (WordNet)


@dataclass(frozen=True)
class PictureMatch:
    title: str  # the Wikipedia article the picture shows
    origin: str  # "tuxpaint", "openclipart", "flagpy", "matplotlib", "kgeography-flag", "kgeography-map", "emoji"
    source_path: str  # path inside the source package
    caption: str  # the label the match was made from
    matched_on: str  # the words that matched


def normalise(text: str) -> str:
    """Lowercase ASCII words separated by single spaces."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3:
        return word[:-1]
    return word


def strip_parenthetical(title: str) -> str:
    return re.sub(r"\s*\([^()]*\)$", "", title).strip()


class ArticleIndex:
    """Normalised name (title without its parenthetical) and full title -> articles."""

    def __init__(self, articles: list[Article]):
        self.by_name: dict[str, list[Article]] = {}
        self.by_title: dict[str, Article] = {}
        for article in articles:
            self.by_name.setdefault(normalise(strip_parenthetical(article.title)), []).append(article)
            self.by_title[normalise(article.title)] = article

    def lookup(self, phrase: str, topics: frozenset[str]) -> Article | None:
        """The one article named `phrase` (or its alias / singular) with a topic in `topics`."""
        for candidate in _phrase_variants(phrase):
            if candidate in ALIASES:
                article = self.by_title.get(normalise(ALIASES[candidate]))
                return article if article and article.topic in topics else None
            fitting = [a for a in self.by_name.get(candidate, []) if a.topic in topics]
            if len(fitting) == 1:
                return fitting[0]
            if len(fitting) > 1:
                return None  # ambiguous: skip rather than guess
        return None


def _phrase_variants(phrase: str) -> list[str]:
    words = phrase.split()
    if not words:
        return []
    variants = [phrase]
    last = singular(words[-1])
    if last != words[-1]:
        variants.append(" ".join(words[:-1] + [last]))
    return variants


def folder_topics(path: str, folders: tuple[tuple[str, frozenset[str]], ...]) -> frozenset[str] | None:
    """The topics allowed for a picture at `path` (the longest listed folder prefix wins)."""
    best: tuple[str, frozenset[str]] | None = None
    for prefix, topics in folders:
        if path.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, topics)
    return best[1] if best else None


def caption_phrase(caption: str) -> str:
    """The noun phrase of a tuxpaint description: first clause, without articles and quantifiers."""
    first = re.split(r"[.!?—(,;:]| - ", caption.strip(), maxsplit=1)[0]
    phrase = normalise(first.replace("’", "'").replace("'s ", " "))
    previous = None
    while previous != phrase:
        previous, phrase = phrase, _QUANTIFIERS.sub("", phrase)
    return phrase


def match_tuxpaint(path: str, caption: str, index: ArticleIndex) -> PictureMatch | None:
    """Longest suffix of the description's noun phrase that names one fitting article."""
    topics = folder_topics(path, TUXPAINT_FOLDERS)
    if topics is None or not caption.strip():
        return None
    words = caption_phrase(CAPTION_OVERRIDES.get(path, caption)).split()
    if not 1 <= len(words) <= 4:  # longer labels describe scenes ("a spider playing soccer")
        return None
    for start in range(len(words)):
        phrase = " ".join(words[start:])
        article = index.lookup(phrase, topics)
        if article is not None:
            return _accepted(PictureMatch(article.title, "tuxpaint", path, caption, phrase))
    return None


def _stem_words(path: str) -> list[str]:
    stem = PurePosixPath(path).stem
    words = [re.sub(r"\d+$", "", w) for w in normalise(stem.replace("_", " ").replace("-", " ")).split()]
    while words and (not words[-1] or words[-1] in {"r", "bw"}):
        words.pop()
    return [w for w in words if w]


def match_openclipart(path: str, index: ArticleIndex) -> PictureMatch | None:
    """A country flag by its whole file name; other clips by their leading title words."""
    words = _stem_words(path)
    if not words:
        return None
    if path.startswith(OPENCLIPART_FLAG_FOLDERS):
        article = index.lookup(" ".join(words), PLACES)
        if article is not None and is_country(article, " ".join(words)):
            return _accepted(PictureMatch(article.title, "openclipart", path, PurePosixPath(path).stem, " ".join(words)))
        return None
    topics = folder_topics(path, OPENCLIPART_FOLDERS)
    if topics is None:
        return None
    if words[:2] == ["map", "of"]:  # "map_of_finland_jarno_vas_01" shows Finland
        words = words[2:]
    tries = [words[:n] for n in (3, 2, 1) if len(words) >= n and not (n == 1 and words[0] in _MODIFIERS)]
    if len(words) >= 2 and words[0] in _MODIFIERS:
        tries += [words[1:3], words[1:2]]  # "emperor_penguin_ralf": a modifier, then the noun
    people = frozenset(topics | {"people"}) if path.startswith(("recreation/music/", "people/")) else topics
    for tried in tries:
        phrase = " ".join(tried)
        following = words[words.index(tried[-1]) + 1] if words.index(tried[-1]) + 1 < len(words) else ""
        if following in _ACCESSORIES:
            return None  # "table_tennis_racquets": neither table tennis nor a table
        article = index.lookup(phrase, people if phrase in ALIASES else topics)
        if article is not None:
            return _accepted(PictureMatch(article.title, "openclipart", path, PurePosixPath(path).stem, phrase))
    return None


def match_country(name: str, index: ArticleIndex, origin: str, path: str) -> PictureMatch | None:
    """flagpy's country names ("The_Maldives", "Georgia_(Country)") -> the country's article."""
    phrase = normalise(re.sub(r"\(country\)", "", name.replace("_", " "), flags=re.IGNORECASE))
    phrase = re.sub(r"^the ", "", phrase)
    article = index.lookup(phrase, PLACES)
    if article is None or not is_country(article, phrase):
        return None
    return _accepted(PictureMatch(article.title, origin, path, f"Flag of {name.replace('_', ' ')}", phrase))


def is_country(article: Article, phrase: str) -> bool:
    """A flag shows a country: the article says so, or the name was checked by hand (ALIASES)."""
    return phrase in ALIASES or bool(re.search(r"\b(?:country|nation|microstate|city-state)\b", article.description.lower()))


def _accepted(match: PictureMatch) -> PictureMatch | None:
    return None if (match.source_path, match.title) in REJECTED else match


# ---------------------------------------------------------------- KGeography divisions and emoji

WORLD_MAPS = frozenset({"world", "africa", "asia", "europe", "north and central america", "south america", "oceania", "caribbean"})
# A country map's name -> the words its places' texts use for that country.
MAP_COUNTRY: dict[str, str] = {
    "usa": "united states", "great britain": "england", "the netherlands": "netherlands", "republic of korea": "korea",
    "new zealand": "new zealand", "czechia": "czech", "republic of ireland": "ireland", "virginia usa": "virginia",
    "latvia districts": "latvia", "portugal districts": "portugal", "portugal provinces": "portugal",
    "italy by provinces": "italy", "sweden by counties": "sweden", "sri lanka": "sri lanka", "catalonia": "catalonia",
    "democratic republic of the congo": "congo", "bosnia herzegovina": "bosnia", "myanmar": "burma",
}
_COUNTRY_WORDS = re.compile(r"\b(?:country|nation|republic|kingdom|monarchy|principality|sultanate|emirate|city-state|microstate|state)\b")
_WATER_WORDS = re.compile(r"\b(?:ocean|sea|lake|river|gulf|bay|strait|channel|oceanic)\b")


def map_country(map_name: str) -> str:
    """The country a KGeography map shows ("Spain (Provinces)" -> "spain"), or "" for world-level maps."""
    base = normalise(re.sub(r"\(.*?\)", "", map_name).replace("-", " "))
    if base in WORLD_MAPS or base.startswith(("waters", "world")):
        return ""
    return MAP_COUNTRY.get(base, MAP_COUNTRY.get(normalise(map_name.replace("-", " ")), base))


def match_division(name: str, map_name: str, kind: str, index: ArticleIndex) -> Article | None:
    """The one geography article a KGeography division shows, or None when it is not certain."""
    phrase = normalise(name)
    base = normalise(re.sub(r"\(.*?\)", "", map_name))
    country = map_country(map_name)
    if phrase in ALIASES and not country:  # the aliases name countries ("georgia" is the country on a world map)
        article = index.by_title.get(normalise(ALIASES[phrase]))
        same = [article] if article is not None and article.topic in PLACES else []
    else:
        same = [a for a in index.by_name.get(phrase, []) if a.topic in PLACES]
    if base.startswith("waters"):
        fitting = [a for a in same if _WATER_WORDS.search(a.description.lower())]
    elif base.startswith("world continents"):
        fitting = [a for a in same if "continent" in a.description.lower()]
    elif not country:
        fitting = [a for a in same if _COUNTRY_WORDS.search(a.description.lower()) or phrase in ALIASES]
        if len(fitting) > 1:
            fitting = [a for a in fitting if not re.search(r"\bstate in\b|american state", a.description.lower())]
    else:  # a state or province: the place must say it is in that country and be of the map's kind
        units = {singular(w) for w in normalise(kind).split() if w != "and"}
        fitting = [a for a in same if country in normalise(f"{a.description} {a.text}")
                   and units & {singular(w) for w in normalise(a.description).split()}]
    return fitting[0] if len(fitting) == 1 else None


def match_emoji(code: str, unicode_name: str, index: ArticleIndex) -> PictureMatch | None:
    """An emoji whose whole Unicode name names one article; never a person (an emoji is no portrait) nor a place
    (a "BIKINI" emoji is the swimsuit, not the atoll)."""
    phrase = normalise(unicode_name)
    if not 1 <= len(phrase.split()) <= 3:
        return None
    article = index.lookup(phrase, frozenset(ANY_TOPIC - {"people", "countries", "places"}))
    return _accepted(PictureMatch(article.title, "emoji", code, unicode_name.title(), phrase)) if article else None


# A picture named after a colour shows something of that colour, not the colour's article.
_COLOURS = frozenset("white black blue red green yellow purple brown pink grey gray violet".split())


def match_gcompris(path: str, words: str, index: ArticleIndex) -> PictureMatch | None:
    """A GCompris picture whose whole file name ("greatPyramidOfGiza") names one article; never a person."""
    phrase = normalise(words)
    if len(phrase) < 3 or not 1 <= len(phrase.split()) <= 5 or phrase in _COLOURS:
        return None
    article = index.lookup(phrase, frozenset(ANY_TOPIC - {"people", "countries", "places"}))
    return _accepted(PictureMatch(article.title, "gcompris", path, words, phrase)) if article else None
