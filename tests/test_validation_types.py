"""coursekit._validation: a wrong type is a TypeError, a wrong value a ValueError; both name
the argument, and a wrong type is still caught by ``except ValueError`` (every bad input)."""

from __future__ import annotations

import pytest
import torch

from coursekit._validation import (
    ArgumentTypeError,
    check_float_dtype,
    check_generator,
    check_nonnegative_int,
    check_positive_float,
    check_positive_int,
    check_tensor,
)

WRONG_TYPES = [
    (check_tensor, [[0.0, 1.0]]),
    (check_positive_int, 2.0),
    (check_positive_int, True),
    (check_nonnegative_int, "3"),
    (check_positive_float, "0.1"),
    (check_generator, 0),
    (check_float_dtype, "float32"),
]
WRONG_VALUES = [
    (check_tensor, torch.tensor([1, 2])),
    (check_positive_int, 0),
    (check_nonnegative_int, -1),
    (check_positive_float, 0.0),
    (check_float_dtype, torch.int64),
]


@pytest.mark.parametrize(("check", "value"), WRONG_TYPES)
def test_a_wrong_type_is_a_type_error_naming_the_argument(check, value):
    with pytest.raises(TypeError, match=r"^arg: expected") as caught:
        check(value, "arg")
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, ArgumentTypeError)


@pytest.mark.parametrize(("check", "value"), WRONG_VALUES)
def test_a_wrong_value_is_a_value_error_not_a_type_error(check, value):
    with pytest.raises(ValueError, match=r"^arg: expected") as caught:
        check(value, "arg")
    assert not isinstance(caught.value, TypeError)
