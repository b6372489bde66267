"""The live knowledge source: Wikidata, English Wikipedia and Wikimedia Commons over HTTP.

`WikimediaSource` implements `KnowledgeSource` (`name="wikimedia"`, `kb="wikidata"`) with:

* entity selection: one Wikidata SPARQL query per topic (https://query.wikidata.org/sparql,
  SPARQL 1.1 JSON results) for items that are instances (P31) of the topic's class, most
  Wikipedia sitelinks first (ties by id), with English label and description, the English
  Wikipedia article and the P18 images;
* mention text: the Wikipedia REST page summary (`/api/rest_v1/page/summary/TITLE`) of each
  entity's article, whose `extract` is the lead paragraph; its `originalimage` adds a second
  picture when that file lives on Commons (files local to English Wikipedia, such as non-free
  film posters, are left out: we only take freely licensed Commons files);
* same-name search: `wbsearchentities` for the name (then for up to two of its content words,
  so candidates that only share a token are found too), which gives labels and descriptions,
  followed by one small SPARQL query (`VALUES ?item {...}`) for the P18 images and the English
  article of the hits. (We do not use `wbgetentities` here: it cannot be limited to P18 and
  returns every statement of an item, hundreds of kilobytes for a well-known one, per hit.)
* images: Commons `Special:FilePath/NAME?width=W` (a thumbnail), with each file's licence from
  the Commons `imageinfo` API (`extmetadata.LicenseShortName`) where it gives one.

Everything goes through `http.HttpClient` (User-Agent, rate limit, retries, disk cache), so a
full-scale run that is interrupted resumes from the cache. A response that is not in the
documented format raises `MalformedResponseError` naming the URL and what was wrong.
Cost at full scale: one SPARQL query per topic, one summary request per selected entity, and per
gold entity one to three searches plus one small SPARQL query; at the default 0.5 s between
requests, about 16,000 entities per topic take some hours the first time and minutes from cache.

Topics are our choice (the paper names five topics, "movies" among them; we do not know its
class mapping). `TOPIC_CLASSES` maps each to a Wikidata class; pass `topic_classes=` to change it.
"""
from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from m3el_lib.construction.http import HttpClient, HttpError, HttpResponse, MalformedResponseError, Transport
from m3el_lib.construction.snapshot import tokens
from m3el_lib.construction.source import SourceEntity, SourceImage

SPARQL_URL = "https://query.wikidata.org/sparql"
WIKIDATA_API = "https://www.wikidata.org/w/api.php"
COMMONS_API = "https://commons.wikimedia.org/w/api.php"
COMMONS_FILEPATH = "https://commons.wikimedia.org/wiki/Special:FilePath/"
COMMONS_UPLOAD_PREFIX = "https://upload.wikimedia.org/wikipedia/commons/"
SUMMARY_URL = "https://{lang}.wikipedia.org/api/rest_v1/page/summary/"
ENTITY_URI = re.compile(r"\Ahttps?://www\.wikidata\.org/entity/(Q[1-9][0-9]*)\Z")
QID = re.compile(r"\AQ[1-9][0-9]*\Z")
API_BATCH = 50  # the most hits one wbsearchentities call returns and titles one imageinfo call accepts
IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"RIFF")
DEFAULT_MAX_PER_TOPIC = 2000  # what "all entities of a topic" means for a live query


@dataclass(frozen=True)
class TopicClass:
    """A topic of ours and the Wikidata class whose direct instances (P31) it selects."""

    qid: str
    label: str


# Our choice of five topics ("movies" is the paper's; the other four are ours), picked for
# Commons image coverage and for real name ambiguity across topics (Casablanca the film and
# the city, Thriller the album, Mercury the planet's namesakes, mountains sharing names).
TOPIC_CLASSES: dict[str, TopicClass] = {
    "movies": TopicClass("Q11424", "film"),
    "albums": TopicClass("Q482994", "album"),
    "cities": TopicClass("Q515", "city"),
    "paintings": TopicClass("Q3305213", "painting"),
    "mountains": TopicClass("Q8502", "mountain"),
}


class WikimediaApiError(HttpError):
    """The MediaWiki API answered with an `error` object (e.g. a bad parameter)."""


