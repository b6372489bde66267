"""Tests of the live Wikimedia source against recorded responses (tests/fixtures/wikimedia/).

`FakeWikimedia` is a transport (served through the client's requests `TransportAdapter`) that answers like the real services from those files: the
SPARQL endpoint, wbsearchentities, the Wikipedia REST summaries, the Commons
imageinfo API and Special:FilePath. Faults (429, 5xx, malformed bodies) are injected per URL.
The clock and sleep are fakes, so nothing waits and nothing touches the network.
"""
from __future__ import annotations

import hashlib
import json
import re
import urllib.parse
from pathlib import Path

import pytest

from m3el_lib.construction.http import HttpClient, HttpRequest, HttpResponse, MalformedResponseError
from m3el_lib.construction.source import KnowledgeSource, SourceImage
from m3el_lib.construction.wikimedia import (
    TOPIC_CLASSES,
    WikimediaApiError,
    WikimediaSource,
    commons_file_from_upload_url,
    normalise_file_name,
    title_from_article_url,
    topic_query,
)
from fakes import FakeClock

FIXTURES = Path(__file__).parent / "fixtures" / "wikimedia"
JSON = {"content-type": "application/json; charset=utf-8"}


def load(relative: str) -> dict:
    return json.loads((FIXTURES / relative).read_text(encoding="utf-8"))


class FakeWikimedia:
    """A transport that serves the recorded responses, with faults injected by URL substring."""

    def __init__(self) -> None:
        self.requests: list[HttpRequest] = []
        self.faults: list[tuple[str, HttpResponse]] = []

    def fail(self, url_part: str, *responses: HttpResponse) -> None:
        """The next requests whose URL contains `url_part` get `responses`, in order."""
        self.faults.extend((url_part, response) for response in responses)

    def urls(self, part: str = "") -> list[str]:
        return [r.url for r in self.requests if part in r.url]

    def __call__(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        for index, (part, response) in enumerate(self.faults):
            if part in request.url:
                del self.faults[index]
                return HttpResponse(response.status, request.url, response.body, response.headers)
        status, body, headers = self.route(request.url)
        return HttpResponse(status, request.url, body, headers)

    def route(self, url: str) -> tuple[int, bytes, dict[str, str]]:
        parts = urllib.parse.urlsplit(url)
        query = dict(urllib.parse.parse_qsl(parts.query))
        if parts.netloc == "query.wikidata.org" and "VALUES ?item" in query["query"]:
            ids = re.search(r"VALUES \?item \{([^}]*)\}", query["query"]).group(1).split()
            wanted = {"http://www.wikidata.org/entity/" + i.removeprefix("wd:") for i in ids}
            data = load("sparql/items.json")
            data["results"]["bindings"] = [b for b in data["results"]["bindings"] if b["item"]["value"] in wanted]
            return 200, json.dumps(data).encode(), {"content-type": "application/sparql-results+json"}
        if parts.netloc == "query.wikidata.org":
            class_qid = re.search(r"wdt:P31 wd:(Q\d+)", query["query"]).group(1)
            path = FIXTURES / "sparql" / f"{class_qid}.json"
            data = json.loads(path.read_text()) if path.exists() else {"head": {"vars": ["item"]}, "results": {"bindings": []}}
            limit = int(re.search(r"LIMIT (\d+)", query["query"]).group(1))
            kept = list(dict.fromkeys(b["item"]["value"] for b in data["results"]["bindings"]))[:limit]
            data["results"]["bindings"] = [b for b in data["results"]["bindings"] if b["item"]["value"] in kept]
            return 200, json.dumps(data).encode(), {"content-type": "application/sparql-results+json"}
        if parts.netloc == "www.wikidata.org" and query.get("action") == "wbsearchentities":
            path = FIXTURES / "search" / (query["search"].lower().replace(" ", "_") + ".json")
            data = json.loads(path.read_text()) if path.exists() else {"searchinfo": {"search": query["search"]}, "search": [], "success": 1}
            data["search"] = data["search"][: int(query["limit"])]
            return 200, json.dumps(data).encode(), JSON
        if parts.netloc == "commons.wikimedia.org" and parts.path == "/w/api.php":
            pages = {normalise_file_name(p["title"]): p for p in load("commons_imageinfo.json")["query"]["pages"]}
            wanted = [normalise_file_name(t) for t in query["titles"].split("|")]
            answer = [pages.get(n, {"ns": 6, "title": f"File:{n}", "missing": True}) for n in wanted]
            return 200, json.dumps({"batchcomplete": True, "query": {"pages": answer}}).encode(), JSON
        if parts.netloc == "commons.wikimedia.org" and parts.path.startswith("/wiki/Special:FilePath/"):
            name = urllib.parse.unquote(parts.path.rsplit("/", 1)[1])
            colour = ("red", "green", "blue")[hashlib.sha256(name.encode()).digest()[0] % 3]
            return 200, (FIXTURES / "images" / f"{colour}.png").read_bytes(), {"content-type": "image/png"}
        if parts.netloc == "en.wikipedia.org" and parts.path.startswith("/api/rest_v1/page/summary/"):
            title = urllib.parse.unquote(parts.path.rsplit("/", 1)[1])
            path = FIXTURES / "summary" / f"{title}.json"
            if path.exists():
                return 200, path.read_bytes(), JSON
            missing = {"type": "https://mediawiki.org/wiki/HyperSwitch/errors/not_found", "title": "Not found.", "method": "get", "uri": parts.path}
            return 404, json.dumps(missing).encode(), {"content-type": "application/problem+json"}
        return 404, b"no such fixture", {}


@pytest.fixture
def fake() -> FakeWikimedia:
    return FakeWikimedia()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=0.0)


