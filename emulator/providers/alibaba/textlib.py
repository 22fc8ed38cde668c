"""Custom text libraries (seed document 003 is the spec): term and text-pattern libraries, each a
blacklist, whitelist or review list, and the matcher text scans run against them.

- Terms: ``A&B`` hits when the text contains A and B; ``A~B`` when it contains A and not B; both
  operators together with every ``&`` before any ``~`` (``A&B~C`` valid, ``A~C&B`` not). At most 50
  characters including operators; none of the excluded characters (below), full- or half-width.
  "Each combination of letters and digits is considered as a word during word-breaking": a run of
  letters and digits in the text is one word, and a term's letters and digits match only whole runs
  (``qq12345`` does not hit ``qq123456789``); Chinese characters match anywhere, as substrings.
  "English words or phrases cannot be used as terms": a term made only of letters is refused.
- Text patterns: 10 to 4,000 characters; a text hits a pattern when their *similarity* reaches the
  threshold (default 0.6). Similarity is the Jaccard index of the two texts' multisets of character
  bigrams (after dropping whitespace): |A ∩ B| / |A ∪ B|. The provider documents no measure
  (UNCONFIRMED(alibaba-pattern-similarity), alibaba.pattern_similarity); with
  this one a single-character edit of a pattern of n >= 10 characters keeps at least (n-3)/(n+1) =
  7/11, so it hits at the default. A pattern without a Chinese (or other ideographic/syllabic)
  character, i.e. made only of letters, digits or emoticons, is kept but ignored: "a text pattern
  that consists of meaningless letters, digits, or emoticons may be ignored".
- Limits: 10 user-created libraries per account, names of at most 20 characters, 10,000 terms or
  patterns per library.
- Scenes: terms apply to TextScan's ``antispam`` and ``ad`` scenes, patterns to ``antispam`` only
  ("you can apply custom text libraries to ad violation detection and text anti-spam"; "text
  pattern libraries to text anti-spam"); a library may name fewer.

All the atoms of every term library of an account go into one Aho-Corasick automaton (pyahocorasick),
rebuilt once per library change, so a scan costs one pass over the text whatever the number of terms;
an atom found inside a longer run of letters and digits is then dropped by a boundary check.
"""

from __future__ import annotations

import itertools
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import ahocorasick

from ...core.storage.records import NOWHERE, Sink
from ...errors import InvalidInput

LibKind = Literal["term", "pattern"]
ListType = Literal["blacklist", "whitelist", "review"]
Scene = Literal["antispam", "ad"]
#: The TextScan scenes each kind of library can apply to (document 003).
KIND_SCENES: dict[str, tuple[Scene, ...]] = {"term": ("antispam", "ad"), "pattern": ("antispam",)}

MAX_LIBRARIES = 10
MAX_NAME = 20
MAX_ITEMS = 10_000
MAX_TERM = 50
PATTERN_MIN, PATTERN_MAX = 10, 4_000
DEFAULT_SIMILARITY = 0.6

#: How a library is stored (core/storage): one record, its definition and items (at most MAX_ITEMS),
#: written again when it changes. Read back, it is one record per library, not one per term.
KIND_LIBRARY = "alibaba.textlib"

_HALF = "@#$%^*()<>/?,.;_+-='\" \t"
# The full-width forms of the same characters (U+FF01..U+FF5E mirror ASCII 0x21..0x7E) and the
# ideographic space.
_FULL = "".join(chr(ord(c) + 0xFEE0) for c in _HALF if c not in " \t") + "\u3000"
EXCLUDED = frozenset(_HALF + _FULL)


#: The rule quoted when a term is refused for being an English word (document 003, Limits).
ENGLISH_RULE = (
    '"Supports Chinese characters and combinations of letters and digits. Currently, English words '
    'or phrases cannot be used as terms." (document 003)'
)
IGNORED_NOTE = (
    "ignored: a text pattern needs Chinese semantic features; one that consists of meaningless "
    'letters, digits or emoticons "may be ignored" (document 003), and the emulator ignores it'
)


def is_word_char(c: str) -> bool:
    """A letter or digit that word-breaking groups into runs: any letter or digit but the
    ideographic and syllabic ones (category Lo: Chinese characters, kana, ...), which stand alone."""
    cat = unicodedata.category(c)
    return cat[0] in "LN" and cat != "Lo"


def _is_english_word(atom: str) -> bool:
    return all(unicodedata.category(c)[0] == "L" and unicodedata.category(c) != "Lo" for c in atom)


def is_meaningless(pattern: str) -> bool:
    """No Chinese (or other ideographic/syllabic) character: letters, digits, emoticons only."""
    return not any(unicodedata.category(c) == "Lo" for c in pattern)


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
    if all(_is_english_word(atom) for atom in positives + negatives):
        raise LibraryError(
            "InvalidKeyword",
            f"term {text!r} is made only of English words: {ENGLISH_RULE}; "
            "use Chinese characters or a combination of letters and digits",
        )
    return Term(text, positives, negatives)


