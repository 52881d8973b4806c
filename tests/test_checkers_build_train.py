"""Checkers of exercise 4.4 (coordinates a stack never transforms) and 5.6 (build and train
your own RealNVP): each accepts the reference and rejects each classic mistake with its own
hint (one printed line, no traceback)."""

from __future__ import annotations

import math
import time
from pathlib import Path

import nbformat
import pytest
import torch
from _checker_runs import accepts, rejects, run
from torch import nn

import coursekit.checkers as ck
from coursekit.checkers import _hints, ch05_train
from coursekit.checkers.ch04_structure import mask_stacks, measured_untouched

SOLUTION_05 = Path(__file__).resolve().parents[1] / "solutions" / "05_realnvp_toy.ipynb"
BEGIN = "### BEGIN SOLUTION Exercise 5.6: build and train your own RealNVP"


# ----------------------------------------------------------------------------- exercise 4.4


def test_measured_untouched_is_the_and_of_the_masks():
    for masks in mask_stacks():
        assert torch.equal(measured_untouched(masks), masks.all(dim=0))


def test_ch04_never_transformed(capsys):
    accepts(capsys, ck.check_never_transformed, lambda m: m.all(dim=0))
    accepts(capsys, ck.check_never_transformed, lambda m: m.all(dim=0).int())
    rejects(capsys, ck.check_never_transformed, lambda m: m.any(dim=0), hint="EVERY layer")
    rejects(capsys, ck.check_never_transformed, lambda m: ~m.all(dim=0), hint="ARE transformed")
    rejects(capsys, ck.check_never_transformed, lambda m: m[0].clone(), hint="not only the first")
    rejects(capsys, ck.check_never_transformed, lambda m: m.all(), hint="shape")

    def in_place(m):
        m[-1] = m[0]
        return m.all(dim=0)

    rejects(capsys, ck.check_never_transformed, in_place, hint="in place")
    out = rejects(capsys, ck.check_never_transformed, lambda m: m.any(dim=0), hint="notebook 04")
    assert "Why the masks must alternate" in out


# ----------------------------------------------------------------------------- exercise 5.6


def _solution_source() -> str:
    nb = nbformat.read(SOLUTION_05, as_version=4)
    cells = [c.source for c in nb.cells if c.cell_type == "code" and BEGIN in c.source]
    assert len(cells) == 1
    lines = [
        line
        for line in cells[0].split("\n")
        if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line
    ]
    code = "\n".join(lines)
    return code.split('print(f"the checker trains')[0]


def _load(replace: tuple[str, str] | None = None) -> dict:
    """The reference of exercise 5.6 (from the solution notebook), optionally with one edit."""
    source = _solution_source()
    if replace is not None:
        old, new = replace
        assert old in source, old
        source = source.replace(old, new)

    ns = {"torch": torch, "nn": nn, "math": math}
    exec(compile(source, str(SOLUTION_05), "exec"), ns)
    return ns


LOSS = "loss = -log_px.mean()"
WRONG = {
    "same mask": (
        "masks = [torch.tensor([i % 2 == 0, i % 2 == 1]) for i in range(n_layers)]",
        "masks = [torch.tensor([True, False]) for i in range(n_layers)]",
        "masks must alternate",
    ),
    "detached loss": (LOSS, LOSS + ".detach().requires_grad_()", "detached"),
    "detached loss (raises)": (LOSS, LOSS + ".detach()", "detached"),
    "sign error": (LOSS, "loss = log_px.mean()", "sign error"),
    "sum, not mean": (LOSS, "loss = -log_px.sum()", "sums over the batch"),
    "no zero_grad": ("        optimizer.zero_grad()\n", "", "zero_grad"),
    "input modified in place": (
        "    z = x.clone()\n    z[:, ~mask] = x2",
        "    z = x\n    z[:, ~mask] = x2",
        "in place",
    ),
}


@pytest.mark.parametrize("name", list(WRONG), ids=list(WRONG))
def test_ch05_build_and_train_rejects_each_classic_mistake(capsys, name):
    old, new, hint = WRONG[name]
    ns = _load((old, new))
    out = rejects(capsys, ck.check_build_and_train, ns["build_flow"], ns["train"], hint=hint)
    if name != "input modified in place":
        assert "see notebook 0" in out  # names the lecture notebook and section


def test_ch05_build_and_train_untouched_is_not_done(capsys):
    def build_flow(seed):
        raise NotImplementedError("Exercise 5.6: build and train your own RealNVP")

    ok, out = run(capsys, ck.check_build_and_train, build_flow, lambda f, s, n: None)
    assert ok is False and "not done yet" in out


def test_ch05_build_and_train_catches_a_wrong_inverse(capsys):
    ns = _load(("x[:, ~mask] = (z2 - t) * torch.exp(-s)", "x[:, ~mask] = z2 * torch.exp(-s) - t"))
    rejects(capsys, ck.check_build_and_train, ns["build_flow"], ns["train"], hint="1e-10")


#: correct answers written differently: (the line of the reference, its replacement)
RIGHT = {
    "the reference": None,
    "MultivariateNormal for the base density, float32": (
        LOSS,
        "loss = -(torch.distributions.MultivariateNormal(torch.zeros(2), torch.eye(2))"
        ".log_prob(z) + log_det).mean()",
    ),
    "a float32 log(2π) constant": (
        "- 0.5 * z.shape[1] * math.log(2 * math.pi)",
        "- torch.log(torch.tensor(2 * torch.pi))",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(RIGHT), ids=list(RIGHT))
def test_ch05_build_and_train_accepts_right_answers_within_the_cpu_budget(capsys, name):
    ns = _load(RIGHT[name])
    out = accepts(capsys, ck.check_build_and_train, ns["build_flow"], ns["train"])
    assert "KL(p ‖ p_θ) =" in out


def test_ch05_training_limit_counts_cpu_time_not_the_wall_clock(monkeypatch):
    """Issue 27: a 60 s wall-clock watchdog stopped a right loop on a loaded machine. A train
    that waits (no CPU) longer than the CPU limit is not stopped; one that computes is, and
    the hint says CPU time."""
    monkeypatch.setattr(ch05_train, "MAX_CPU_SECONDS", 0.3)
    flow = nn.Linear(2, 2)

    def waits(flow, sampler, steps):
        time.sleep(0.6)

    assert ch05_train.train_with_cpu_limit(waits, flow) < 0.3

    def computes(flow, sampler, steps):
        while True:
            sum(range(1000))

    with pytest.raises(_hints.Hint, match="s of CPU time"):
        ch05_train.train_with_cpu_limit(computes, flow)