def make_source(fake: FakeWikimedia, clock: FakeClock, cache: Path, **options) -> WikimediaSource:
    client = HttpClient(
        transport=fake, cache_dir=cache, min_interval=options.pop("min_interval", 0.0), clock=clock.time, sleep=clock.sleep
    )
    return WikimediaSource(client=client, **options)


def response(status: int, body: bytes = b"", **headers: str) -> HttpResponse:
    return HttpResponse(status, "", body, {k.replace("_", "-"): v for k, v in headers.items()})


# -- the interface -------------------------------------------------------------------------------
def test_constructible_with_defaults_and_implements_the_interface():
    source = WikimediaSource()
    assert isinstance(source, KnowledgeSource)
    assert (source.name, source.kb) == ("wikimedia", "wikidata")
    assert source.topics() == ["movies", "albums", "cities", "paintings", "mountains"]
    assert TOPIC_CLASSES["movies"].qid == "Q11424"
    versions = source.versions()
    assert "Q11424" in versions["topic_classes"] and all(isinstance(v, str) for v in versions.values())


def test_unknown_topic_is_a_clear_error(fake, clock, tmp_path):
    with pytest.raises(ValueError, match="unknown topic 'cars'; expected one of movies"):
        make_source(fake, clock, tmp_path).topic_entities("cars")
    assert fake.requests == []


def test_topic_query_selects_direct_instances_best_known_first():
    query = topic_query("Q11424", 25)
    assert "?item wdt:P31 wd:Q11424" in query and "LIMIT 25" in query
    assert "ORDER BY DESC(?sitelinks) ?item" in query and "wdt:P18 ?image" in query
    assert "<https://en.wikipedia.org/>" in query
    with pytest.raises(ValueError, match="not a Wikidata class id"):
        topic_query("Q1; DROP", 5)


def test_url_helpers():
    assert title_from_article_url("https://en.wikipedia.org/wiki/Casablanca_(film)") == "Casablanca (film)"
    assert title_from_article_url("https://en.wikipedia.org/wiki/Caf%C3%A9") == "Café"
    thumb = "https://upload.wikimedia.org/wikipedia/commons/thumb/a/ab/Paris_Night.jpg/320px-Paris_Night.jpg"
    assert commons_file_from_upload_url(thumb) == "Paris Night.jpg"
    assert commons_file_from_upload_url("https://upload.wikimedia.org/wikipedia/en/a/ab/Poster.jpg") is None
    assert normalise_file_name("File:paris_Night.jpg") == "Paris Night.jpg"


