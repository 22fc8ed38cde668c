"""The error tree drawn in emulator/errors.py is the one the classes form."""

from __future__ import annotations

import re

import pytest

from emulator import errors
from emulator.core.call import BodyTooLarge
from emulator.core.callbacks import CallbackURLError, DeliveryTimeout
from emulator.core.faults import RuleError
from emulator.core.journal import FilterError, WaitTimeout
from emulator.core.scenarios import ScenarioError
from emulator.documents import DocumentError
from emulator.errors import (
    AdminError,
    ConfigError,
    EmulatorError,
    InvalidInput,
    NotFound,
    ServerStartError,
    Timeout,
    WireError,
)
from emulator.providers.alibaba.errors import AlibabaError
from emulator.providers.alibaba.textlib import LibraryError
from emulator.providers.tencent.errors import TencentError
from emulator.providers.tencent.models import UnknownBadcase

PARENTS: dict[type[BaseException], type[BaseException]] = {
    ServerStartError: EmulatorError,
    InvalidInput: EmulatorError,
    ConfigError: InvalidInput,
    DocumentError: InvalidInput,
    ScenarioError: InvalidInput,
    RuleError: InvalidInput,
    FilterError: InvalidInput,
    CallbackURLError: InvalidInput,
    BodyTooLarge: InvalidInput,
    LibraryError: InvalidInput,
    NotFound: EmulatorError,
    UnknownBadcase: NotFound,
    Timeout: EmulatorError,
    WaitTimeout: Timeout,
    DeliveryTimeout: Timeout,
    AdminError: EmulatorError,
    AlibabaError: WireError,
    TencentError: WireError,
}


@pytest.mark.parametrize("cls", PARENTS, ids=lambda c: c.__name__)
def test_each_class_sits_where_the_tree_draws_it(cls: type[BaseException]) -> None:
    assert cls.__bases__[0] is PARENTS[cls]
    doc = errors.__doc__ or ""
    line = next((ln for ln in doc.splitlines() if re.search(rf"\+-- {cls.__name__}\b", ln)), None)
    assert line is not None, f"{cls.__name__} is not drawn in emulator/errors.py"
    assert cls.__module__ in line


def test_stdlib_meanings_are_kept_where_callers_rely_on_them() -> None:
    assert issubclass(InvalidInput, ValueError)
    assert issubclass(NotFound, LookupError) and not issubclass(NotFound, KeyError)
    assert issubclass(Timeout, AssertionError) and not issubclass(Timeout, TimeoutError)
    assert not issubclass(WireError, EmulatorError)


def test_admin_error_carries_status_kind_message_and_extra_members() -> None:
    exc = AdminError(408, "timeout", "waited 1s", matched=[])
    assert (exc.status, exc.kind, exc.message, exc.extra) == (408, "timeout", "waited 1s", {"matched": []})
    assert str(exc) == "HTTP 408: waited 1s"
    assert exc.title == "Request Timeout"
