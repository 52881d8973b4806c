"""The MNIST command's options, checked before anything is loaded or trained.

:func:`parse_args` reads the command line and :func:`validate_args` checks every option
(ranges bounded before any work proportional to them, the device, the architecture it
builds), the data directory, that the output directory can be written, and the checkpoint
``--resume`` would continue from (:func:`read_run`: the same architecture and training
settings). A problem raises :class:`UsageError` naming the option; only
:func:`coursekit.train_mnist.main` turns it into exit code 2, like argparse's own errors —
so that no run is lost after hours of training to a typo or an unwritable folder.
"""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import fields
from pathlib import Path

import torch

from coursekit._validation import parse_key_json
from coursekit.datasets.mnist import ENV_VAR, check_mnist_dir
from coursekit.device import default_device
from coursekit.flows.checkpoint import CheckpointError, read_checkpoint
from coursekit.flows.image import ImageRealNVP
from coursekit.flows.image_config import ImageFlowConfig
from coursekit.training_checks import SEED_LIMIT

PROG = "python -m coursekit.train_mnist"

#: flag, type, default, help
OPTIONS: list[tuple[str, type, object, str | None]] = [
    ("--out", str, "runs/mnist", "run directory (checkpoints, logs)"),
    ("--data-dir", str, None, "directory with the MNIST IDX files"),
    ("--steps", int, 6000, "optimisation steps"),
    ("--max-minutes", float, None, "training-time budget (evaluations, checkpoints apart)"),
    ("--batch-size", int, 64, None),
    ("--lr", float, 1e-3, "peak learning rate (Adam)"),
    ("--warmup", int, 200, "linear warm-up steps"),
    ("--ema", float, 0.999, "EMA decay of the weights"),
    ("--clip-grad", float, 50.0, "max gradient norm"),
    (
        "--max-bpd",
        float,
        16.0,
        "a training batch above this many bits/dim (default: twice the 8 of a uniform model) "
        "counts as a divergence, like NaN or Inf (--max-restarts)",
    ),
    ("--seed", int, 0, None),
    ("--device", str, "auto", "auto | cpu | cuda | mps"),
    ("--threads", int, None, "torch CPU threads"),
    ("--checkpoint-every", float, 180.0, "seconds"),
    ("--eval-every", int, 500, "steps between test evals"),
    ("--eval-images", int, 2000, "test images per eval"),
    ("--final-eval-images", int, None, "default: all"),
    ("--hidden", str, None, "conditioner widths per scale, e.g. 16,48,64"),
    (
        "--dequantization",
        str,
        "uniform",
        "uniform | variational (a learned q(u | k), trained with the flow on the bound "
        "E_q[log p(k + u) - log q(u | k)])",
    ),
    (
        "--max-restarts",
        int,
        2,
        "on divergence, reload the last checkpoint and halve the learning rate, at most this "
        "many times (0: stop the run instead)",
    ),
]

#: integer options: (smallest, largest) accepted value; the largest bounds the work and
#: memory an option asks for before anything is built.
INTEGERS = {
    "steps": (1, 10**9),
    "batch_size": (1, 2**16),
    "eval_every": (1, 10**9),
    "eval_images": (1, 10**6),
    "final_eval_images": (1, 10**6),
    "threads": (1, 1024),
    "warmup": (0, 10**9),
    "seed": (0, SEED_LIMIT - 1),
    "max_restarts": (0, 100),
}

#: real options: (low, high, low included, what is expected).
REALS = {
    "lr": (0.0, 1.0, False, "a number in (0, 1]"),
    "clip_grad": (0.0, 1e6, False, "a number in (0, 1e6] (the max gradient norm)"),
    "ema": (0.0, 1.0 - 1e-12, False, "a number in (0, 1), e.g. 0.999"),
    "max_minutes": (0.0, 1e7, False, "a positive number of minutes"),
    "checkpoint_every": (0.0, 6e8, True, "a number of seconds in [0, 6e8] (--max-minutes' bound)"),
    "max_bpd": (8.0, math.inf, False, "a number above 8 (the bits/dim of a uniform model)"),
}

#: the architecture's sizes, bounded before the model is built (on the meta device, to count
#: its parameters without allocating them).
MAX_COUNT, MAX_WIDTH, MAX_PARAMETERS = 64, 4096, 10**8

#: what a resumed run must share with the run it continues (the record would be wrong else);
#: ``--steps`` and ``--max-minutes`` may grow.
RUN_SETTINGS = ("batch_size", "lr", "warmup", "ema", "clip_grad", "max_bpd", "seed")


class UsageError(ValueError):
    """A bad option, data directory, output directory or checkpoint, found before the first
    training step; the message names the option (``main`` exits with code 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors, raised, not exited
        raise UsageError(message)


def make_parser() -> argparse.ArgumentParser:
    """The command line's parser (its errors raise :class:`UsageError`)."""
    p = _Parser(prog=PROG, description="Train a multi-scale RealNVP on MNIST (maximum likelihood).")
    for flag, kind, default, text in OPTIONS:
        p.add_argument(flag, type=kind, default=default, help=text)
    p.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=JSON",
        help='architecture changes to the default config, e.g. n_final=4 activation="relu"',
    )
    p.add_argument("--compile", action="store_true", help="torch.compile the training loss")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--quick", action="store_true", help="CI-sized run: 120 steps, small evals")
    return p


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_numbers(args: argparse.Namespace) -> None:
    """Every numeric option within its bounds (:data:`INTEGERS`, :data:`REALS`)."""
    for name, (low, high) in INTEGERS.items():
        value = getattr(args, name)
        if value is not None and not low <= value <= high:
            what = "a positive integer" if low == 1 else f"an integer >= {low}"
            raise UsageError(f"{_flag(name)}: expected {what} (at most {high}), got {value!r}")
    for name, (low, high, closed, what) in REALS.items():
        value = getattr(args, name)
        if value is not None and not (
            math.isfinite(value) and (value >= low if closed else value > low) and value <= high
        ):
            raise UsageError(f"{_flag(name)}: expected {what}, got {value!r}")
    if args.dequantization not in ("uniform", "variational"):
        raise UsageError(
            f"--dequantization: expected uniform or variational, got {args.dequantization!r}"
        )