# -- a normal topic query ------------------------------------------------------------------------
def test_movies_topic_query(fake, clock, tmp_path):
    source = make_source(fake, clock, tmp_path)
    movies = source.topic_entities("movies")
    assert [m.qid for m in movies] == ["Q44578", "Q17738", "Q132689", "Q47703"]  # sitelinks, then id
    by_id = {m.qid: m for m in movies}

    casablanca = by_id["Q132689"]
    assert (casablanca.name, casablanca.description, casablanca.title) == (
        "Casablanca", "1942 film by Michael Curtiz", "Casablanca (film)"
    )
    assert casablanca.topic == "movies"
    assert casablanca.extract.startswith("Casablanca is a 1942 American romantic drama film")
    # Two P18 rows merged; the summary's image is one of them, so nothing is added.
    assert [i.file_name for i in casablanca.images] == ["Casablanca, Rick's Cafe Americain set.jpg", "Bogart and Bergman in Casablanca.jpg"]
    first = casablanca.images[0]
    assert first.origin == "commons" and first.licence
    assert first.url == "https://commons.wikimedia.org/wiki/Special:FilePath/Casablanca%2C_Rick%27s_Cafe_Americain_set.jpg"

    # The summary's Commons image is a second picture of Star Wars; its licence comes from Commons.
    star_wars = by_id["Q17738"]
    assert [i.file_name for i in star_wars.images] == ["Star Wars 1977 premiere crowd.jpg", "Star Wars 1977 theatrical trailer still.jpg"]
    assert all(i.licence for i in star_wars.images)

    # Titanic: no P18, and the summary's image is a non-free English Wikipedia file: skipped.
    assert by_id["Q44578"].images == () and by_id["Q44578"].extract.startswith("Titanic is a 1997")
    # The Godfather: the summary page 404s, so no lead paragraph (the stages count it).
    assert by_id["Q47703"].extract == "" and by_id["Q47703"].images

    sparql = fake.urls("query.wikidata.org")
    assert len(sparql) == 1 and "wd%3AQ11424" in sparql[0] and "LIMIT+2000" in sparql[0]
    assert all(r.headers["User-Agent"].startswith("m3el-companion/") for r in fake.requests)
    assert len(fake.urls("/page/summary/")) == 4 and len(fake.urls("prop=imageinfo")) == 1


def test_limit_and_entity_without_article(fake, clock, tmp_path):
    source = make_source(fake, clock, tmp_path)
    cities = source.topic_entities("cities", limit=4)
    assert [c.name for c in cities] == ["Paris", "London", "Berlin", "Rome"]
    assert "LIMIT+4" in fake.urls("query.wikidata.org")[0]
    rome = cities[3]
    assert rome.title == "" and rome.extract == "" and rome.images[0].file_name == "Colosseum in Rome.jpg"
    assert not fake.urls("summary/Rome")  # no article: no summary request
    london = cities[1]
    assert [i.file_name for i in london.images] == ["London Skyline.jpg", "London Eye at dusk.jpg"]
    assert cities[2].images[0].licence  # Berlin's summary has no image; its P18 still has a licence


def test_licences_can_be_skipped(fake, clock, tmp_path):
    source = make_source(fake, clock, tmp_path, fetch_licences=False)
    movies = source.topic_entities("movies")
    assert not fake.urls("commons.wikimedia.org/w/api.php")
    assert all(i.licence == "" for m in movies for i in m.images)


# -- same-name search ----------------------------------------------------------------------------
def test_search_name_returns_same_name_entities_best_first(fake, clock, tmp_path):
    source = make_source(fake, clock, tmp_path)
    found = source.search_name("Casablanca", 5)
    assert [(e.qid, e.description) for e in found] == [
        ("Q7903", "largest city in Morocco"),
        ("Q132689", "1942 film by Michael Curtiz"),
    ]
    assert found[0].title == "Casablanca" and found[0].images[0].file_name == "Casablanca Hassan II Mosque.jpg"
    assert found[0].images[0].licence
    search = fake.urls("wbsearchentities")
    assert len(search) == 1 and "search=Casablanca" in search[0]
    details = fake.urls("query.wikidata.org")
    assert len(details) == 1 and "wd%3AQ7903+wd%3AQ132689" in details[0]


def test_search_name_adds_entities_sharing_a_word(fake, clock, tmp_path):
    source = make_source(fake, clock, tmp_path)
    found = source.search_name("The Godfather", 10)
    assert [e.qid for e in found] == ["Q47703", "Q184768"]
    assert [e.qid for e in source.search_name("Star Wars", 10)] == ["Q462", "Q17738"]
    queries = [dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(u).query))["search"] for u in fake.urls("wbsearchentities")]
    # "The Godfather" has one content word, so no word searches; "Star Wars" has two.
    assert queries == ["The Godfather", "Star Wars", "star", "wars"]
    # A file without a licence field keeps an empty licence rather than a guessed one.
    franchise = source.search_name("Star Wars", 1)[0]
    assert franchise.qid == "Q462" and franchise.images[0].licence == ""