def topic_query(class_qid: str, limit: int, language: str = "en") -> str:
    """The SPARQL query selecting up to `limit` direct instances of `class_qid`, best known first."""
    if not QID.match(class_qid):
        raise ValueError(f"not a Wikidata class id: {class_qid!r}")
    site = f"https://{language}.wikipedia.org/"
    return f"""SELECT ?item ?label ?description ?article ?image ?sitelinks WHERE {{
  {{
    SELECT ?item ?sitelinks WHERE {{
      ?item wdt:P31 wd:{class_qid} ;
            wikibase:sitelinks ?sitelinks .
    }}
    ORDER BY DESC(?sitelinks) ?item
    LIMIT {int(limit)}
  }}
  OPTIONAL {{ ?item rdfs:label ?label . FILTER(LANG(?label) = "{language}") }}
  OPTIONAL {{ ?item schema:description ?description . FILTER(LANG(?description) = "{language}") }}
  OPTIONAL {{ ?article schema:about ?item ; schema:isPartOf <{site}> . }}
  OPTIONAL {{ ?item wdt:P18 ?image . }}
}}
ORDER BY DESC(?sitelinks) ?item"""


def items_query(qids: list[str], language: str = "en") -> str:
    """The SPARQL query for the P18 images and the article of the given items (one row per image)."""
    bad = [q for q in qids if not QID.match(q)]
    if bad:
        raise ValueError(f"not Wikidata item ids: {bad}")
    values = " ".join(f"wd:{q}" for q in qids)
    return f"""SELECT ?item ?article ?image WHERE {{
  VALUES ?item {{ {values} }}
  OPTIONAL {{ ?article schema:about ?item ; schema:isPartOf <https://{language}.wikipedia.org/> . }}
  OPTIONAL {{ ?item wdt:P18 ?image . }}
}}"""


def normalise_file_name(name: str) -> str:
    """A Commons file name in MediaWiki's canonical form: spaces, first letter upper, no `File:`."""
    name = urllib.parse.unquote(name).replace("_", " ").strip()
    if name.lower().startswith("file:"):
        name = name[5:].strip()
    return name[:1].upper() + name[1:]


def commons_file_url(file_name: str) -> str:
    """The stable public URL of a Commons file (redirects to the current original)."""
    return COMMONS_FILEPATH + urllib.parse.quote(normalise_file_name(file_name).replace(" ", "_"))


def commons_file_from_upload_url(url: str) -> str | None:
    """The file name in an upload.wikimedia.org Commons URL (original or thumbnail), else None."""
    if not url.startswith(COMMONS_UPLOAD_PREFIX):
        return None
    parts = url[len(COMMONS_UPLOAD_PREFIX):].split("/")
    # originals: h/hh/NAME ; thumbnails: thumb/h/hh/NAME/WIDTHpx-NAME
    if parts and parts[0] == "thumb":
        parts = parts[1:]
    return normalise_file_name(parts[2]) if len(parts) >= 3 and parts[2] else None


def title_from_article_url(url: str) -> str:
    """`https://en.wikipedia.org/wiki/Casablanca_(film)` -> `Casablanca (film)`."""
    path = urllib.parse.urlsplit(url).path
    if "/wiki/" not in path:
        return ""
    return urllib.parse.unquote(path.split("/wiki/", 1)[1]).replace("_", " ")


