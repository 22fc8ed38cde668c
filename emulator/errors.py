"""The emulator's exceptions: one tree for what its users meet, one base for what goes on the wire.

Every exception a test author, an operator or an admin client can meet descends from
:class:`EmulatorError`, so ``except EmulatorError`` catches everything the emulator means to raise and
nothing it does not (a bug stays a bug). Each class is defined next to the code that raises it; the
tree names where::

    EmulatorError                       emulator.errors
     +-- ServerStartError               emulator.errors           the server could not start
     +-- InvalidInput (ValueError)      emulator.errors           something a user wrote or sent is wrong
     |    +-- ConfigError               emulator.errors           a config file or EMULATOR_* variable
     |    +-- DocumentError             emulator.documents        a config or scenario file cannot be read
     |    +-- ScenarioError             emulator.core.scenarios   a scenario is missing or wrong
     |    +-- RuleError                 emulator.core.faults      a fault rule (names the field)
     |    +-- FilterError               emulator.core.journal     a journal or delivery filter
     |    +-- CallbackURLError          emulator.core.callbacks   a receiver URL the emulator will not call
     |    +-- BodyTooLarge              emulator.core.call        a request body over the limit
     |    +-- LibraryError              emulator.providers.alibaba.textlib   a custom text library or item
     +-- NotFound (LookupError)         emulator.errors           what was asked for does not exist
     |    +-- UnknownBadcase            emulator.providers.tencent.models
     +-- Timeout (AssertionError)       emulator.errors           awaited traffic did not come in time
     |    +-- WaitTimeout               emulator.core.journal     requests (with the closest misses)
     |    +-- DeliveryTimeout           emulator.core.callbacks   callback deliveries
     +-- AdminError                     emulator.errors           an admin API call refused: status, kind,
                                                                  message, extra members; raised by admin
                                                                  handlers and by EmulatorClient

    WireError                           emulator.errors           an answer a provider gives, not raised
     +-- AlibabaError                   emulator.providers.alibaba.errors   (its own tree there)
     +-- TencentError                   emulator.providers.tencent.errors   (its own tree there)

The stdlib mixins are kept where a caller's existing ``except`` or a test runner's report depends on
the meaning they carry:

- ``InvalidInput`` is a ``ValueError`` (the right type, a wrong value): callers that validate through
  it, such as ``except ValueError`` around a config or rule check, keep working.
- ``NotFound`` is a ``LookupError``, not a ``KeyError``: ``KeyError`` prints its message as a repr
  (quotes and escapes), which is wrong for a sentence.
- ``Timeout`` is an ``AssertionError``, not a ``TimeoutError``: a wait that runs out means the traffic a
  test expected never came, so pytest reports it as a failed assertion; a ``TimeoutError`` would be
  caught by code that retries or ignores slow I/O.
- ``AdminError`` has none: it is the admin API's answer, and only the admin error middleware (or the
  client that receives it) handles it.

Wire errors (:class:`WireError`) are a separate branch: a provider's handlers raise them and its
``protocol.py`` renders them as the bytes the real service would send; they never reach a user as
exceptions. Each provider's ``errors.py`` draws its own catalogue below its base.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any


class EmulatorError(Exception):
    """Base of every error the emulator raises to its users."""


class ServerStartError(EmulatorError):
    """The server could not be started (port in use, bad address, ...)."""


class InvalidInput(EmulatorError, ValueError):
    """Something a user wrote or sent (config, scenario, rule, filter, URL, body) is not acceptable;
    the message says what and where."""


class ConfigError(InvalidInput):
    """A configuration value is missing or wrong.

    The message always names where the value came from (file or environment variable), the key
    as a dotted path, and what is wrong with it.
    """

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        super().__init__(f"{source}: {key}: {problem}")


class NotFound(EmulatorError, LookupError):
    """What was asked for does not exist (e.g. a badcase under a RequestId no one reported)."""


class Timeout(EmulatorError, AssertionError):
    """Fewer requests or deliveries than awaited arrived in time; the message lists what did."""


class AdminError(EmulatorError):
    """The admin API refused a call.

    ``status`` is the HTTP status, ``kind`` the short machine-readable name answered as ``error``
    (bad_request, not_found, unauthorized, timeout, bad_rule, ...), ``message`` the sentence for a
    person, and ``extra`` any further members of the problem document (``matched``, ``closest``,
    ``code``, ...). Admin handlers raise it; the admin error middleware renders it as
    ``application/problem+json``; :class:`~emulator.testing.client.EmulatorClient` raises it again
    from such an answer.
    """

    def __init__(self, status: int, kind: str, message: str, **extra: Any) -> None:
        self.status = status
        self.kind = kind
        self.message = message
        self.extra = extra
        super().__init__(f"HTTP {status}: {message}")

    @property
    def title(self) -> str:
        try:
            return HTTPStatus(self.status).phrase
        except ValueError:
            return "Error"


class WireError(Exception):
    """Base of the answers a provider gives instead of a success. Rendered to the wire by the
    provider's ``protocol.py``, never raised to users."""