def _parse_widths(text: str) -> list[int]:
    parts = text.split(",")
    if not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise UsageError(
            f"--hidden: expected positive integer widths separated by commas, got {text!r}"
        )
    return [int(p) for p in parts]


def check_config(args: argparse.Namespace, default_config: dict) -> dict:
    """The architecture of ``--hidden`` and ``--set`` over ``default_config``: sizes bounded,
    then built on the meta device (no memory) to check it and count its parameters."""
    allowed = {f.name for f in fields(ImageFlowConfig)} - {"image_shape"}
    try:
        args.overrides = parse_key_json(args.set, allowed, "--set")
    except ValueError as error:
        raise UsageError(str(error)) from None
    config = dict(default_config)
    if args.hidden:
        config["hidden"] = _parse_widths(args.hidden)
    config.update(args.overrides)
    for key, limit in [("hidden", MAX_WIDTH), ("n_scales", 8)] + [
        (k, MAX_COUNT) for k in ("n_blocks", "n_checker", "n_channel", "n_final", "n_final_checker")
    ]:
        values = config.get(key)
        values = values if isinstance(values, list) else [values]
        if any(isinstance(v, int) and v > limit for v in values):
            raise UsageError(f"--set/--hidden: {key}: expected at most {limit}, got {config[key]}")
    try:
        with torch.device("meta"):
            n = sum(p.numel() for p in ImageRealNVP(**config).parameters())
    except (ValueError, TypeError) as error:
        raise UsageError(f"--set/--hidden: {error}") from None
    if n > MAX_PARAMETERS:
        raise UsageError(f"--set/--hidden: {n:,} parameters, expected at most {MAX_PARAMETERS:,}")
    return config


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


def check_device(args: argparse.Namespace) -> None:
    """``--device``: auto, cpu, cuda[:N] or mps that this machine has (sets ``torch_device``)."""
    try:
        device = default_device(args.device)
    except ValueError as error:
        raise UsageError(
            "--device: expected auto, cpu, cuda[:N] or mps (one this machine has); "
            + str(error).removeprefix("preference: ")
        ) from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"--device: expected auto, cpu, cuda[:N] or mps, got {args.device!r}")
    args.torch_device = str(device)


def check_data_dir(args: argparse.Namespace) -> None:
    """``--data-dir`` (or the environment variable) holds the four MNIST files."""
    try:
        if args.data_dir is not None:
            check_mnist_dir(args.data_dir, what="--data-dir")
        elif os.environ.get(ENV_VAR):
            check_mnist_dir(os.environ[ENV_VAR], what=f"{ENV_VAR} (environment variable)")
    except FileNotFoundError as error:
        raise UsageError(str(error)) from None


def validate_args(args: argparse.Namespace, default_config: dict) -> None:
    """Every option, the data directory, the output directory and the checkpoint to resume
    from, checked before anything is loaded or trained; :class:`UsageError` naming the option."""
    check_numbers(args)
    check_device(args)
    args.config = check_config(args, default_config)
    problem = check_out_dir(args.out)
    if problem:
        raise UsageError(f"--out: {problem}")
    check_data_dir(args)
    if args.resume:
        read_run(Path(args.out) / "checkpoint.pt", args, torch.device("cpu"))


def read_run(path: Path, args: argparse.Namespace, device: torch.device) -> dict:
    """The checkpoint at ``path``, for ``--resume`` or a restart after a divergence;
    :class:`UsageError` naming ``--resume`` if it is missing, unreadable, or of another
    architecture, ``--dequantization`` or training setting (:data:`RUN_SETTINGS`) than
    ``args``: a resumed run continues the run it names, never a silently different one."""
    try:
        state = read_checkpoint(path, map_location=device)
    except CheckpointError as error:
        raise UsageError(f"--resume: {error}") from None
    if state.get("config") != args.config:
        raise UsageError(
            f"--resume: checkpoint architecture {state.get('config')} differs from {args.config}"
        )
    saved = state.get("dequantization", "uniform")
    if saved != args.dequantization:
        raise UsageError(
            f"--resume: the checkpoint was trained with --dequantization {saved}, "
            f"not {args.dequantization}"
        )
    recorded = state.get("args", {})
    for name in RUN_SETTINGS:
        if name in recorded and recorded[name] != getattr(args, name):
            raise UsageError(
                f"--resume: the run was started with {_flag(name)} {recorded[name]}, not "
                f"{getattr(args, name)}; resume with the run's own settings (or start a new "
                "run in another --out)"
            )
    optimizer = state.get("optimizer")
    if not isinstance(optimizer, dict) or "step_count" not in optimizer:  # fit's FlatAdam state
        raise UsageError(f"--resume: {path} holds no FlatAdam state; start a new run")
    return state