def check_pattern(text: str) -> str:
    if not isinstance(text, str) or not PATTERN_MIN <= len(text) <= PATTERN_MAX:
        size = len(text) if isinstance(text, str) else "not a string"
        raise LibraryError(
            "InvalidTextPattern", f"a text pattern is {PATTERN_MIN} to {PATTERN_MAX} characters, not {size}"
        )
    return text


def bigrams(text: str) -> Counter[str]:
    """The text's character bigrams, each as often as it occurs (whitespace dropped first)."""
    squeezed = "".join(text.split())
    if len(squeezed) < 2:
        return Counter({squeezed: 1}) if squeezed else Counter()
    return Counter(squeezed[i : i + 2] for i in range(len(squeezed) - 1))


def similarity(a: str, b: str) -> float:
    """The Jaccard index of the two texts' character-bigram multisets."""
    sa, sb = bigrams(a), bigrams(b)
    if not sa and not sb:
        return 1.0
    return (sa & sb).total() / (sa | sb).total()


@dataclass
class Library:
    code: str
    name: str
    kind: LibKind
    list_type: ListType
    items: dict[str, Term | str] = field(default_factory=dict)
    enabled: bool = True
    scenes: tuple[Scene, ...] = ("antispam", "ad")
    #: Patterns kept but never matched (see :func:`is_meaningless`).
    ignored: set[str] = field(default_factory=set)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "code": self.code,
            "name": self.name,
            "kind": self.kind,
            "listType": self.list_type,
            "scenes": list(self.scenes),
            "enabled": self.enabled,
            "count": len(self.items),
        }
        if self.ignored:
            out["ignored"] = sorted(self.ignored)
            out["note"] = IGNORED_NOTE
        return out


@dataclass(frozen=True, slots=True)
class Hit:
    library: Library
    item: str
    #: The words found in the text (for terms: the positive atoms; for patterns: the pattern).
    words: tuple[str, ...]
    similarity: float | None = None


