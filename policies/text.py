"""The text analyzer for free-text features (contact-center reason text, search queries):
Russian and English text → a list of stemmed terms, one bag of words per text.

Steps, in order (docs/features.md, "The text analyzer"):

1. Unicode NFKC (full-width letters, ligatures and composed/decomposed accents become
   one form), lower case, ``ё`` → ``е``.
2. Words are maximal runs of Unicode letters and digits (``\\w`` less ``_``): every
   other character (punctuation, spaces, hyphens, emoji, underscores) separates words.
3. A word mixing Cyrillic and Latin letters is first repaired when it is mostly
   Cyrillic (Latin look-alikes typed by mistake: ``тapиф`` → ``тариф``); if still mixed,
   it is split where the script changes (``smsпакет`` → ``sms``, ``пакет``).
4. Words of digits only, words shorter than 2 characters and stopwords (a short list
   for each language) are dropped.
5. Each word is stemmed by its script: Cyrillic → Snowball Russian, Latin → Snowball
   English (Porter2), anything else is kept as it is.

Terms keep their first-occurrence order and repeat as often as the words do; they
contain letters and digits only, so they never hold a VW separator.
"""

from __future__ import annotations

import functools
import re
import unicodedata

import snowballstemmer

_WORD = re.compile(r"[^\W_]+")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_LATIN = re.compile(r"[a-z]")
_SCRIPT_CHANGE = re.compile(r"(?<=[a-z])(?=[\u0400-\u04ff])|(?<=[\u0400-\u04ff])(?=[a-z])")
# Latin letters that look like Cyrillic ones, after lower-casing (so "H" and "B" count).
_HOMOGLYPHS = str.maketrans("aceopxykmthb", "асеорхукмтнв")

RUSSIAN_STOPWORDS = frozenset("""
    а без бы был была были было быть в вам вас весь во вот все всё вы где да для до его её ее
    если есть ещё еще же за здесь и из или им их к как ко когда кто ли либо мне мной мы на над
    не него нее неё ни ним них но ну о об однако он она они оно от по под при про с со так
    также там то тоже того тот ты у уж уже чем что чтобы чтоб это этот эта эти этого этой эту
    я мой моя моё мое мои меня мною себя себе свой своя свою свои ведь
""".split())

ENGLISH_STOPWORDS = frozenset("""
    a about am an and are as at be been but by can could did do does for from had has have he
    her his how i if in into is it its me my no not of on or our she so than that the their them
    then there these they this those to too us was we were what when where which who why will
    with would you your
    don doesn didn isn aren wasn weren won wouldn couldn shouldn haven hasn ve ll re
""".split())

STOPWORDS = frozenset(w.replace("ё", "е") for w in RUSSIAN_STOPWORDS | ENGLISH_STOPWORDS)

_russian = snowballstemmer.stemmer("russian")
_english = snowballstemmer.stemmer("english")


def tokenize(text: str) -> list[str]:
    """Free text → stemmed terms, in order, repeats kept (see the module docstring)."""
    return list(_cached_terms(text) if len(text) <= _CACHED_TEXT_CHARS else _terms(text))


_CACHED_TEXT_CHARS = 256


@functools.lru_cache(maxsize=1 << 14)
def _cached_terms(text: str) -> tuple[str, ...]:
    """Search queries and short reason texts repeat: analyze each once."""
    return _terms(text)


def _terms(text: str) -> tuple[str, ...]:
    normalized = unicodedata.normalize("NFKC", text).lower().replace("ё", "е")
    terms: list[str] = []
    for word in _WORD.findall(normalized):
        for part in _unmix(word):
            term = _term(part)
            if term is not None:
                terms.append(term)
    return tuple(terms)


def _unmix(word: str) -> list[str]:
    if not (_CYRILLIC.search(word) and _LATIN.search(word)):
        return [word]
    if len(_CYRILLIC.findall(word)) >= len(_LATIN.findall(word)):
        repaired = word.translate(_HOMOGLYPHS)
        if not _LATIN.search(repaired):
            return [repaired]
    return _SCRIPT_CHANGE.split(word)


@functools.lru_cache(maxsize=1 << 16)
def _term(word: str) -> str | None:
    """One word → its stem, or None when the word is dropped."""
    if len(word) < 2 or word.isdigit() or word in STOPWORDS:
        return None
    if _CYRILLIC.search(word):
        stem = _russian.stemWord(word)
    elif _LATIN.search(word):
        stem = _english.stemWord(word)
    else:
        return word
    return stem if len(stem) >= 2 else word
