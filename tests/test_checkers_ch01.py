"""Chapter 1 checkers (1.1–1.7): for each exercise a table of correct-but-different answers that
must pass (another formula, float32 constants, torch.distributions, numpy where allowed) and of
typical wrong answers, each rejected with a hint naming that mistake (one printed line, no
traceback, no LaTeX)."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
import torch
from _checker_runs import table_tests
from scipy import special, stats

import coursekit.checkers as ck
from coursekit.checkers import _common
from coursekit.checkers.ch01_held_out import EARLY_CASES, early_stop_reference, paired_cases

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    # the student's math.log(sigma) of a tensor that requires grad warns: that is the point
    pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad"),
]

Normal = torch.distributions.Normal


def test_chapter_1_exercises():
    assert _common.chapter_exercises(1) == ["1.1", "1.2", "1.3", "1.4", "1.5", "1.6", "1.7"]


# ---------------------------------------------------------------- 1.1 KL of two Gaussians


def kl_ref(m1, s1, m2, s2):
    return math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5


KL_RIGHT = {
    "the closed form": kl_ref,
    "variances, logs apart": lambda m1, s1, m2, s2: (
        0.5 * math.log(s2**2) - 0.5 * math.log(s1**2) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5
    ),
    "float32 tensors": lambda m1, s1, m2, s2: (
        torch.log(torch.tensor(s2) / torch.tensor(s1))
        + (torch.tensor(s1) ** 2 + (torch.tensor(m1) - m2) ** 2) / (2 * torch.tensor(s2) ** 2)
        - 0.5
    ),
    "torch.distributions.kl_divergence, float32": lambda m1, s1, m2, s2: (
        torch.distributions.kl_divergence(Normal(m1, s1), Normal(m2, s2))
    ),
    "numpy": lambda m1, s1, m2, s2: np.float32(
        np.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5
    ),
}
KL_WRONG = {
    "KL(q ‖ p)": (lambda m1, s1, m2, s2: kl_ref(m2, s2, m1, s1), "KL(q ‖ p)"),
    "+1/2": (lambda *a: kl_ref(*a) + 0.5, "exactly 1/2"),
    "sigma as a variance": (
        lambda m1, s1, m2, s2: kl_ref(m1, s1**0.5, m2, s2**0.5),
        "standard deviations, not variances",
    ),
    "no mean term": (lambda m1, s1, m2, s2: kl_ref(m1, s1, m1, s2), "mean difference is missing"),
    "no log ratio": (lambda *a: kl_ref(*a) - math.log(a[3] / a[1]), "log(sigma2/sigma1)"),
}
test_1_1_right, test_1_1_wrong = table_tests(KL_RIGHT, KL_WRONG, ck.check_kl_gaussians, "1.1")


# ---------------------------------------------------------------- 1.2 Monte Carlo KL

MC_RIGHT = {
    "mean of the difference": lambda lp, lq, x: (lp(x) - lq(x)).mean(),
    "difference of the means, float": lambda lp, lq, x: float(lp(x).mean() - lq(x).mean()),
    "numpy": lambda lp, lq, x: np.mean(np.asarray(lp(x)) - np.asarray(lq(x))),
    "float32": lambda lp, lq, x: (lp(x).float() - lq(x).float()).mean(),
}
MC_WRONG = {
    "sign": (lambda lp, lq, x: (lq(x) - lp(x)).mean(), "sign"),
    "sum": (lambda lp, lq, x: (lp(x) - lq(x)).sum(), "factor n"),
    "cross-entropy": (lambda lp, lq, x: -lq(x).mean(), "cross-entropy"),
    "densities": (lambda lp, lq, x: (lp(x).exp() - lq(x).exp()).mean(), "log-densities"),
    "ratio": (lambda lp, lq, x: lp(x).mean() / lq(x).mean(), "not of a ratio"),
}
test_1_2_right, test_1_2_wrong = table_tests(MC_RIGHT, MC_WRONG, ck.check_monte_carlo_kl, "1.2")


# ---------------------------------------------------------------- 1.3 Gaussian NLL


def nll_ref(x, mu, sigma):
    log_p = -0.5 * ((x - mu) / sigma) ** 2 - torch.log(sigma) - 0.5 * math.log(2 * math.pi)
    return -log_p.mean()


def _nll_math_log(x, mu, sigma):
    # math.log turns sigma into a float: the value is right, d/dsigma is not
    return (0.5 * ((x - mu) / sigma) ** 2).mean() + math.log(sigma) + 0.5 * math.log(2 * math.pi)


NLL_RIGHT = {
    "by hand": nll_ref,
    "Normal.log_prob": lambda x, mu, sigma: -Normal(mu, sigma).log_prob(x).mean(),
    "log sigma² and a float32 log(2π)": lambda x, mu, sigma: (
        ((x - mu) ** 2).mean() / (2 * sigma**2)
        + 0.5 * torch.log(sigma**2)
        + 0.5 * torch.log(torch.tensor(2 * torch.pi))
    ),
    "float32 throughout": lambda x, mu, sigma: nll_ref(x.float(), mu.float(), sigma.float()),
}
NLL_WRONG = {
    "sign": (lambda x, m, s: -nll_ref(x, m, s), "MINUS"),
    "sum": (lambda x, m, s: nll_ref(x, m, s) * len(x), "factor n"),
    "no normalisation": (lambda x, m, s: (0.5 * ((x - m) / s) ** 2).mean(), "log(σ√(2π))"),
    "no log 2π": (
        lambda x, m, s: nll_ref(x, m, s) - 0.5 * math.log(2 * math.pi),
        "½·log(2π)",
    ),
    "sigma as a variance": (
        lambda x, m, s: nll_ref(x, m, torch.sqrt(s)),
        "not a variance",
    ),
    "scipy: no gradient": (
        lambda x, m, s: -stats.norm(m.detach().item(), s.detach().item()).logpdf(x.numpy()).mean(),
        "no gradient",
    ),
    "math.log(sigma)": (_nll_math_log, "misses 1/σ"),
    "np.log(sigma)": (
        lambda x, m, s: (0.5 * ((x - m) / s) ** 2).mean() + np.log(s) + np.log(2 * np.pi) / 2,
        "numpy cannot follow them",
    ),
    ".item() at the end": (lambda x, m, s: nll_ref(x, m, s).item(), "no gradient"),
    ".item() of mu": (
        lambda x, m, s: nll_ref(x, torch.tensor(m.item(), dtype=x.dtype), s),
        "does not reach mu",
    ),
}
test_1_3_right, test_1_3_wrong = table_tests(NLL_RIGHT, NLL_WRONG, ck.check_gaussian_nll, "1.3")


# ---------------------------------------------------------------- 1.4 maximum likelihood

MLE_RIGHT = {
    "std(correction=0)": lambda x: (x.mean(), x.std(correction=0)),
    "numpy defaults (ddof=0)": lambda x: (np.mean(x.numpy()), np.std(x.numpy())),
    "moments": lambda x: (x.mean(), (x.pow(2).mean() - x.mean() ** 2).sqrt()),
    "var_mean, float32": lambda x: (
        torch.var_mean(x.float(), correction=0)[1],
        torch.var_mean(x.float(), correction=0)[0].sqrt(),
    ),
    "a list": lambda x: [float(x.mean()), statistics.pstdev(x.tolist())],
}
MLE_WRONG = {
    "n − 1": (lambda x: (x.mean(), x.std()), "(n − 1)"),
    "variance": (lambda x: (x.mean(), x.var(correction=0)), "variance"),
    "median": (lambda x: (x.median(), x.std(correction=0)), "median"),
    "mean absolute deviation": (
        lambda x: (x.mean(), (x - x.mean()).abs().mean()),
        "mean absolute deviation",
    ),
    "one number": (lambda x: x.mean(), "pair"),
}
test_1_4_right, test_1_4_wrong = table_tests(MLE_RIGHT, MLE_WRONG, ck.check_gaussian_mle, "1.4")


# ---------------------------------------------------------------- 1.5 Monte Carlo normaliser


def mc_log_z(log_f, lo, hi, u):
    k, d = u.shape
    return torch.logsumexp(log_f(u), 0) - math.log(k) + d * math.log(hi - lo)


def _max_shift(log_f, lo, hi, u):
    g = log_f(u)
    m = g.max()
    return float(m + torch.log(torch.exp(g - m).mean()) + u.shape[1] * math.log(hi - lo))


def _no_overflow_error(fn):
    def wrapped(*args):
        try:
            return fn(*args)
        except (OverflowError, ValueError):
            return float("inf")

    return wrapped


MCZ_RIGHT = {
    "logsumexp": mc_log_z,
    "max shift": _max_shift,
    "scipy logsumexp, numpy": lambda f, lo, hi, u: (
        special.logsumexp(f(u).numpy()) - np.log(len(u)) + u.shape[1] * np.log(hi - lo)
    ),
    "float32": lambda f, lo, hi, u: mc_log_z(lambda v: f(v).float(), lo, hi, u),
}
MCZ_WRONG = {
    "no volume": (
        lambda f, lo, hi, u: mc_log_z(f, lo, hi, u) - u.shape[1] * math.log(hi - lo),
        "volume of the box",
    ),
    "sum": (
        lambda f, lo, hi, u: torch.logsumexp(f(u), 0) + u.shape[1] * math.log(hi - lo),
        "summed",
    ),
    "Jensen": (
        lambda f, lo, hi, u: f(u).mean() + u.shape[1] * math.log(hi - lo),
        "Jensen",
    ),
    "overflow": (
        _no_overflow_error(
            lambda f, lo, hi, u: math.log(float(f(u).exp().mean()) * (hi - lo) ** u.shape[1])
        ),
        "overflow",
    ),
    "volume in one dimension": (
        lambda f, lo, hi, u: torch.logsumexp(f(u), 0) - math.log(len(u)) + math.log(hi - lo),
        "(hi − lo)^d",
    ),
    "edits u in place": (
        lambda f, lo, hi, u: mc_log_z(f, lo, hi, u.clamp_(lo, hi).mul_(1.0).add_(1e-3)),
        "changed its input u in place",
    ),
}
test_1_5_right, test_1_5_wrong = table_tests(
    MCZ_RIGHT, MCZ_WRONG, ck.check_mc_log_normalizer, "1.5"
)


# ---------------------------------------------------------------- 1.6 paired standard error


def paired(a, b):
    d = a - b
    diff, se = d.mean(), d.std() / math.sqrt(len(d))
    return diff, se, "A" if diff > 2 * se else "B" if diff < -2 * se else "neither"


def _paired_numpy(a, b):
    d = np.asarray(a) - np.asarray(b)
    diff, se = d.mean(), d.std(ddof=0) / np.sqrt(d.size)
    z = diff / se
    return diff, se, ("A" if z > 2 else "B" if z < -2 else "neither")


def _paired_means(a, b):
    diff = a.mean() - b.mean()  # the mean of the differences is the difference of the means
    se = torch.std_mean(a.float() - b.float())[0] / len(a) ** 0.5
    verdict = "neither" if abs(diff) <= 2 * se else ("A" if diff > 0 else "B")
    return float(diff), se, verdict


def _unpaired(a, b):
    se = math.sqrt(float(a.var()) / len(a) + float(b.var()) / len(b))
    diff = float((a - b).mean())
    return diff, se, "A" if diff > 2 * se else "B" if diff < -2 * se else "neither"


def _se_sum(a, b):
    n = len(a)
    se = float(a.std() / math.sqrt(n) + b.std() / math.sqrt(n))
    return float((a - b).mean()), se, "neither"


def _verdict_with_unpaired_se(a, b):
    diff, se, _ = paired(a, b)
    unpaired_se = math.sqrt(float(a.var() + b.var()) / len(a))
    verdict = "A" if diff > 2 * unpaired_se else "B" if diff < -2 * unpaired_se else "neither"
    return diff, se, verdict


def _sign_only(a, b):
    diff, se, _ = paired(a, b)
    return diff, se, "A" if diff > 0 else "B"


PAIRED_RIGHT = {
    "torch": paired,
    "numpy, ddof=0": _paired_numpy,
    "difference of means, float32 std": _paired_means,
    "lower-case verdict": lambda a, b: (*paired(a, b)[:2], paired(a, b)[2].lower()),
}
PAIRED_WRONG = {
    "unpaired standard error": (_unpaired, "unpaired standard error"),
    "sum of the two SEs": (_se_sum, "SAME points"),
    "std of the differences": (
        lambda a, b: ((a - b).mean(), (a - b).std(), "neither"),
        "divides it by √n",
    ),
    "variance of the mean": (
        lambda a, b: ((a - b).mean(), (a - b).var() / len(a), "A"),
        "square root",
    ),
    "NLL difference (sign)": (
        lambda a, b: ((b - a).mean(), paired(a, b)[1], paired(a, b)[2]),
        "sign of diff",
    ),
    "verdict by the sign alone": (_sign_only, "cannot rank the models"),
    "verdict with the unpaired SE": (_verdict_with_unpaired_se, "can be ranked"),
    "verdict reversed": (
        lambda a, b: (*paired(a, b)[:2], {"A": "B", "B": "A"}.get(paired(a, b)[2], "neither")),
        "A is the better model",
    ),
    "a boolean verdict": (lambda a, b: (*paired(a, b)[:2], True), "'A', 'B' or 'neither'"),
    "edits its inputs": (
        lambda a, b: paired(a.sub_(b), torch.zeros_like(b)),
        "changed its input a in place",
    ),
}
test_1_6_right, test_1_6_wrong = table_tests(
    PAIRED_RIGHT, PAIRED_WRONG, ck.check_paired_comparison, "1.6"
)


def test_1_6_cases_teach_the_paired_standard_error():
    """Each case is decided far from the 2-SE threshold, and the unpaired SE is many times the
    paired one (so the unpaired verdict is 'neither' on every case)."""
    for _, a, b in paired_cases():
        diff, se, _ = paired(a, b)
        z = abs(float(diff / se))
        assert z > 4 or z < 0.5
        unpaired_se = math.sqrt(float(a.var() + b.var()) / len(a))
        assert unpaired_se > 8 * float(se) and abs(float(diff)) < 2 * unpaired_se


# ---------------------------------------------------------------- 1.7 early stopping


def early_stop(values, patience):
    best = 0
    for i, v in enumerate(values):
        if v < values[best]:
            best = i
        if i - best >= patience:
            return i, best
    return len(values) - 1, best


def _early_counter(values, patience):
    best_value, best, waited = math.inf, 0, 0
    for i, v in enumerate(values):
        if v < best_value:
            best_value, best, waited = v, i, 0
        else:
            waited += 1
        if waited == patience:
            return i, best
    return len(values) - 1, best


def _early_numpy(values, patience):
    v = np.asarray(values)
    running = np.minimum.accumulate(v)
    best_idx = np.array([int(np.argmax(v[: i + 1] == running[i])) for i in range(len(v))])
    fired = np.nonzero(np.arange(len(v)) - best_idx >= patience)[0]
    stop = int(fired[0]) if len(fired) else len(v) - 1
    return np.int64(stop), torch.tensor(best_idx[stop])


def _early_late(values, patience):
    return early_stop(values, patience + 1)


def _early_from_previous(values, patience):
    best, waited = 0, 0
    for i in range(1, len(values)):
        if values[i] < values[best]:
            best = i
        waited = 0 if values[i] < values[i - 1] else waited + 1
        if waited >= patience:
            return i, best
    return len(values) - 1, best


def _early_past_end(values, patience):
    stop, best = early_stop(values, patience)
    fired = stop - best >= patience
    return (stop if fired else len(values)), best


def _early_no_return(values, patience):
    """The loop's return when the rule fires, and nothing after the loop."""
    stop, best = early_stop(values, patience)
    return (stop, best) if stop - best >= patience else None


