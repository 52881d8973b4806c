"""What a checker raises when an answer is wrong or the student's code fails; each becomes one
printed line (:func:`coursekit.checkers._common.checker`)."""

from __future__ import annotations


class Hint(Exception):
    """A wrong answer; the message is the hint printed for the student."""


class NotDone(Exception):
    """The student's code still raises ``NotImplementedError``."""


class StudentError(Exception):
    """The student's code raised an exception; the message is ``Type: message``."""


class StudentTimeout(Hint):
    """The student's code used more than its CPU time limit
    (:data:`coursekit.checkers._common.TIME_LIMIT` seconds), or waited far longer than that,
    and was stopped."""


def one_line(text: str, limit: int = 200) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
