"""Text scans against custom libraries: 10 term libraries of 10,000 terms each (the provider's
limits), one Aho-Corasick automaton per account, against a loop over every term as the baseline.

Prints scans per second of each and the ratio, measured side by side in one run.
"""

from __future__ import annotations

import random
import time

from emulator.config import AlibabaAccount
from emulator.providers.alibaba import moderation
from emulator.providers.alibaba.models import AlibabaState
from emulator.providers.alibaba.textlib import Term

from .common import table

LIBRARIES = 10
TERMS = 10_000


#: 26 Chinese characters in place of a-z: terms made only of English letters are refused (document
#: 003), and Chinese terms match as substrings, so the loop below has the automaton's semantics. (A
#: large alphabet is far slower for pyahocorasick: with 3,000 characters, some 25 times.)
_CHARS = [chr(c) for c in range(0x4E00, 0x4E00 + 26)]


def _word(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_CHARS) for _ in range(n))


def build(rng: random.Random) -> AlibabaState:
    state = AlibabaState(AlibabaAccount(access_key_id="k", access_key_secret="s", uid="1"))
    libs = state.text_libraries
    for i in range(LIBRARIES):
        lib = libs.create(f"lib{i}", "term", "blacklist" if i % 2 else "review")
        terms: set[str] = set()
        while len(terms) < TERMS:
            shape = rng.random()
            if shape < 0.6:
                terms.add(_word(rng, rng.randint(6, 12)))
            elif shape < 0.9:
                terms.add(f"{_word(rng, 6)}&{_word(rng, 6)}")
            else:
                terms.add(f"{_word(rng, 6)}&{_word(rng, 6)}~{_word(rng, 6)}")
        libs.add(lib.code, sorted(terms))
    return state


def texts(rng: random.Random, state: AlibabaState, n: int) -> list[str]:
    """Texts of about 500 characters; one in ten carries a term of some library."""
    every = [t for lib in state.text_libraries.libraries for t in lib.items]
    out = []
    for i in range(n):
        words = [_word(rng, rng.randint(2, 9)) for _ in range(80)]
        if i % 10 == 0:
            words.insert(rng.randrange(len(words)), rng.choice(every).split("~")[0].replace("&", " "))
        out.append(" ".join(words))
    return out


def naive_hits(state: AlibabaState, text: str) -> int:
    """What a loop over every term of every library costs: the baseline."""
    hits = 0
    for lib in state.text_libraries.libraries:
        for term in lib.items.values():
            assert isinstance(term, Term)
            if all(p in text for p in term.positives) and not any(n in text for n in term.negatives):
                hits += 1
    return hits


def main(n_texts: int = 2_000, n_naive: int = 20) -> None:
    rng = random.Random(1)
    started = time.perf_counter()
    state = build(rng)
    verdicts = moderation.Verdicts()
    corpus = texts(rng, state, n_texts)
    moderation.text_result(state, verdicts, corpus[0])  # builds the automaton
    built = time.perf_counter() - started

    t0 = time.perf_counter()
    flagged = sum(moderation.text_result(state, verdicts, text)[0].suggestion != "pass" for text in corpus)
    automaton = n_texts / (time.perf_counter() - t0)

    t0 = time.perf_counter()
    for text in corpus[:n_naive]:
        naive_hits(state, text)
    naive = n_naive / (time.perf_counter() - t0)

    # The two must agree on what hits before their speeds mean anything.
    for text in corpus[:n_naive]:
        assert bool(state.text_libraries.scan(text)) == bool(naive_hits(state, text))

    print(f"\n## Text scan, {LIBRARIES} libraries x {TERMS:,} terms ({n_texts:,} texts of ~500 chars)\n")
    print(f"libraries built and automaton compiled in {built:.2f} s; {flagged} of {n_texts} texts flagged\n")
    print(
        table(
            [
                ["one Aho-Corasick automaton (emulator)", f"{automaton:,.0f}"],
                ["loop over every term", f"{naive:,.1f}"],
            ],
            ["matcher", "scans/s"],
        )
    )
    print(f"\nratio automaton / loop: {automaton / naive:,.0f}x")


if __name__ == "__main__":
    main()
