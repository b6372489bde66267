"""Our topics for the offline snapshot, and the rule that maps a Vital-Articles topic to one.

The paper names five topics but only one of them ("movies") is known to us, so the snapshot's
topics are our own choice, made so that every topic M³EL-mini uses has real pictures:

    nature               Vital topic "Biology and health sciences" (animals, plants, the body)
    countries            "Geography" articles that are countries (sovereign states: flags, maps)
    places               the rest of "Geography" (states, provinces, cities, rivers, regions)
    science_technology   "Physical sciences", "Technology", "Mathematics" (planets, elements, vehicles)
    culture_society      "Arts" (films: the paper's "movies" live here), "Everyday life" (food, sport,
                         clothing), "Society and social sciences", "History", "Philosophy and religion"
    people               "People" (a sixth topic the snapshot offers; M³EL-mini leaves it out because
                         its picture sources show almost no person: see book/data_card.md)

The 1,000 "Uncategorized" articles (the Level-3 core: countries, planets, famous people) get a topic
from their short description by the keyword rules in `UNCATEGORIZED_RULES`, tried in order; an
article no rule matches goes to culture_society. The rule that decided is stored with the entity.
"""
from __future__ import annotations

import re

OUR_TOPICS: tuple[str, ...] = ("nature", "countries", "places", "science_technology", "culture_society", "people")

VITAL_TO_OURS: dict[str, str] = {
    "Biology and health sciences": "nature",
    "Geography": "places",  # or "countries": see `geography_topic`
    "Physical sciences": "science_technology",
    "Technology": "science_technology",
    "Mathematics": "science_technology",
    "Arts": "culture_society",
    "Everyday life": "culture_society",
    "People": "people",
    "Society and social sciences": "culture_society",
    "History": "culture_society",
    "Philosophy and religion": "culture_society",
}
_COUNTRY = re.compile(r"\b(?:country|countries|nation|republic|kingdom|monarchy|principality|sultanate|emirate|"
                      r"city-state|microstate|sovereign)\b", flags=re.IGNORECASE)


def geography_topic(description: str) -> str:
    """A place is in "countries" when its short description says it is a country, else in "places"."""
    return "countries" if _COUNTRY.search(description) else "places"

# A person's short description nearly always carries a life span "(1879–1955)" or a reign.
_YEARS = r"\((?:c\.\s*)?(?:born\s+)?\d{1,4}(?:\s*BC)?(?:\s*[–-]\s*(?:c\.\s*)?\d{1,4}(?:\s*(?:BC|AD))?)?\)"
_RULERS = r"^(?:(?:first|second|third|\w+th)\s+)?(?:king|queen|emperor|empress|pharaoh|khan|sultan|pope|caliph|tsar|shah)\b"
_PERSON_WORDS = (
    r"\b(?:chemist|physicist|philosopher|composer|painter|artist|poet|writer|novelist|playwright|scientist|"
    r"mathematician|engineer|inventor|politician|statesman|explorer|singer|actor|actress|prophet|founder|"
    r"astronomer|biologist|naturalist|economist|general|leader|activist|businessman|aviator|sculptor)s?\b"
)

# Dynasties, empires and periods also carry year spans; they are not people.
_NOT_A_PERSON = r"\b(?:dynasty|civilization|empire|period|revolution|war|era|age|movement)\b"

UNCATEGORIZED_RULES: tuple[tuple[str, str, str], ...] = (
    ("people", "life span in the description", _YEARS),
    ("people", "a ruler's title", _RULERS),
    ("people", "a person's occupation", _PERSON_WORDS),
    ("places", "a place word", r"\b(?:country|countries|city|capital|megacity|island|continent|ocean|sea|river|lake|"
     r"mountain|desert|region|province|peninsula|territory|rainforest|settlement|state in|states of)\b"),
    ("science_technology", "a science or technology word", r"\b(?:planet|star|galaxy|moon|sun|element|chemical|compound|"
     r"physical|physics|mathemati\w*|number|equation|geometr\w*|engine|machine|device|vehicle|computer|technology|energy|"
     r"power|electric\w*|metal|material|force|quantity|light|matter|tool|aircraft|weapon|software|internet)\b"),
    ("nature", "a living-world word", r"\b(?:animal|plant|species|organism|biolog\w*|disease|mammal|bird|fish|insect|tree|"
     r"fruit|cell|kingdom|ungulate|domesticated|crop|tuber|seed|human body|blood|infection|health|medic\w*|brain|immune|gene\w*)\b"),
    ("culture_society", "an arts or everyday-life word", r"\b(?:music|art|arts|film|novel|painting|sport|game|food|dish|"
     r"drink|beverage|literature|poem|dance|theatre|genre|song|clothing|cuisine|photograph\w*)\b"),
)


def our_topic(vital_topic: str, description: str) -> tuple[str, str]:
    """(our topic, the rule that decided) for one article."""
    if vital_topic == "Geography":
        return geography_topic(description), "vital topic 'Geography', country or not by the description"
    if vital_topic in VITAL_TO_OURS:
        return VITAL_TO_OURS[vital_topic], f"vital topic {vital_topic!r}"
    if vital_topic != "Uncategorized":
        raise ValueError(f"unknown Vital Articles topic {vital_topic!r}")
    for topic, rule, pattern in UNCATEGORIZED_RULES:
        if topic == "people" and re.search(_NOT_A_PERSON, description, flags=re.IGNORECASE):
            continue
        if re.search(pattern, description, flags=re.IGNORECASE):
            return (geography_topic(description) if topic == "places" else topic), f"uncategorized: {rule}"
    return "culture_society", "uncategorized: no rule matched"


# WordNet's lexicographer file -> our topic; celestial objects go to science_technology, not places.
WORDNET_TO_OURS: dict[str, str] = {
    "person": "people",
    "location": "places",
    "object": "places",
    "animal": "nature",
    "plant": "nature",
    "body": "nature",
}
_CELESTIAL = re.compile(r"\b(?:planet|star|constellation|comet|asteroid|satellite|galaxy|moon|nebula|cluster)\b")


def wordnet_topic(lexname: str, hypernyms: tuple[str, ...]) -> tuple[str, str]:
    """(our topic, the rule that decided) for a WordNet instance synset."""
    if lexname == "object" and any(_CELESTIAL.search(h.lower()) for h in hypernyms):
        return "science_technology", "wordnet noun.object, a celestial instance"
    if lexname == "location":
        return geography_topic(" ".join(hypernyms)), "wordnet noun.location, country or not by its hypernym"
    return WORDNET_TO_OURS.get(lexname, "culture_society"), f"wordnet noun.{lexname}"
