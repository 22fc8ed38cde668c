"""Regular expressions written by users (fault matchers, URL-pattern verdicts), compiled with RE2.

Python's ``re`` backtracks: ``(a+)+$`` against thirty ``a`` and a ``b`` takes seconds, and the event
loop serves nothing meanwhile. RE2 matches in time linear in the input, so a pattern from an admin
call or a config file cannot stall the server. The price is RE2's syntax: no backreferences and no
lookaround; a pattern RE2 cannot compile is refused with RE2's own reason.
"""

from __future__ import annotations

from typing import Any, Protocol

import re2

from ..errors import InvalidInput

#: The longest pattern accepted, in characters (RE2 also caps the compiled program's memory).
MAX_PATTERN_LENGTH = 4096

_OPTIONS = re2.Options()
# A refused pattern is the user's error, answered to them; RE2 need not also log it to stderr.
_OPTIONS.log_errors = False


class _Compiled(Protocol):
    def search(self, text: str) -> Any: ...


class Pattern:
    """A compiled pattern: :meth:`search` says whether it occurs in a text."""

    __slots__ = ("_regex", "pattern")

    def __init__(self, pattern: str, regex: _Compiled) -> None:
        self.pattern = pattern
        self._regex = regex

    def search(self, text: str) -> bool:
        try:
            return self._regex.search(text) is not None
        except UnicodeEncodeError:
            # RE2 reads UTF-8: a lone surrogate (valid in a JSON string) cannot be encoded, so it is
            # matched as U+FFFD instead of failing the call.
            return self._regex.search(text.encode("utf-8", "replace").decode("utf-8")) is not None

    def __repr__(self) -> str:
        return f"Pattern({self.pattern!r})"


def compile_pattern(pattern: str) -> Pattern:
    """``pattern`` compiled by RE2; InvalidInput (a ValueError) with RE2's reason when it cannot be."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise InvalidInput(f"a pattern is at most {MAX_PATTERN_LENGTH} characters, not {len(pattern)}")
    try:
        regex: _Compiled = re2.compile(pattern, _OPTIONS)
    except UnicodeEncodeError:
        raise InvalidInput("not a regular expression RE2 accepts (it is not valid UTF-8)") from None
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "rejected"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise InvalidInput(f"not a regular expression RE2 accepts ({reason})") from None
    return Pattern(pattern, regex)
