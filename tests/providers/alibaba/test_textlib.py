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
        ("甲&乙", ("甲", "乙"), ()),
        ("甲~乙", ("甲",), ("乙",)),
        ("甲&乙~丙", ("甲", "乙"), ("丙",)),
        ("甲&乙&丙~丁~戊", ("甲", "乙", "丙"), ("丁", "戊")),
        ("字" * 50, ("字" * 50,), ()),
        ("qq12345", ("qq12345",), ()),
        # Not made only of English words: one atom combines letters and digits.
        ("buy&gun1", ("buy", "gun1"), ()),
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
        ("甲", False),
        ("乙", False),
        ("丙", False),
        ("甲 乙", True),
        ("乙...甲", True),
        ("甲 丙", False),
        ("乙 丙", False),
        ("甲 乙 丙", False),
        ("丙甲乙", False),
    ],
)
def test_and_not_semantics(text: str, hits: bool) -> None:
    libs = TextLibraries()
    lib = libs.create("t", "term", "blacklist")
    libs.add(lib.code, ["甲&乙~丙"])
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
        libs.add(lib.code, ["ok1", "bad,term1"])
    assert "ok1" not in lib.items


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
    assert hit.similarity is not None and hit.similarity >= 0.6
    assert libs.scan("今天天气很好，我们去公园散步吧") == []
    libs.threshold = 0.3
    assert libs.scan("加我微信领取免费的礼包")


def test_changes_rebuild_the_matcher() -> None:
    libs = TextLibraries()
    lib = libs.create("t", "term", "blacklist")
    assert libs.scan("bad1 word") == []
    libs.add(lib.code, ["bad1"])
    assert len(libs.scan("bad1 word")) == 1
    libs.set_enabled(lib.code, False)
    assert libs.scan("bad1 word") == []
    libs.set_enabled(lib.code, True)
    assert len(libs.scan("bad1 word")) == 1
    libs.remove(lib.code, ["bad1"])
    assert libs.scan("bad1 word") == []
    libs.add(lib.code, ["bad1"])
    libs.delete(lib.code)
    assert libs.scan("bad1 word") == []
    with pytest.raises(LibraryError) as info:
        libs.get(lib.code)
    assert info.value.code == "KeywordLibNotFound"


# Document 003: "Each combination of letters and digits is considered as a word during
# word-breaking"; Chinese characters match as substrings.
@pytest.mark.parametrize(
    ("term", "text", "hits"),
    [
        ("qq12345", "加qq12345好友", True),
        ("qq12345", "qq12345", True),
        ("qq12345", "加 qq12345, 好友", True),
        ("qq12345", "qq123456789", False),
        ("qq12345", "myqq12345", False),
        ("qq12345", "加qq12345a好友", False),
        ("v2ray", "用v2ray翻墙", True),
        ("v2ray", "用v2rayN翻墙", False),
        ("赌博", "网上赌博网站", True),
        ("赌博", "赌博赌博", True),
        # A term mixing both: its letter/digit edge needs a word boundary, its Chinese edge not.
        ("加qq", "请加qq联系", True),
        ("加qq", "请加qqq联系", False),
        ("买&gun1", "买gun1", True),
        ("买&gun1", "买gun12", False),
        ("赌博~qq1", "赌博qq12", True),
        ("赌博~qq1", "赌博qq1", False),
    ],
)
def test_terms_match_whole_words(term: str, text: str, hits: bool) -> None:
    libs = TextLibraries()
    lib = libs.create("t", "term", "blacklist")
    libs.add(lib.code, [term])
    assert bool(libs.scan(text)) is hits


def test_masking_follows_word_breaking() -> None:
    assert mask("qq12345 或 qq123456", ["qq12345"]) == "******* 或 qq123456"
    assert mask("qq123456", ["qq12345"], word_break=False) == "*******6"


@pytest.mark.parametrize("term", ["hello", "Hello&world", "buy~toy", "ｈｅｌｌｏ"])
def test_english_words_are_refused_quoting_the_rule(term: str) -> None:
    with pytest.raises(LibraryError) as info:
        parse_term(term)
    assert info.value.code == "InvalidKeyword"
    assert "English words or phrases cannot be used as terms" in str(info.value)
    assert "document 003" in str(info.value)


def _edits(pattern: str, filler: str) -> list[str]:
    """Every single-character substitution, deletion and insertion of ``pattern``."""
    out = []
    for i in range(len(pattern) + 1):
        if i < len(pattern):
            out.append(pattern[:i] + filler + pattern[i + 1 :])
            out.append(pattern[:i] + pattern[i + 1 :])
        out.append(pattern[:i] + filler + pattern[i:])
    return out


@pytest.mark.parametrize(
    "pattern",
    ["加我微信领取免费礼包", "加我微信领取免费的游戏礼包和现金红包", "哈" * 10, "加我vx领取红包12"],
)
def test_a_single_character_edit_of_a_pattern_hits_at_the_default(pattern: str) -> None:
    libs = TextLibraries()
    assert libs.threshold == 0.6
    lib = libs.create("spam", "pattern", "blacklist")
    libs.add(lib.code, [pattern])
    for edited in _edits(pattern, "嗯"):
        assert libs.scan(edited), f"{edited!r} (an edit of {pattern!r}) missed"
        assert similarity(edited, pattern) >= 7 / 11


@pytest.mark.parametrize(
    "pattern", ["abcdefghijkl", "1234567890123", "hello world how are you", "😀😀😀😀😀😀😀😀😀😀😀"]
)
def test_meaningless_patterns_are_kept_but_ignored(pattern: str) -> None:
    libs = TextLibraries()
    lib = libs.create("p", "pattern", "blacklist")
    assert libs.add(lib.code, [pattern]) == 1
    assert libs.scan(pattern) == []
    listed = lib.to_dict()
    assert listed["ignored"] == [pattern]
    assert "may be ignored" in str(listed["note"])
    libs.remove(lib.code, [pattern])
    assert "ignored" not in lib.to_dict()


def test_libraries_name_their_scenes() -> None:
    libs = TextLibraries()
    both = libs.create("both", "term", "blacklist")
    spam_only = libs.create("spam", "term", "blacklist", ["antispam"])
    ads_only = libs.create("ads", "term", "blacklist", ["ad"])
    patterns = libs.create("patterns", "pattern", "blacklist")
    assert (both.scenes, patterns.scenes) == (("antispam", "ad"), ("antispam",))
    libs.add(both.code, ["甲"])
    libs.add(spam_only.code, ["乙"])
    libs.add(ads_only.code, ["丙"])
    libs.add(patterns.code, ["加我微信领取免费礼包"])
    text = "甲乙丙 加我微信领取免费礼包"
    assert {h.library.name for h in libs.scan(text, "antispam")} == {"both", "spam", "patterns"}
    assert {h.library.name for h in libs.scan("甲乙丙", "ad")} == {"both", "ads"}
    assert {h.library.name for h in libs.scan("加我微信领取免费礼包", "ad")} == set()
    with pytest.raises(LibraryError, match="applies to antispam"):
        libs.create("bad", "pattern", "blacklist", ["ad"])
    with pytest.raises(LibraryError, match="not 'porn'"):
        libs.create("bad", "term", "blacklist", ["porn"])
