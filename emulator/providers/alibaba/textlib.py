"""Custom text libraries (seed document 003 is the spec): term and text-pattern libraries, each a
blacklist, whitelist or review list, and the matcher text scans run against them.

- Terms: ``A&B`` hits when the text contains A and B; ``A~B`` when it contains A and not B; both
  operators together with every ``&`` before any ``~`` (``A&B~C`` valid, ``A~C&B`` not). At most 50
  characters including operators; none of the excluded characters (below), full- or half-width.
- Text patterns: 10 to 4,000 characters; a text hits a pattern when their *similarity* reaches the
  threshold (default 0.8). Similarity is the Jaccard index of the two texts' sets of character
  bigrams (after dropping whitespace): |A ∩ B| / |A ∪ B|. The provider documents no measure; this one
  is simple to reason about and makes an identical or lightly edited text hit.
- Limits: 10 user-created libraries per account, names of at most 20 characters, 10,000 terms or
  patterns per library.

All the atoms of every term library of an account go into one Aho-Corasick automaton (pyahocorasick),
rebuilt once per library change, so a scan costs one pass over the text whatever the number of terms.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import ahocorasick

from ...errors import InvalidInput

LibKind = Literal["term", "pattern"]
ListType = Literal["blacklist", "whitelist", "review"]

MAX_LIBRARIES = 10
MAX_NAME = 20
MAX_ITEMS = 10_000
MAX_TERM = 50
PATTERN_MIN, PATTERN_MAX = 10, 4_000
DEFAULT_SIMILARITY = 0.8

_HALF = "@#$%^*()<>/?,.;_+-='\" \t"
# The full-width forms of the same characters (U+FF01..U+FF5E mirror ASCII 0x21..0x7E) and the
# ideographic space.
_FULL = "".join(chr(ord(c) + 0xFEE0) for c in _HALF if c not in " \t") + "\u3000"
EXCLUDED = frozenset(_HALF + _FULL)


class LibraryError(InvalidInput):
    """A library or item breaks a rule; ``code`` is the error code answered for it."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Term:
    text: str
    positives: tuple[str, ...]
    negatives: tuple[str, ...]


def parse_term(text: str) -> Term:
    if not isinstance(text, str) or not text:
        raise LibraryError("InvalidKeyword", "a term must be a non-empty string")
    if len(text) > MAX_TERM:
        raise LibraryError(
            "InvalidKeyword", f"term {text!r} is {len(text)} characters, over {MAX_TERM} (operators count)"
        )
    bad = sorted({c for c in text if c in EXCLUDED})
    if bad:
        raise LibraryError("InvalidKeyword", f"term {text!r} contains excluded characters: {''.join(bad)!r}")
    head, tilde, tail = text.partition("~")
    if "&" in tail:
        raise LibraryError("InvalidKeyword", f"term {text!r}: every '&' must come before any '~'")
    positives = tuple(head.split("&"))
    negatives = tuple(tail.split("~")) if tilde else ()
    if any(not atom for atom in positives + negatives):
        raise LibraryError("InvalidKeyword", f"term {text!r}: an operator needs a word on each side")
    return Term(text, positives, negatives)


def check_pattern(text: str) -> str:
    if not isinstance(text, str) or not PATTERN_MIN <= len(text) <= PATTERN_MAX:
        size = len(text) if isinstance(text, str) else "not a string"
        raise LibraryError(
            "InvalidTextPattern", f"a text pattern is {PATTERN_MIN} to {PATTERN_MAX} characters, not {size}"
        )
    return text


def bigrams(text: str) -> frozenset[str]:
    squeezed = "".join(text.split())
    if len(squeezed) < 2:
        return frozenset({squeezed}) if squeezed else frozenset()
    return frozenset(squeezed[i : i + 2] for i in range(len(squeezed) - 1))


def similarity(a: str, b: str) -> float:
    """The Jaccard index of the two texts' character-bigram sets."""
    sa, sb = bigrams(a), bigrams(b)
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


@dataclass
class Library:
    code: str
    name: str
    kind: LibKind
    list_type: ListType
    items: dict[str, Term | str] = field(default_factory=dict)
    enabled: bool = True

    def to_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "name": self.name,
            "kind": self.kind,
            "listType": self.list_type,
            "enabled": self.enabled,
            "count": len(self.items),
        }


@dataclass(frozen=True, slots=True)
class Hit:
    library: Library
    item: str
    #: The words found in the text (for terms: the positive atoms; for patterns: the pattern).
    words: tuple[str, ...]
    similarity: float | None = None