def test_search_name_respects_the_limit_and_keeps_unknown_items(fake, clock, tmp_path):
    source = make_source(fake, clock, tmp_path)
    assert [e.qid for e in source.search_name("London", 2)] == ["Q84", "Q92561"]
    assert "limit=2" in fake.urls("wbsearchentities")[0]
    hits = [{"id": "Q90", "label": "Paris", "description": "capital of France"}, {"id": "Q999999999", "label": "Paris"}]
    fake.fail("wbsearchentities", response(200, json.dumps({"search": hits}).encode()))
    found = source.search_name("Paris", 5)
    # An item the query service knows nothing more about keeps what the search said of it.
    assert [(e.qid, e.description, e.images) for e in found][1] == ("Q999999999", "", ())
    assert found[0].images[0].file_name == "Paris Night.jpg" and found[0].title == "Paris"
    assert source.search_name("", 5) == [] and source.search_name("Paris", 0) == []


# -- images --------------------------------------------------------------------------------------
def test_image_bytes_fetches_a_commons_thumbnail(fake, clock, tmp_path):
    source = make_source(fake, clock, tmp_path, thumb_width=320)
    image = source.topic_entities("cities", limit=1)[0].images[0]
    data = source.image_bytes(image)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert fake.urls("Special:FilePath")[-1] == "https://commons.wikimedia.org/wiki/Special:FilePath/Paris_Night.jpg?width=320"


def test_image_bytes_rejects_a_non_image(fake, clock, tmp_path):
    source = make_source(fake, clock, tmp_path)
    fake.fail("Special:FilePath", response(200, b"<!DOCTYPE html><title>Error</title>", content_type="text/html"))
    with pytest.raises(MalformedResponseError, match=r"expected PNG/JPEG/GIF/WebP bytes, got text/html \(https://commons"):
        source.image_bytes(SourceImage(file_name="Paris Night.jpg", url="", origin="commons"))


# -- retries through the source ------------------------------------------------------------------
def test_429_then_success(fake, clock, tmp_path):
    source = make_source(fake, clock, tmp_path)
    fake.fail("query.wikidata.org", response(429, b"Too Many Requests", retry_after="30"))
    assert len(source.topic_entities("movies")) == 4
    assert len(fake.urls("query.wikidata.org")) == 2
    assert clock.sleeps == [30.0]


def test_500_twice_then_success(fake, clock, tmp_path):
    source = make_source(fake, clock, tmp_path)
    fake.fail("summary/Casablanca_%28film%29", response(500, b"upstream"), response(502, b"bad gateway"))
    movies = source.topic_entities("movies")
    casablanca = next(m for m in movies if m.qid == "Q132689")
    assert casablanca.extract.startswith("Casablanca is a 1942")
    assert len(fake.urls("summary/Casablanca_%28film%29")) == 3
    assert clock.sleeps == [2.0]  # urllib3: the first retry at once, then 1 s * 2**1


# -- malformed responses -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url_part", "body", "problem"),
    [
        ("query.wikidata.org", b'{"head": {"vars": ["item"]}}', "SPARQL results lack results.bindings"),
        ("query.wikidata.org", b"<html>Query timeout</html>", "body is not JSON"),
        ("query.wikidata.org", b'{"head": {"vars": ["item"]}, "results": {"bindings": [{"item": {"type": "uri", "value": "https://example.org/x"}}]}}',
         "binding 0: ?item is missing or not a Wikidata entity URI"),
        ("query.wikidata.org", b'{"head": {"vars": ["item"]}, "results": {"bindings": [{"item": {"value": "http://www.wikidata.org/entity/Q1"}}]}}',
         "binding 0: ?item has no valid 'type'"),
        ("summary/Casablanca_%28film%29", b'{"title": "Casablanca (film)"}', "page summary lacks a string 'extract'"),
        ("summary/Casablanca_%28film%29", b'{"title": "x", "extract": "y", "originalimage": "z.jpg"}', "page summary 'originalimage' has no 'source' URL"),
        ("prop=imageinfo", b'{"query": {"pages": {"-1": {}}}}', "imageinfo response lacks query.pages"),
    ],
)
def test_malformed_topic_responses_name_the_url(fake, clock, tmp_path, url_part, body, problem):
    source = make_source(fake, clock, tmp_path)
    fake.fail(url_part, response(200, body))
    with pytest.raises(MalformedResponseError) as caught:
        source.topic_entities("movies")
    assert problem in str(caught.value)
    assert url_part in caught.value.url and caught.value.url in str(caught.value)