class WikimediaSource:
    """`KnowledgeSource` over the live Wikimedia services; see the module docstring."""

    name = "wikimedia"
    kb = "wikidata"

    def __init__(
        self,
        client: HttpClient | None = None,
        transport: Transport | None = None,
        cache_dir: Path | str | None = None,
        topic_classes: dict[str, TopicClass] | None = None,
        language: str = "en",
        max_per_topic: int = DEFAULT_MAX_PER_TOPIC,
        thumb_width: int = 512,
        fetch_licences: bool = True,
        max_token_searches: int = 2,
    ) -> None:
        self.client = client or HttpClient(transport=transport, cache_dir=cache_dir)
        self.topic_classes = dict(topic_classes or TOPIC_CLASSES)
        self.language = language
        self.max_per_topic = max_per_topic
        self.thumb_width = thumb_width
        self.fetch_licences = fetch_licences
        self.max_token_searches = max_token_searches

    # -- KnowledgeSource -------------------------------------------------------------------
    def versions(self) -> dict[str, str]:
        classes = ", ".join(f"{t}={c.qid} ({c.label})" for t, c in self.topic_classes.items())
        return {
            "source": "wikimedia (live)",
            "wikidata": f"{SPARQL_URL} (live) and {WIKIDATA_API} (wbsearchentities)",
            "wikipedia": SUMMARY_URL.format(lang=self.language) + "TITLE (REST v1 page summary)",
            "commons": f"{COMMONS_FILEPATH}NAME?width={self.thumb_width}; licences from {COMMONS_API}",
            "topic_classes": classes,
            "retrieved_utc_date": datetime.now(timezone.utc).date().isoformat(),
            "user_agent": self.client.user_agent,
        }

    def topics(self) -> list[str]:
        return list(self.topic_classes)

    def topic_entities(self, topic: str, limit: int | None = None) -> list[SourceEntity]:
        """Entities of `topic` (at most `limit`, default `max_per_topic`), summaries and images filled in."""
        try:
            topic_class = self.topic_classes[topic]
        except KeyError:
            raise ValueError(f"unknown topic {topic!r}; expected one of {', '.join(self.topic_classes)}") from None
        entities = self._sparql_entities(topic_class, limit if limit is not None else self.max_per_topic, topic)
        entities = [self._with_summary(entity) for entity in entities]
        return self._with_licences(entities)

    def search_name(self, name: str, limit: int) -> list[SourceEntity]:
        """Entities whose label or alias matches `name`, then ones matching one of its words."""
        if limit <= 0 or not name.strip():
            return []
        hits: dict[str, tuple[str, str]] = {}  # qid -> (label, description), best first
        for query in [name, *_search_tokens(name)[: self.max_token_searches]]:
            for qid, label, description in self._search(query, limit):
                hits.setdefault(qid, (label, description))
            if len(hits) >= limit:
                break
        qids = list(hits)[:limit]
        details = {e.qid: e for e in self._item_details(qids)}
        entities = [
            replace(details[qid], name=hits[qid][0], description=hits[qid][1]) if qid in details
            else SourceEntity(qid=qid, name=hits[qid][0], description=hits[qid][1])
            for qid in qids
        ]
        return self._with_licences(entities)

    def image_bytes(self, image: SourceImage) -> bytes:
        """A thumbnail of the Commons file (`thumb_width` pixels wide), checked to be an image."""
        url = commons_file_url(image.file_name) if image.origin == "commons" else image.url
        if not url:
            raise ValueError(f"image {image.file_name!r} has no URL to fetch")
        params = {"width": self.thumb_width} if image.origin == "commons" else None
        return self.client.get(url, params=params, parse=_parse_image)

    # -- Wikidata SPARQL -------------------------------------------------------------------
    def _sparql_entities(self, topic_class: TopicClass, limit: int, topic: str) -> list[SourceEntity]:
        query = topic_query(topic_class.qid, limit, self.language)
        headers = {"Accept": "application/sparql-results+json"}
        rows = self.client.get(SPARQL_URL, params={"query": query, "format": "json"}, headers=headers, parse=_parse_sparql)
        return _entities_from_rows(rows, topic)

    # -- Wikipedia REST summaries ----------------------------------------------------------
    def _with_summary(self, entity: SourceEntity) -> SourceEntity:
        if not entity.title:
            return entity  # no article in this language: no lead paragraph (the stages count it)
        url = SUMMARY_URL.format(lang=self.language) + urllib.parse.quote(entity.title.replace(" ", "_"), safe="")
        summary = self.client.get(url, parse=_parse_summary, ok_statuses=(404,))
        if summary is None:
            return entity
        images = list(entity.images)
        known = {normalise_file_name(image.file_name) for image in images}
        original = summary.get("originalimage") or summary.get("thumbnail") or {}
        file_name = commons_file_from_upload_url(str(original.get("source", "")))
        if file_name and file_name not in known:
            images.append(SourceImage(file_name=file_name, url=commons_file_url(file_name), origin="commons"))
        return replace(
            entity,
            extract=summary["extract"].strip(),
            description=entity.description or summary.get("description", "") or "",
            images=tuple(images),
        )

    # -- wbsearchentities + SPARQL item details ---------------------------------------------
    def _search(self, query: str, limit: int) -> list[tuple[str, str, str]]:
        params = {
            "action": "wbsearchentities",
            "search": query,
            "language": self.language,
            "uselang": self.language,
            "type": "item",
            "limit": min(max(limit, 1), API_BATCH),
            "format": "json",
        }
        return self.client.get(WIKIDATA_API, params=params, parse=_parse_search)

    def _item_details(self, qids: list[str]) -> list[SourceEntity]:
        """Images and article titles of the given items, from one SPARQL query per batch."""
        found: list[SourceEntity] = []
        for batch in _batches(qids, API_BATCH):
            params = {"query": items_query(batch, self.language), "format": "json"}
            headers = {"Accept": "application/sparql-results+json"}
            rows = self.client.get(SPARQL_URL, params=params, headers=headers, parse=_parse_sparql)
            found += _entities_from_rows(rows, topic="")
        return found

    # -- Commons licences ------------------------------------------------------------------
    def _with_licences(self, entities: list[SourceEntity]) -> list[SourceEntity]:
        if not self.fetch_licences:
            return entities
        names = sorted({normalise_file_name(i.file_name) for e in entities for i in e.images if i.origin == "commons"})
        licences: dict[str, str] = {}
        for batch in _batches(names, API_BATCH):
            params = {
                "action": "query",
                "titles": "|".join(f"File:{name}" for name in batch),
                "prop": "imageinfo",
                "iiprop": "extmetadata",
                "iiextmetadatafilter": "LicenseShortName",
                "format": "json",
                "formatversion": "2",
            }
            licences.update(self.client.get(COMMONS_API, params=params, parse=_parse_licences))
        return [
            replace(e, images=tuple(replace(i, licence=licences.get(normalise_file_name(i.file_name), i.licence)) for i in e.images))
            for e in entities
        ]