class TextLibraries:
    """One account's custom text libraries and their matchers."""

    def __init__(self, similarity_threshold: float = DEFAULT_SIMILARITY) -> None:
        self.threshold = similarity_threshold
        self._libs: dict[str, Library] = {}
        self._codes = itertools.count(1)
        self._automaton: ahocorasick.Automaton | None = None
        self._term_index: dict[str, list[tuple[Library, Term]]] = {}
        self._pattern_index: dict[str, set[tuple[str, str]]] | None = None
        self._pattern_sizes: dict[tuple[str, str], int] = {}

    # -- management ----------------------------------------------------------------------------

    @property
    def libraries(self) -> list[Library]:
        return list(self._libs.values())

    def get(self, code: str) -> Library:
        lib = self._libs.get(code)
        if lib is None:
            raise LibraryError("KeywordLibNotFound", f"no text library {code!r}")
        return lib

    def create(self, name: str, kind: str, list_type: str) -> Library:
        if not isinstance(name, str) or not name.strip():
            raise LibraryError("InvalidParameter", "name is required")
        if len(name) > MAX_NAME:
            raise LibraryError("InvalidParameter", f"name is {len(name)} characters, over {MAX_NAME}")
        if kind not in ("term", "pattern"):
            raise LibraryError("InvalidParameter", "kind must be 'term' or 'pattern'")
        if list_type not in ("blacklist", "whitelist", "review"):
            raise LibraryError("InvalidParameter", "listType must be 'blacklist', 'whitelist' or 'review'")
        if len(self._libs) >= MAX_LIBRARIES:
            raise LibraryError("KeywordLibCountExceeded", f"an account has at most {MAX_LIBRARIES} libraries")
        if any(lib.name == name for lib in self._libs.values()):
            raise LibraryError("KeywordLibNameDuplicated", f"a library named {name!r} exists")
        lib = Library(f"lib{next(self._codes)}", name, kind, list_type)  # type: ignore[arg-type]
        self._libs[lib.code] = lib
        return lib

    def delete(self, code: str) -> None:
        self.get(code)
        del self._libs[code]
        self._changed()

    def add(self, code: str, items: Iterable[str]) -> int:
        """Add terms or patterns, all or nothing; returns how many were new."""
        lib = self.get(code)
        parsed: dict[str, Term | str] = {}
        for item in items:
            parsed[item if isinstance(item, str) else str(item)] = (
                parse_term(item) if lib.kind == "term" else check_pattern(item)
            )
        new = [k for k in parsed if k not in lib.items]
        if len(lib.items) + len(new) > MAX_ITEMS:
            raise LibraryError(
                "KeywordCountExceeded", f"a library holds at most {MAX_ITEMS} items ({len(lib.items)} now)"
            )
        lib.items.update(parsed)
        self._changed()
        return len(new)

    def remove(self, code: str, items: Iterable[str]) -> int:
        lib = self.get(code)
        gone = sum(1 for item in items if lib.items.pop(item, None) is not None)
        self._changed()
        return gone

    def _changed(self) -> None:
        self._automaton = None
        self._pattern_index = None

    # -- matching ------------------------------------------------------------------------------

    def _build_terms(self) -> ahocorasick.Automaton | None:
        index: dict[str, list[tuple[Library, Term]]] = defaultdict(list)
        atoms: set[str] = set()
        for lib in self._libs.values():
            if lib.kind != "term" or not lib.enabled:
                continue
            for term in lib.items.values():
                assert isinstance(term, Term)
                index[term.positives[0]].append((lib, term))
                atoms.update(term.positives)
                atoms.update(term.negatives)
        self._term_index = dict(index)
        if not atoms:
            return None
        automaton = ahocorasick.Automaton()
        for atom in atoms:
            automaton.add_word(atom, atom)
        automaton.make_automaton()
        return automaton

    def _build_patterns(self) -> dict[str, set[tuple[str, str]]]:
        index: dict[str, set[tuple[str, str]]] = defaultdict(set)
        self._pattern_sizes = {}
        for lib in self._libs.values():
            if lib.kind == "pattern" and lib.enabled:
                for pattern in lib.items:
                    grams = bigrams(pattern)
                    self._pattern_sizes[(lib.code, pattern)] = len(grams)
                    for gram in grams:
                        index[gram].add((lib.code, pattern))
        return dict(index)

    def scan(self, text: str) -> list[Hit]:
        """Every term and pattern the text hits."""
        hits: list[Hit] = []
        if self._automaton is None:
            self._automaton = self._build_terms() or _EMPTY
        if self._automaton is not _EMPTY:
            found = {atom for _, atom in self._automaton.iter(text)}
            for atom in found:
                for lib, term in self._term_index.get(atom, ()):
                    if all(p in found for p in term.positives) and not any(
                        n in found for n in term.negatives
                    ):
                        hits.append(Hit(lib, term.text, term.positives))
        if self._pattern_index is None:
            self._pattern_index = self._build_patterns()
        if self._pattern_index:
            grams = bigrams(text)
            overlap: dict[tuple[str, str], int] = defaultdict(int)
            for gram in grams:
                for key in self._pattern_index.get(gram, ()):
                    overlap[key] += 1
            for (code, pattern), common in overlap.items():
                union = len(grams) + self._pattern_sizes[(code, pattern)] - common
                score = common / union if union else 1.0
                if score >= self.threshold:
                    hits.append(Hit(self._libs[code], pattern, (pattern,), round(score, 4)))
        return hits


_EMPTY = ahocorasick.Automaton()


def mask(text: str, words: Iterable[str]) -> str:
    """``filteredContent``: every occurrence of each hit word replaced by ``*`` of its length."""
    chars = list(text)
    for word in set(words):
        if not word:
            continue
        start = text.find(word)
        while start != -1:
            chars[start : start + len(word)] = "*" * len(word)
            start = text.find(word, start + 1)
    return "".join(chars)