def _early_sorts(values, patience):
    out = early_stop(values, patience)
    values.sort()
    return out


EARLY_RIGHT = {
    "loop": early_stop,
    "a counter since the best": _early_counter,
    "numpy running minimum, numpy/tensor indices": _early_numpy,
    "tensors of indices": lambda v, p: tuple(torch.tensor(early_stop(v, p))),
}
EARLY_WRONG = {
    "whole curve": (
        lambda v, p: (len(v) - 1, min(range(len(v)), key=v.__getitem__)),
        "returned its minimum",
    ),
    "best of the whole curve, stop right": (
        lambda v, p: (early_stop(v, p)[0], min(range(len(v)), key=v.__getitem__)),
        "minimum of the WHOLE curve",
    ),
    "one late (> patience)": (_early_late, "one evaluation late"),
    "one early (patience − 1)": (lambda v, p: early_stop(v, p - 1), "one evaluation early"),
    "ties improve": (
        lambda v, p: early_stop_reference(v, p, ties_improve=True),
        "equal value is not an improvement",
    ),
    "counted from the previous value": (_early_from_previous, "since the BEST value"),
    "never fires: one past the end": (_early_past_end, "the stop rule never fires"),
    "never fires: no return": (_early_no_return, "returned None"),
    "1-based": (lambda v, p: (early_stop(v, p)[0] + 1, early_stop(v, p)[1] + 1), "start at 0"),
    "best as a value": (lambda v, p: (early_stop(v, p)[0], v[early_stop(v, p)[1]]), "VALUE"),
    "sorts the list": (_early_sorts, "values = list(values)"),
}
test_1_7_right, test_1_7_wrong = table_tests(
    EARLY_RIGHT, EARLY_WRONG, ck.check_early_stopping, "1.7"
)


def test_1_7_wrong_rules_differ_from_the_right_one_on_some_curve():
    for name, (fn, _) in EARLY_WRONG.items():
        if name in ("sorts the list", "never fires: no return", "best as a value"):
            continue
        outs = [tuple(fn(list(v), p)) for v, p in EARLY_CASES]
        assert outs != [early_stop_reference(v, p) for v, p in EARLY_CASES], name