# -- response parsers: each raises MalformedResponseError naming the URL and the problem ----
def _json_object(response: HttpResponse) -> dict[str, Any]:
    data = response.json()
    if not isinstance(data, dict):
        raise MalformedResponseError(response.url, f"expected a JSON object, got {type(data).__name__}")
    if "error" in data and isinstance(data["error"], dict):
        error = data["error"]
        raise WikimediaApiError(response.url, f"API error {error.get('code', '?')}: {error.get('info', '')}")
    return data


def _parse_sparql(response: HttpResponse) -> list[dict[str, dict[str, str]]]:
    """SPARQL 1.1 JSON results: `head.vars` and `results.bindings`, each value typed."""
    data = _json_object(response)
    head, results = data.get("head"), data.get("results")
    if not isinstance(head, dict) or not isinstance(head.get("vars"), list):
        raise MalformedResponseError(response.url, "SPARQL results lack head.vars")
    if not isinstance(results, dict) or not isinstance(results.get("bindings"), list):
        raise MalformedResponseError(response.url, "SPARQL results lack results.bindings")
    names = set(head["vars"])
    for index, binding in enumerate(results["bindings"]):
        if not isinstance(binding, dict):
            raise MalformedResponseError(response.url, f"binding {index} is not an object")
        for var, value in binding.items():
            if var not in names:
                raise MalformedResponseError(response.url, f"binding {index} has ?{var}, not in head.vars")
            if not isinstance(value, dict) or value.get("type") not in ("uri", "literal", "bnode", "typed-literal"):
                raise MalformedResponseError(response.url, f"binding {index}: ?{var} has no valid 'type'")
            if not isinstance(value.get("value"), str):
                raise MalformedResponseError(response.url, f"binding {index}: ?{var} has no string 'value'")
        if "item" not in binding or not ENTITY_URI.match(binding["item"]["value"]):
            raise MalformedResponseError(response.url, f"binding {index}: ?item is missing or not a Wikidata entity URI")
    return results["bindings"]


