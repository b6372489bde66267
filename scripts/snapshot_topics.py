"""Our topics for the offline snapshot, and the rule that maps a Vital-Articles topic to one.

The paper names five topics but only one of them ("movies") is known to us, so the snapshot's
topics are our own choice, made so that entities with real pictures exist in several of them:

    nature               Vital topic "Biology and health sciences" (animals, plants, the body)
    geography            "Geography" (countries, cities, rivers, regions)
    science_technology   "Physical sciences", "Technology", "Mathematics" (planets, elements, vehicles)
    arts_culture         "Arts" (films: the paper's "movies" live here), "Everyday life" (food, sport, clothing)
    people               "People"
    society_history      "Society and social sciences", "History", "Philosophy and religion"
                         (a sixth topic the snapshot offers; M³EL-mini uses the first five)

The 1,000 "Uncategorized" articles (the Level-3 core: countries, planets, famous people) get a topic
from their short description by the keyword rules in `UNCATEGORIZED_RULES`, tried in order; an
article no rule matches goes to society_history. The rule that decided is stored with the entity.
"""
from __future__ import annotations

import re

OUR_TOPICS: tuple[str, ...] = ("nature", "geography", "science_technology", "arts_culture", "people", "society_history")

VITAL_TO_OURS: dict[str, str] = {
    "Biology and health sciences": "nature",
    "Geography": "geography",
    "Physical sciences": "science_technology",
    "Technology": "science_technology",
    "Mathematics": "science_technology",
    "Arts": "arts_culture",
    "Everyday life": "arts_culture",
    "People": "people",
    "Society and social sciences": "society_history",
    "History": "society_history",
    "Philosophy and religion": "society_history",
}

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
    ("geography", "a place word", r"\b(?:country|countries|city|capital|megacity|island|continent|ocean|sea|river|lake|"
     r"mountain|desert|region|province|peninsula|territory|rainforest|settlement|state in|states of)\b"),
    ("science_technology", "a science or technology word", r"\b(?:planet|star|galaxy|moon|sun|element|chemical|compound|"
     r"physical|physics|mathemati\w*|number|equation|geometr\w*|engine|machine|device|vehicle|computer|technology|energy|"
     r"power|electric\w*|metal|material|force|quantity|light|matter|tool|aircraft|weapon|software|internet)\b"),
    ("nature", "a living-world word", r"\b(?:animal|plant|species|organism|biolog\w*|disease|mammal|bird|fish|insect|tree|"
     r"fruit|cell|kingdom|ungulate|domesticated|crop|tuber|seed|human body|blood|infection|health|medic\w*|brain|immune|gene\w*)\b"),
    ("arts_culture", "an arts or everyday-life word", r"\b(?:music|art|arts|film|novel|painting|sport|game|food|dish|"
     r"drink|beverage|literature|poem|dance|theatre|genre|song|clothing|cuisine|photograph\w*)\b"),
)


def our_topic(vital_topic: str, description: str) -> tuple[str, str]:
    """(our topic, the rule that decided) for one article."""
    if vital_topic in VITAL_TO_OURS:
        return VITAL_TO_OURS[vital_topic], f"vital topic {vital_topic!r}"
    if vital_topic != "Uncategorized":
        raise ValueError(f"unknown Vital Articles topic {vital_topic!r}")
    for topic, rule, pattern in UNCATEGORIZED_RULES:
        if topic == "people" and re.search(_NOT_A_PERSON, description, flags=re.IGNORECASE):
            continue
        if re.search(pattern, description, flags=re.IGNORECASE):
            return topic, f"uncategorized: {rule}"
    return "society_history", "uncategorized: no rule matched"
