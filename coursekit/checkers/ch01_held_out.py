"""Checkers for chapter 1's held-out exercises (slides: DENSITY ESTIMATION, eq. 3–4): 1.6 two
models compared on the same held-out points (the paired standard error); 1.7 early stopping on a
held-out curve.

Tolerances follow the checking policy (:func:`coursekit.checkers._answers.matches`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from coursekit.checkers._answers import as_float, fmt, matches
from coursekit.checkers._common import call, checker
from coursekit.checkers._hints import Hint

# --------------------------------------------------------------------------------------------
# 1.6: two models on the same held-out points: the paired standard error
# --------------------------------------------------------------------------------------------


def paired_cases() -> list[tuple[str, Tensor, Tensor]]:
    """(name, log p_A(x_i), log p_B(x_i)) on the same n held-out points: a large per-point
    spread shared by both models (some points are hard for every model) and a small
    model-specific part, so the unpaired standard error is many times the paired one."""
    g = torch.Generator().manual_seed(16)
    out = []
    for name, n, shift, noise in (
        ("A better by a little", 400, 0.04, 0.1),
        ("B better by a little", 900, -0.03, 0.15),
        ("no real difference", 600, 0.004, 0.2),
    ):
        hard = 1.5 * torch.randn(n, generator=g, dtype=torch.float64) ** 2
        a = -2.8 - hard + noise * torch.randn(n, generator=g, dtype=torch.float64)
        b = -2.8 - hard - shift + noise * torch.randn(n, generator=g, dtype=torch.float64)
        out.append((name, a, b))
    return out


def paired_reference(log_p_a: Tensor, log_p_b: Tensor) -> tuple[float, float, str]:
    """``(diff, se, verdict)``: ``diff = mean(log p_A − log p_B)`` (nats, > 0: A better), its
    paired standard error ``std(d_i)/√n`` (n − 1 in the std), and ``"A"`` if diff > 2·se,
    ``"B"`` if diff < −2·se, else ``"neither"``."""
    d = log_p_a - log_p_b
    diff, se = float(d.mean()), float(d.std() / math.sqrt(len(d)))
    verdict = "A" if diff > 2 * se else "B" if diff < -2 * se else "neither"
    return diff, se, verdict


def _verdict(value: Any) -> str:
    if not isinstance(value, str):
        raise Hint(f"the verdict should be the string 'A', 'B' or 'neither', got {value!r}")
    verdict = value.strip().strip("'\"").lower()
    choices = {"a": "A", "b": "B", "neither": "neither"}
    if verdict not in choices:
        raise Hint(f"the verdict should be 'A', 'B' or 'neither', got {value!r}")
    return choices[verdict]


@checker("1.6", "which model is better? the paired standard error")
def check_paired_comparison(fn: Callable) -> str:
    """``fn(log_p_a, log_p_b) -> (diff, se, verdict)`` = :func:`paired_reference` for the
    per-point held-out log-likelihoods of two models on the same points (tensors (n,))."""
    ratios = []
    for name, a, b in paired_cases():
        out = call(fn, a.clone(), b.clone())
        if not isinstance(out, (tuple, list)) or len(out) != 3:
            raise Hint(f"return a triple (diff, se, verdict), got {type(out).__name__}")
        diff, se = as_float(out[0], "diff"), as_float(out[1], "se")
        want_diff, want_se, want_verdict = paired_reference(a, b)
        n, d = len(a), a - b
        case = f"({name}, n = {n})"
        if not matches(diff, want_diff):
            if matches(diff, -want_diff):
                raise Hint(
                    f"sign of diff {case}: diff = mean(log p_A − log p_B), positive when A "
                    "gives the points a higher likelihood (an NLL difference has the other sign)"
                )
            if matches(diff, want_diff * n):
                raise Hint(f"diff {case} is a mean over the n points, not a sum")
            raise Hint(f"diff = {fmt(diff)} {case} is not mean(log p_A(x_i) − log p_B(x_i))")
        se_by = {c: float(d.std(correction=c)) / math.sqrt(n) for c in (0, 1)}
        if not any(matches(se, s) for s in se_by.values()):
            var_a, var_b = (float(v.var(correction=1)) / n for v in (a, b))
            var_a0, var_b0 = (float(v.var(correction=0)) / n for v in (a, b))
            unpaired = [
                math.sqrt(var_a + var_b),
                math.sqrt(var_a0 + var_b0),
                math.sqrt(var_a) + math.sqrt(var_b),
                math.sqrt(var_a0) + math.sqrt(var_b0),
            ]
            if any(matches(se, u) for u in unpaired):
                raise Hint(
                    f"se = {fmt(se)} {case} treats the two models' terms as independent (the "
                    "unpaired standard error): they are scored on the SAME points, whose "
                    "difficulty is shared; take the standard error of the per-point "
                    "differences d_i = log p_A(x_i) − log p_B(x_i)"
                )
            if any(matches(se, u) for u in (var_a, var_b, var_a0, var_b0)) or any(
                matches(se, math.sqrt(u)) for u in (var_a, var_b, var_a0, var_b0)
            ):
                raise Hint(
                    f"se {case} is one model's own standard error (or its square); the "
                    "comparison needs the standard error of the differences d_i"
                )
            if any(matches(se, s * math.sqrt(n)) for s in se_by.values()):
                raise Hint(
                    f"se {case} is the spread of the differences d_i; the standard error of "
                    "their mean divides it by √n"
                )
            if any(matches(se, s**2) for s in se_by.values()):
                raise Hint(f"se {case} is the variance of the mean; take its square root")
            if any(matches(se, s / math.sqrt(n)) for s in se_by.values()):
                raise Hint(f"se {case}: the standard error divides the std by √n, not by n")
            raise Hint(f"se = {fmt(se)} {case} is not the standard error of the mean difference")
        verdict = _verdict(out[2])
        if verdict != want_verdict:
            z = want_diff / want_se
            if want_verdict == "neither":
                raise Hint(
                    f"verdict {verdict!r} {case}: the difference is only {abs(z):.1f} standard "
                    "errors from 0, within 2 of them: the data cannot rank the models "
                    "('neither')"
                )
            if verdict == "neither":
                raise Hint(
                    f"verdict 'neither' {case}: with the paired standard error the difference "
                    f"is {abs(z):.1f} standard errors from 0, so the models can be ranked"
                )
            raise Hint(
                f"verdict {verdict!r} {case}: diff > 0 means A gives the held-out points the "
                "higher log-likelihood, so A is the better model (and B when diff < 0)"
            )
        unpaired_se = math.sqrt(float(a.var()) / n + float(b.var()) / n)
        ratios.append(unpaired_se / want_se)
    return (
        f"paired standard errors {min(ratios):.0f}–{max(ratios):.0f} times smaller than the "
        "unpaired ones: comparing on the same points cancels the points' shared difficulty."
    )


# --------------------------------------------------------------------------------------------
# 1.7: early stopping
# --------------------------------------------------------------------------------------------


def early_stop_reference(
    values: list[float], patience: int, ties_improve: bool = False, from_previous: bool = False
) -> tuple[int, int]:
    """``(stop, best)`` of early stopping; the two flags give two typical wrong rules (an
    equal value counted as an improvement; non-improvements counted against the previous
    value instead of the best one)."""
    best, waited = 0, 0
    for i, v in enumerate(values):
        if i > 0:
            better = v <= values[best] if ties_improve else v < values[best]
            if better:
                best = i
            if from_previous:
                waited = 0 if v < values[i - 1] else waited + 1
        if (waited if from_previous else i - best) >= patience:
            return i, best
    return len(values) - 1, best


#: (held_out, patience): a stop after a late minimum, a patience that outlasts the curve, a
#: curve that never stops (still improving), ties, a noisy rise, and a dip after the stop.
EARLY_CASES: list[tuple[list[float], int]] = [
    ([5.0, 4.0, 3.0, 3.5, 3.6, 3.7, 2.0], 3),
    ([5.0, 4.0, 3.0, 3.5, 3.6, 3.7, 2.0], 5),
    ([4.0, 3.5, 3.1, 2.9, 2.8], 2),
    ([3.0, 2.0, 2.0, 2.0, 2.0, 1.0], 2),
    ([2.9, 2.88, 2.87, 2.9, 2.95, 3.0, 3.1, 3.05, 3.2], 4),
    ([3.0, 2.5, 2.7, 2.6, 2.8, 2.9, 3.0, 3.1, 2.4, 2.3], 4),
    ([3.0, 2.6, 2.7, 2.8, 2.9, 2.95, 2.97, 2.99, 2.0], 4),
]


def _early_rules(values: list[float], patience: int) -> list[tuple[tuple[int, int], str]]:
    """(stop, best) of typical wrong rules on one curve, each with its hint."""
    n = len(values)
    stop, best = early_stop_reference(values, patience)
    argmin = min(range(n), key=values.__getitem__)
    last_min = max(i for i in range(n) if values[i] == values[argmin])
    return [
        (
            early_stop_reference(values, patience, ties_improve=True),
            "an equal value is not an improvement: keep the earlier best (compare with <, not <=)",
        ),
        (
            early_stop_reference(values, patience, from_previous=True),
            "count the evaluations since the BEST value so far, not since the last decrease: "
            "a value below the previous one but above the best is no improvement",
        ),
        (
            early_stop_reference(values, patience + 1),
            "you stop one evaluation late: stop at the first i with i − best == patience "
            "(not > patience)",
        ),
        (
            early_stop_reference(values, max(patience - 1, 0)),
            "you stop one evaluation early: stop at the first i with i − best == patience "
            "(patience evaluations after best, not patience − 1)",
        ),
        (
            (stop, argmin),
            "best is the minimum of the WHOLE curve; early stopping cannot look at "
            "evaluations after the stop: keep the best seen up to the stop",
        ),
        (
            (n - 1, argmin),
            "you scanned the whole curve and returned its minimum: early stopping stops "
            "at the first i with i − best == patience and keeps the best seen up to there",
        ),
        (
            (n - 1, last_min),
            "you scanned the whole curve and returned its minimum: early stopping stops "
            "at the first i with i − best == patience and keeps the best seen up to there",
        ),
        (
            (stop + 1, best + 1),
            "indices start at 0: held_out[0] is evaluation 0 (you returned counts, 1-based)",
        ),
    ]


@checker("1.7", "early stopping on the held-out NLL")
def check_early_stopping(fn: Callable) -> str:
    """``fn(held_out, patience) -> (stop, best)``: walk the held-out NLL values in order, keep
    the index ``best`` of the lowest so far (a tie is not an improvement), and stop at the first
    ``i`` with ``i − best == patience``; without such ``i``, ``stop`` is the last index."""
    answers: list[tuple[float, float]] = []
    for values, patience in EARLY_CASES:
        case = f"held_out = {values}, patience = {patience}"
        out = call(fn, list(values), patience)
        never_fires = early_stop_reference(values, patience)[0] == len(values) - 1
        if out is None and never_fires:
            raise Hint(
                f"{case}: your function returned None; here the stop rule never fires, so "
                "after the loop return (last index, best)"
            )
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise Hint(f"return a pair (stop, best) of indices, got {type(out).__name__}")
        if out[0] is None or out[1] is None:
            raise Hint(
                f"{case}: got {tuple(out)!r}; stop and best are always indices (when the rule "
                "never fires, stop is the last index)"
            )
        answers.append((as_float(out[0], "stop"), as_float(out[1], "best")))
    wants = [early_stop_reference(v, p) for v, p in EARLY_CASES]
    if answers == wants:
        return "stops once the held-out NLL has not improved for `patience` evaluations."
    # a wrong rule reproduced on every curve names the mistake; otherwise the first curve
    # that goes wrong is diagnosed on its own
    rules = [_early_rules(v, p) for v, p in EARLY_CASES]
    curves = [v for v, _ in EARLY_CASES]
    if all(got[1] == v[want[1]] for got, want, v in zip(answers, wants, curves, strict=True)):
        return _fail("best is a VALUE of the curve, held_out[best]; return the index best")
    for stop, best in answers:
        if stop != int(stop) or best != int(best):
            return _fail(f"stop and best are indices (whole numbers), got ({stop:g}, {best:g})")
    for k, (_, hint) in enumerate(rules[0]):
        if all(r[k][0] == got for r, got in zip(rules, answers, strict=True)):
            return _fail(hint)
    i = next(i for i, (got, want) in enumerate(zip(answers, wants, strict=True)) if got != want)
    values, patience = EARLY_CASES[i]
    (stop, best), (want_stop, want_best) = (int(a) for a in answers[i]), wants[i]
    case = f"held_out = {values}, patience = {patience}"
    if want_stop == len(values) - 1 and stop != want_stop and best == want_best:
        raise Hint(
            f"{case}: the stop rule never fires on this curve, so stop is the LAST index, "
            f"len(held_out) − 1 = {want_stop}; got {stop}"
        )
    for wrong, hint in rules[i]:
        if (stop, best) == wrong:
            raise Hint(f"{case}: {hint}")
    if best == want_best:
        raise Hint(
            f"{case}: best = {best} is right but stop = {stop} is not: stop at the first i "
            f"with i − best == patience (here {want_stop})"
        )
    raise Hint(f"{case}: got (stop, best) = ({stop}, {best})")


def _fail(hint: str) -> str:
    raise Hint(hint)
