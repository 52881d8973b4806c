"""The row type and the one assertion of the bad-input tables (``tests/test_bad_inputs_*.py``).

Every public function either returns a right answer or raises a named error whose message
names the argument and what was expected (README, section "coursekit"). Each table row is
one bad input: the call, the exception type it must raise, and a regular expression the
message must match — it starts with the argument's name.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Bad:
    """One bad input: ``call()`` must raise ``error`` with a message matching ``message``."""

    name: str
    call: Callable[[], object]
    error: type[BaseException]
    message: str


def assert_named_error(case: Bad) -> None:
    """``case.call()`` raises exactly ``case.error`` (or a subclass) naming the argument."""
    with pytest.raises(case.error) as info:
        case.call()
    text = str(info.value)
    assert re.search(case.message, text), f"{case.name}: message {text!r} !~ {case.message!r}"
    assert text.strip(), f"{case.name}: empty message"


def ids(table: list[Bad]) -> list[str]:
    names = [case.name for case in table]
    assert len(set(names)) == len(names), "duplicate row names"
    return names