def _entities_from_rows(rows: list[dict[str, dict[str, str]]], topic: str) -> list[SourceEntity]:
    """One entity per item (rows repeat an item once per image), best known first."""
    merged: dict[str, dict[str, Any]] = {}
    for row in rows:
        qid = ENTITY_URI.match(row["item"]["value"]).group(1)  # type: ignore[union-attr] - checked by the parser
        entry = merged.setdefault(qid, {"label": "", "description": "", "title": "", "images": [], "sitelinks": 0})
        entry["label"] = entry["label"] or row.get("label", {}).get("value", "")
        entry["description"] = entry["description"] or row.get("description", {}).get("value", "")
        if "article" in row and not entry["title"]:
            entry["title"] = title_from_article_url(row["article"]["value"])
        if "sitelinks" in row:
            entry["sitelinks"] = _int_or_zero(row["sitelinks"]["value"])
        if "image" in row:
            name = normalise_file_name(row["image"]["value"].rsplit("/", 1)[-1])
            if name and name not in entry["images"]:
                entry["images"].append(name)
    order = sorted(merged, key=lambda q: (-merged[q]["sitelinks"], int(q[1:])))
    return [
        SourceEntity(
            qid=qid,
            name=merged[qid]["label"],
            description=merged[qid]["description"],
            topic=topic,
            title=merged[qid]["title"],
            images=tuple(SourceImage(file_name=n, url=commons_file_url(n), origin="commons") for n in merged[qid]["images"]),
        )
        for qid in order
    ]


def _parse_summary(response: HttpResponse) -> dict[str, Any] | None:
    """A REST v1 page summary (`title`, `extract`, ...); None for a 404 (no such page)."""
    if response.status == 404:
        return None
    data = _json_object(response)
    for key in ("title", "extract"):
        if not isinstance(data.get(key), str):
            raise MalformedResponseError(response.url, f"page summary lacks a string {key!r}")
    for key in ("thumbnail", "originalimage"):
        if key in data and not (isinstance(data[key], dict) and isinstance(data[key].get("source"), str)):
            raise MalformedResponseError(response.url, f"page summary {key!r} has no 'source' URL")
    return data


def _parse_search(response: HttpResponse) -> list[tuple[str, str, str]]:
    """wbsearchentities: (id, label, description) of each hit of the `search` list, in order."""
    data = _json_object(response)
    hits = data.get("search")
    if not isinstance(hits, list):
        raise MalformedResponseError(response.url, "wbsearchentities response lacks a 'search' list")
    found = []
    for index, hit in enumerate(hits):
        qid = hit.get("id") if isinstance(hit, dict) else None
        if not isinstance(qid, str) or not QID.match(qid):
            raise MalformedResponseError(response.url, f"search result {index} has no item id (Q...)")
        label, description = hit.get("label", ""), hit.get("description", "")
        if not isinstance(label, str) or not isinstance(description, str):
            raise MalformedResponseError(response.url, f"search result {index} ({qid}): label/description not strings")
        found.append((qid, label, description))
    return found


def _parse_licences(response: HttpResponse) -> dict[str, str]:
    """Commons `prop=imageinfo` (formatversion 2): file name -> LicenseShortName, where given."""
    data = _json_object(response)
    pages = data.get("query", {}).get("pages") if isinstance(data.get("query"), dict) else None
    if not isinstance(pages, list):
        raise MalformedResponseError(response.url, "imageinfo response lacks query.pages (formatversion=2)")
    licences: dict[str, str] = {}
    for page in pages:
        if not isinstance(page, dict) or not isinstance(page.get("title"), str):
            raise MalformedResponseError(response.url, "imageinfo page without a title")
        for info in page.get("imageinfo", []) or []:
            value = (info.get("extmetadata", {}).get("LicenseShortName", {}) or {}).get("value")
            if isinstance(value, str) and value.strip():
                licences[normalise_file_name(page["title"])] = re.sub(r"<[^>]+>", "", value).strip()
    return licences


def _parse_image(response: HttpResponse) -> bytes:
    if not response.body.startswith(IMAGE_MAGIC):
        kind = response.header("content-type") or "unknown content type"
        raise MalformedResponseError(response.url, f"expected PNG/JPEG/GIF/WebP bytes, got {kind}")
    return response.body


# -- small helpers -----------------------------------------------------------------------------
def _search_tokens(name: str) -> list[str]:
    """The content words of a multi-word name (the tokens stage 3 compares), each worth a search."""
    words = tokens(name)
    return words if len(words) >= 2 else []


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _int_or_zero(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0