def test_malformed_search_responses(fake, clock, tmp_path):
    source = make_source(fake, clock, tmp_path)
    fake.fail("wbsearchentities", response(200, b'{"searchinfo": {"search": "Paris"}}'))
    with pytest.raises(MalformedResponseError, match="lacks a 'search' list"):
        source.search_name("Paris", 3)
    fake.fail("wbsearchentities", response(200, b'{"search": [{"id": "Q90", "label": ["Paris"]}]}'))
    with pytest.raises(MalformedResponseError, match=r"search result 0 \(Q90\): label/description not strings"):
        source.search_name("Paris", 3)
    fake.fail("query.wikidata.org", response(200, b'{"head": {"vars": ["item"]}, "results": {}}'))
    with pytest.raises(MalformedResponseError, match="SPARQL results lack results.bindings"):
        source.search_name("Paris", 3)
    fake.fail("wbsearchentities", response(200, b'{"error": {"code": "badvalue", "info": "Unrecognized value for parameter \\"type\\""}}'))
    with pytest.raises(WikimediaApiError, match=r"API error badvalue: Unrecognized value .*\(https://www.wikidata.org/w/api.php\?"):
        source.search_name("Berlin", 3)  # "Paris" itself was searched (and cached) above


def test_a_malformed_response_is_not_cached(fake, clock, tmp_path):
    source = make_source(fake, clock, tmp_path)
    fake.fail("query.wikidata.org", response(200, b"<html>maintenance</html>"))
    with pytest.raises(MalformedResponseError):
        source.topic_entities("movies")
    assert len(source.topic_entities("movies")) == 4  # asked again, and this time well-formed


# -- cache and rate limit ------------------------------------------------------------------------
def test_the_cache_makes_a_second_run_issue_no_request(fake, clock, tmp_path):
    first = make_source(fake, clock, tmp_path / "cache")
    run = (first.topic_entities("movies"), first.search_name("Casablanca", 3), first.image_bytes(first.topic_entities("cities", 1)[0].images[0]))
    assert fake.requests
    again = FakeWikimedia()
    second = make_source(again, FakeClock(start=0.0), tmp_path / "cache")
    rerun = (second.topic_entities("movies"), second.search_name("Casablanca", 3), second.image_bytes(second.topic_entities("cities", 1)[0].images[0]))
    assert rerun == run
    assert again.requests == []


def test_an_interrupted_run_resumes_from_the_cache(fake, clock, tmp_path):
    source = make_source(fake, clock, tmp_path)
    fake.fail("summary/The_Godfather", *[response(503)] * 6)  # the run dies on the 4th summary
    with pytest.raises(Exception, match="gave up after 6 attempts"):
        source.topic_entities("movies")
    done_before = len(fake.urls("/page/summary/"))
    fake.requests.clear()
    assert len(source.topic_entities("movies")) == 4
    # Only the summary that failed is asked again; the SPARQL query and other pages come from the cache.
    assert fake.urls("The_Godfather") and all("The_Godfather" in u or "imageinfo" in u for u in fake.urls())
    assert done_before == 4 + 5  # 3 good pages, then 6 attempts at the last one


def test_the_rate_limiter_spaces_requests(fake, clock, tmp_path):
    starts: list[float] = []

    def timed(request: HttpRequest) -> HttpResponse:
        starts.append(clock.now)
        clock.now += 0.1  # each request takes 100 ms
        return fake(request)

    client = HttpClient(transport=timed, cache_dir=tmp_path, min_interval=1.0, clock=clock.time, sleep=clock.sleep)
    WikimediaSource(client=client).topic_entities("movies")
    assert len(starts) == 6  # SPARQL, 4 summaries, 1 imageinfo
    assert all(b - a >= 1.0 - 1e-9 for a, b in zip(starts, starts[1:]))
    assert clock.sleeps == [pytest.approx(0.9)] * 5


# -- end to end through build_dataset --------------------------------------------------------------
def build(source: WikimediaSource, out: Path, **options) -> dict:
    from m3el_lib.construction.build import build_dataset

    settings = {"topics": ["movies", "cities"], "per_topic": 5, "candidates": 3, "seed": 0, "progress": False, **options}
    return build_dataset(source, out, **settings)


