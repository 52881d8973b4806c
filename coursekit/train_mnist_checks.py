"""Checks of the MNIST command's options, run before anything is loaded or trained.

:func:`validate_args` checks every option of :mod:`coursekit.train_mnist` (ranges, the
device, the architecture it builds), the data directory, that the output directory can be
written, and the checkpoint ``--resume`` would continue from. A problem raises
:class:`UsageError`: exit code 2, like argparse's own errors, and a message naming the
option — so that no run is lost after hours of training to a typo or an unwritable folder.
"""

from __future__ import annotations

import argparse
import inspect
import math
import os
import sys
from pathlib import Path

import torch

from coursekit._validation import parse_key_json
from coursekit.datasets.mnist import ENV_VAR, check_mnist_dir
from coursekit.device import default_device
from coursekit.flows.checkpoint import CheckpointError, read_checkpoint
from coursekit.flows.image import ImageRealNVP


class UsageError(SystemExit):
    """A bad option, found before the first training step: exit code 2 (like argparse's
    errors); the message names the option."""

    def __init__(self, message: str):
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _fail(parser: argparse.ArgumentParser, message: str) -> UsageError:
    """Print ``usage`` and ``prog: error: message`` (argparse's format) to stderr; the
    :class:`UsageError` to raise."""
    parser.print_usage(sys.stderr)
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    return UsageError(message)


def _parse_widths(text: str) -> list[int]:
    parts = text.split(",")
    if not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise ValueError(
            f"--hidden: expected positive integer widths separated by commas, got {text!r}"
        )
    return [int(p) for p in parts]


def check_out_dir(out: str | Path) -> str | None:
    """``None`` if ``out`` is (or could be created as) a writable directory, else what is
    wrong. Creates the directory and writes then removes a probe file in it, so that a run
    never trains for hours and then fails to save."""
    path = Path(out)
    for part in (path, *path.parents):
        if part.exists() and not part.is_dir():
            return (
                f"expected a directory to write the run to, got {str(path)!r}: "
                f"{str(part)!r} is a file"
            )
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-probe.tmp"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        return f"cannot write to {str(path)!r} ({err.strerror or err})"
    return None


def validate_args(
    args: argparse.Namespace, p: argparse.ArgumentParser, default_config: dict
) -> None:
    """Every option, the data directory, the output directory and the checkpoint to resume
    from, checked before anything is loaded or trained; :class:`UsageError` naming the option."""

    def number(name: str, value: float | None, low: float, low_open: bool, high: float = math.inf,
               what: str = "") -> None:  # fmt: skip
        if value is None:
            return
        ok = math.isfinite(value) and (value > low if low_open else value >= low) and value < high
        if not ok:
            flag = "--" + name.replace("_", "-")
            raise _fail(p, f"{flag}: expected {what}, got {value!r}")

    for name in (
        "steps",
        "batch_size",
        "eval_every",
        "eval_images",
        "final_eval_images",
        "threads",
    ):
        number(name, getattr(args, name), 0, True, what="a positive integer")
    number("warmup", args.warmup, 0, False, what="an integer >= 0")
    number("seed", args.seed, 0, False, what="an integer >= 0")
    number("max_restarts", args.max_restarts, 0, False, what="a non-negative integer")
    number("lr", args.lr, 0, True, what="a positive number")
    number(
        "clip_grad",
        args.clip_grad,
        0,
        True,
        what="a positive finite number (the max gradient norm)",
    )
    number("ema", args.ema, 0, True, 1.0, what="a number in (0, 1), e.g. 0.999")
    number("max_minutes", args.max_minutes, 0, True, what="a positive number of minutes")
    number("checkpoint_every", args.checkpoint_every, 0, False, what="a number of seconds >= 0")
    if not (math.isfinite(args.max_bpd) and args.max_bpd > 8):
        raise _fail(p, "--max-bpd: expected a number above 8 (the bits/dim of a uniform model)")
    try:
        args.torch_device = str(default_device(args.device))
    except ValueError as error:
        raise _fail(
            p, f"--device: expected auto, cpu, cuda[:N] or mps (one this machine has); "
            f"{str(error).removeprefix('preference: ')}"
        ) from None  # fmt: skip
    allowed = set(inspect.signature(ImageRealNVP).parameters) - {"image_shape"}
    try:
        args.overrides = parse_key_json(args.set, allowed, "--set")
        config = dict(default_config)
        if args.hidden:
            config["hidden"] = _parse_widths(args.hidden)
        config.update(args.overrides)
    except ValueError as error:
        raise _fail(p, str(error)) from None
    try:
        ImageRealNVP(**config)
    except (ValueError, TypeError) as error:
        raise _fail(p, f"--set/--hidden: {error}") from None
    args.config = config
    if args.dequantization not in ("uniform", "variational"):
        raise _fail(
            p, f"--dequantization: expected uniform or variational, got {args.dequantization!r}"
        )
    problem = check_out_dir(args.out)
    if problem:
        raise _fail(p, f"--out: {problem}")
    try:
        if args.data_dir is not None:
            check_mnist_dir(args.data_dir, what="--data-dir")
        elif os.environ.get(ENV_VAR):
            check_mnist_dir(os.environ[ENV_VAR], what=f"{ENV_VAR} (environment variable)")
    except FileNotFoundError as error:
        raise _fail(p, str(error)) from None
    if args.resume:
        try:
            checkpoint = Path(args.out) / "checkpoint.pt"
            read_run(checkpoint, config, torch.device("cpu"), args.dequantization)
        except SystemExit as error:
            raise _fail(p, str(error)) from None


def read_run(
    path: Path, config: dict, device: torch.device, dequantization: str = "uniform"
) -> dict:
    """The checkpoint at ``path``; ``SystemExit`` naming ``--resume`` if it is missing,
    unreadable, of another architecture than ``config`` or another ``--dequantization``."""
    try:
        state = read_checkpoint(path, map_location=device)
    except CheckpointError as error:
        raise SystemExit(f"--resume: {error}") from None
    if state.get("config") != config:
        raise SystemExit(
            f"--resume: checkpoint architecture {state.get('config')} differs from {config}"
        )
    saved_dequantization = state.get("dequantization", "uniform")
    if saved_dequantization != dequantization:
        raise SystemExit(
            f"--resume: the checkpoint was trained with --dequantization {saved_dequantization}, "
            f"not {dequantization}"
        )
    optimizer = state.get("optimizer")
    if not isinstance(optimizer, dict) or "step_count" not in optimizer:  # fit's FlatAdam state
        raise SystemExit(f"--resume: {path} holds no FlatAdam state; start a new run")
    return state