class TextLibraries:
    """One account's custom text libraries and their matchers."""

    def __init__(self, similarity_threshold: float = DEFAULT_SIMILARITY, sink: Sink = NOWHERE) -> None:
        self.threshold = similarity_threshold
        self._sink = sink
        self._libs: dict[str, Library] = {}
        self._codes = itertools.count(1)
        self._automaton: ahocorasick.Automaton | None = None
        self._term_index: dict[str, list[tuple[Library, Term]]] = {}
        self._pattern_index: dict[str, dict[tuple[str, str], int]] | None = None
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

    def create(
        self, name: str, kind: str, list_type: str, scenes: Iterable[str] | None = None
    ) -> Library:
        if not isinstance(name, str) or not name.strip():
            raise LibraryError("InvalidParameter", "name is required")
        if len(name) > MAX_NAME:
            raise LibraryError("InvalidParameter", f"name is {len(name)} characters, over {MAX_NAME}")
        if kind not in ("term", "pattern"):
            raise LibraryError("InvalidParameter", "kind must be 'term' or 'pattern'")
        if list_type not in ("blacklist", "whitelist", "review"):
            raise LibraryError("InvalidParameter", "listType must be 'blacklist', 'whitelist' or 'review'")
        allowed = KIND_SCENES[kind]
        chosen = tuple(dict.fromkeys(scenes)) if scenes else allowed
        for scene in chosen:
            if scene not in allowed:
                raise LibraryError(
                    "InvalidParameter", f"a {kind} library applies to {' and '.join(allowed)}, not {scene!r}"
                )
        if len(self._libs) >= MAX_LIBRARIES:
            raise LibraryError("KeywordLibCountExceeded", f"an account has at most {MAX_LIBRARIES} libraries")
        if any(lib.name == name for lib in self._libs.values()):
            raise LibraryError("KeywordLibNameDuplicated", f"a library named {name!r} exists")
        lib = Library(f"lib{next(self._codes)}", name, kind, list_type, scenes=chosen)  # type: ignore[arg-type]
        self._libs[lib.code] = lib
        self._write(lib)
        return lib

    def set_enabled(self, code: str, enabled: bool) -> Library:
        """Enable or disable a user-created library: a disabled one is kept but matches nothing."""
        lib = self.get(code)
        lib.enabled = enabled
        self._write(lib)
        self._changed()
        return lib

    def delete(self, code: str) -> None:
        lib = self.get(code)
        del self._libs[code]
        self._sink.delete(KIND_LIBRARY, lib.code)
        self._changed()

    # -- storage -------------------------------------------------------------------------------

    @staticmethod
    def _definition(lib: Library) -> dict[str, Any]:
        return {
            "name": lib.name,
            "kind": lib.kind,
            "listType": lib.list_type,
            "scenes": list(lib.scenes),
            "enabled": lib.enabled,
            "items": list(lib.items),
        }

    def _write(self, lib: Library) -> None:
        self._sink.put(KIND_LIBRARY, lib.code, self._definition(lib))

    def dump(self) -> Iterator[tuple[str, str, Any]]:
        """Every library's records, as (kind, key, JSON value)."""
        for lib in self._libs.values():
            yield KIND_LIBRARY, lib.code, self._definition(lib)

    def restore(self, kind: str, key: str, value: Any) -> None:
        """Put back a stored library (nothing written)."""
        if kind != KIND_LIBRARY:
            return
        lib = Library(
            key,
            value["name"],
            value["kind"],
            value["listType"],
            enabled=value["enabled"],
            scenes=tuple(value["scenes"]),
        )
        for item in value["items"]:
            lib.items[item] = parse_term(item) if lib.kind == "term" else item
            if lib.kind == "pattern" and is_meaningless(item):
                lib.ignored.add(item)
        self._libs[key] = lib
        number = key[3:]
        if key.startswith("lib") and number.isdigit():
            # Codes are never given twice, even after a restart.
            self._codes = itertools.count(max(int(number) + 1, next(self._codes)))
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
        if new:
            self._write(lib)
        if lib.kind == "pattern":
            lib.ignored.update(p for p in parsed if is_meaningless(p))
        self._changed()
        return len(new)

    def remove(self, code: str, items: Iterable[str]) -> int:
        lib = self.get(code)
        items = [item for item in items if isinstance(item, str)]
        gone = sum(1 for item in items if lib.items.pop(item, None) is not None)
        if gone:
            self._write(lib)
        lib.ignored.difference_update(items)
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

    def _build_patterns(self) -> dict[str, dict[tuple[str, str], int]]:
        # bigram -> {(library code, pattern): how often the pattern has that bigram}
        index: dict[str, dict[tuple[str, str], int]] = defaultdict(dict)
        self._pattern_sizes = {}
        for lib in self._libs.values():
            if lib.kind == "pattern" and lib.enabled:
                for pattern in lib.items:
                    if pattern in lib.ignored:
                        continue
                    grams = bigrams(pattern)
                    self._pattern_sizes[(lib.code, pattern)] = grams.total()
                    for gram, count in grams.items():
                        index[gram][(lib.code, pattern)] = count
        return dict(index)

    def scan(self, text: str, scene: str = "antispam") -> list[Hit]:
        """Every term and pattern of the libraries applied to ``scene`` that the text hits."""
        hits: list[Hit] = []
        if self._automaton is None:
            self._automaton = self._build_terms() or _EMPTY
        if self._automaton is not _EMPTY:
            found = {atom for end, atom in self._automaton.iter(text) if whole_words(text, end, atom)}
            for atom in found:
                for lib, term in self._term_index.get(atom, ()):
                    if (
                        scene in lib.scenes
                        and all(p in found for p in term.positives)
                        and not any(n in found for n in term.negatives)
                    ):
                        hits.append(Hit(lib, term.text, term.positives))
        if self._pattern_index is None:
            self._pattern_index = self._build_patterns()
        if self._pattern_index:
            grams = bigrams(text)
            overlap: dict[tuple[str, str], int] = defaultdict(int)
            for gram, count in grams.items():
                for key, theirs in self._pattern_index.get(gram, {}).items():
                    overlap[key] += min(count, theirs)
            total = grams.total()
            for (code, pattern), common in overlap.items():
                lib = self._libs[code]
                if scene not in lib.scenes:
                    continue
                union = total + self._pattern_sizes[(code, pattern)] - common
                score = common / union if union else 1.0
                if score >= self.threshold:
                    hits.append(Hit(lib, pattern, (pattern,), round(score, 4)))
        return hits


_EMPTY = ahocorasick.Automaton()


def whole_words(text: str, end: int, atom: str) -> bool:
    """Whether ``atom``, found in ``text`` ending at index ``end``, is not part of a longer run of
    letters and digits: a letter or digit at either end of the atom must not touch another one."""
    start = end - len(atom) + 1
    if start > 0 and is_word_char(atom[0]) and is_word_char(text[start - 1]):
        return False
    return not (end + 1 < len(text) and is_word_char(atom[-1]) and is_word_char(text[end + 1]))


def mask(text: str, words: Iterable[str], *, word_break: bool = True) -> str:
    """``filteredContent``: every occurrence of each hit word replaced by ``*`` of its length (with
    ``word_break``, only the occurrences that are whole words, as terms match)."""
    chars = list(text)
    for word in set(words):
        if not word:
            continue
        start = text.find(word)
        while start != -1:
            if not word_break or whole_words(text, start + len(word) - 1, word):
                chars[start : start + len(word)] = "*" * len(word)
            start = text.find(word, start + 1)
    return "".join(chars)
