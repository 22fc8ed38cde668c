"""Custom text libraries: term syntax, limits, matching semantics, similarity, masking."""

from __future__ import annotations

import pytest

from emulator.providers.alibaba.textlib import (
    LibraryError,
    TextLibraries,
    mask,
    parse_term,
    similarity,
)


@pytest.mark.parametrize(
    ("term", "positives", "negatives"),
    [
        ("赌博", ("赌博",), ()),
        ("A&B", ("A", "B"), ()),
        ("A~B", ("A",), ("B",)),
        ("A&B~C", ("A", "B"), ("C",)),
        ("A&B&C~D~E", ("A", "B", "C"), ("D", "E")),
        ("x" * 50, ("x" * 50,), ()),
    ],
)
def test_valid_terms(term: str, positives: tuple[str, ...], negatives: tuple[str, ...]) -> None:
    parsed = parse_term(term)
    assert (parsed.positives, parsed.negatives) == (positives, negatives)


@pytest.mark.parametrize(
    ("term", "problem"),
    [
        ("", "non-empty"),
        ("A~C&B", "every '&' must come before any '~'"),
        ("A&", "an operator needs a word on each side"),
        ("&A", "an operator needs a word on each side"),
        ("A~~B", "an operator needs a word on each side"),
        ("A&&B", "an operator needs a word on each side"),
        ("x" * 51, "51 characters, over 50"),
        ("A&" + "b" * 48 + "c", "51 characters"),
        *[(f"a{c}b", "excluded characters") for c in "@#$%^*()<>/?,.;_+-='\" \t"],
        *[(f"a{c}b", "excluded characters") for c in "＠＃＄％＾＊（）＜＞／？，．；＿＋－＝＇＂\u3000"],
    ],
)
def test_invalid_terms(term: str, problem: str) -> None:
    with pytest.raises(LibraryError) as info:
        parse_term(term)
    assert info.value.code == "InvalidKeyword"
    assert problem in str(info.value)


# The semantics of A&B~C over every combination of A, B and C present in the text.
@pytest.mark.parametrize(
    ("text", "hits"),
    [
        ("", False),
        ("A", False),
        ("B", False),
        ("C", False),
        ("A B", True),
        ("B...A", True),
        ("A C", False),
        ("B C", False),
        ("A B C", False),
        ("CAB", False),
    ],
)
def test_and_not_semantics(text: str, hits: bool) -> None:
    libs = TextLibraries()
    lib = libs.create("t", "term", "blacklist")
    libs.add(lib.code, ["A&B~C"])
    assert bool(libs.scan(text)) is hits


def test_hits_name_library_and_words() -> None:
    libs = TextLibraries()
    black = libs.create("black", "term", "blacklist")
    white = libs.create("white", "term", "whitelist")
    libs.add(black.code, ["买&便宜", "枪支"])
    libs.add(white.code, ["你好"])
    hits = {(h.library.name, h.item, h.words) for h in libs.scan("你好，买枪支很便宜")}
    assert hits == {
        ("black", "买&便宜", ("买", "便宜")),
        ("black", "枪支", ("枪支",)),
        ("white", "你好", ("你好",)),
    }
    assert mask("买枪支很便宜，枪支", ["枪支", "便宜"]) == "买**很**，**"


def test_library_limits() -> None:
    libs = TextLibraries()
    for i in range(10):
        libs.create(f"lib{i}", "term", "blacklist")
    with pytest.raises(LibraryError) as info:
        libs.create("one-more", "term", "blacklist")
    assert info.value.code == "KeywordLibCountExceeded"
    with pytest.raises(LibraryError, match="over 20"):
        TextLibraries().create("n" * 21, "term", "blacklist")
    TextLibraries().create("n" * 20, "term", "blacklist")
    fresh = TextLibraries()
    fresh.create("same", "term", "blacklist")
    with pytest.raises(LibraryError, match="exists"):
        fresh.create("same", "pattern", "whitelist")
    with pytest.raises(LibraryError, match="kind"):
        TextLibraries().create("x", "regex", "blacklist")
    with pytest.raises(LibraryError, match="listType"):
        TextLibraries().create("x", "term", "greylist")


def test_item_limits_are_all_or_nothing() -> None:
    libs = TextLibraries()
    lib = libs.create("big", "term", "blacklist")
    assert libs.add(lib.code, [f"w{i}" for i in range(9_999)]) == 9_999
    with pytest.raises(LibraryError) as info:
        libs.add(lib.code, ["x1", "x2"])
    assert info.value.code == "KeywordCountExceeded"
    assert len(lib.items) == 9_999
    assert libs.add(lib.code, ["x1"]) == 1
    with pytest.raises(LibraryError):
        libs.add(lib.code, ["ok", "bad,term"])
    assert "ok" not in lib.items


@pytest.mark.parametrize(("length", "ok"), [(9, False), (10, True), (4_000, True), (4_001, False)])
def test_pattern_length(length: int, ok: bool) -> None:
    libs = TextLibraries()
    lib = libs.create("p", "pattern", "review")
    if ok:
        assert libs.add(lib.code, ["字" * length]) == 1
    else:
        with pytest.raises(LibraryError) as info:
            libs.add(lib.code, ["字" * length])
        assert info.value.code == "InvalidTextPattern"


def test_patterns_hit_by_similarity() -> None:
    pattern = "加我微信领取免费的游戏礼包和现金红包"
    libs = TextLibraries()
    lib = libs.create("spam", "pattern", "blacklist")
    libs.add(lib.code, [pattern])
    assert similarity(pattern, pattern) == 1.0
    (hit,) = libs.scan("加我微信领取免费的游戏礼包和现金红包!")
    assert hit.similarity is not None and hit.similarity >= 0.8
    assert libs.scan("今天天气很好，我们去公园散步吧") == []
    libs.threshold = 0.3
    assert libs.scan("加我微信领取免费的礼包")


def test_changes_rebuild_the_matcher() -> None:
    libs = TextLibraries()
    lib = libs.create("t", "term", "blacklist")
    assert libs.scan("bad word") == []
    libs.add(lib.code, ["bad"])
    assert len(libs.scan("bad word")) == 1
    libs.remove(lib.code, ["bad"])
    assert libs.scan("bad word") == []
    libs.add(lib.code, ["bad"])
    libs.delete(lib.code)
    assert libs.scan("bad word") == []
    with pytest.raises(LibraryError) as info:
        libs.get(lib.code)
    assert info.value.code == "KeywordLibNotFound"