def test_build_dataset_over_recorded_responses_writes_a_valid_dataset(fake, clock, tmp_path):
    from m3el_lib.data.io import load_dataset

    out = tmp_path / "out"
    manifest = build(make_source(fake, clock, tmp_path / "cache"), out)
    dataset = load_dataset(out)  # strict: raises on any bad record
    assert len(dataset.instances) == manifest["counts"]["instances"] > 0
    assert {i.kb for i in dataset.instances} == {"wikidata"}
    assert {i.topic for i in dataset.instances} == {"movies", "cities"}
    assert all(len(i.candidates) == 4 for i in dataset.instances)
    assert manifest["source"]["name"] == "wikimedia" and "Q11424" in manifest["source"]["versions"]["topic_classes"]
    # The Godfather (summary 404) and Rome (no article) have no lead paragraph: counted, not dropped silently.
    assert manifest["entities"]["skipped_ids"] == {"movies": {"missing_text": ["Q47703"]}, "cities": {"missing_text": ["Q220"]}}
    casablanca = next(i for i in dataset.instances if i.qid == "Q7903")
    assert "Q132689" in {c.qid for c in casablanca.candidates}  # the film is a same-name candidate of the city
    for instance in dataset.instances:
        for candidate in instance.candidates:
            if candidate.image is not None:
                assert (out / candidate.image.local_path).read_bytes().startswith(b"\x89PNG")
    # Same recorded responses, same seed: the same dataset (checksum), now from the HTTP cache alone.
    again = FakeWikimedia()
    manifest2 = build(make_source(again, FakeClock(start=0.0), tmp_path / "cache"), tmp_path / "out2")
    assert manifest2["checksum"] == manifest["checksum"] and again.requests == []


def test_build_dataset_with_a_malformed_response_writes_nothing(fake, clock, tmp_path):
    out = tmp_path / "out"
    fake.fail("summary/Casablanca", response(200, b'{"title": "Casablanca"}'))  # no 'extract'
    with pytest.raises(MalformedResponseError, match=r"page summary lacks a string 'extract' \(https://en.wikipedia.org/api/rest_v1/page/summary/Casablanca"):
        build(make_source(fake, clock, tmp_path / "cache"), out)
    assert not out.exists() or not any(out.iterdir())


def test_a_failed_rebuild_leaves_the_previous_dataset_intact(fake, clock, tmp_path):
    from m3el_lib.data.io import dataset_checksum

    out = tmp_path / "out"
    build(make_source(fake, clock, tmp_path / "cache"), out)
    before = dataset_checksum(out)
    broken = FakeWikimedia()
    broken.fail("query.wikidata.org", response(200, b"<html>upstream timeout</html>"))
    with pytest.raises(MalformedResponseError, match=r"body is not JSON .*\(https://query.wikidata.org/sparql\?"):
        build(make_source(broken, FakeClock(start=0.0), tmp_path / "fresh-cache"), out, seed=1)
    assert dataset_checksum(out) == before


def test_an_interrupted_build_resumes_without_asking_again(fake, clock, tmp_path):
    out = tmp_path / "out"
    fake.fail("wd%3AQ515", *[response(503)] * 6)  # the cities query fails for good, after movies is done
    with pytest.raises(Exception, match="gave up after 6 attempts"):
        build(make_source(fake, clock, tmp_path / "cache"), out)
    assert not out.exists()
    resumed = FakeWikimedia()
    build(make_source(resumed, FakeClock(start=0.0), tmp_path / "cache"), out)
    assert resumed.urls("wd%3AQ515")  # the query that failed is asked again ...
    assert not resumed.urls("wd%3AQ11424") and not resumed.urls("summary/Titanic")  # ... what was done is not
    assert out.exists()


def test_cli_reports_an_unreachable_live_source_in_one_line(tmp_path, monkeypatch, capsys):
    from m3el_lib.cli import main

    monkeypatch.setenv("M3EL_OFFLINE", "1")
    code = main(["build-dataset", "--source", "wikimedia", "--out", str(tmp_path / "live"), "--per-topic", "2",
                 "--cache", str(tmp_path / "cache")])
    assert code == 1
    assert "query.wikidata.org" in capsys.readouterr().err
    assert not (tmp_path / "live").exists()
