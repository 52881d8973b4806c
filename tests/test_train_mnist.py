"""The MNIST training command end to end on a tiny fake dataset: it trains, logs test
bits/dim, checkpoints atomically, resumes from the last checkpoint with the same state, and
writes a model that loads with ``weights_only=True``."""

from __future__ import annotations

import json
import os

import pytest
import torch

from coursekit import train_mnist as tm
from coursekit.datasets.mnist import MNIST
from coursekit.device import cpu_model, hardware
from coursekit.flows import DequantizedImageFlow, ImageRealNVP
from coursekit.train_mnist_checkpoints import RunStopped
from coursekit.train_mnist_checks import UsageError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY_CONFIG = dict(
    image_shape=[1, 28, 28],
    n_scales=2,
    hidden=[4, 4],
    n_blocks=1,
    n_checker=1,
    n_channel=1,
    n_final=1,
    scale_bound=3.0,
    alpha=1e-5,
    actnorm=True,
    invconv=True,
    block_kernel=1,
    split_prior=True,
    n_final_checker=None,
    activation="silu",
)  # the shipped model's family (DEFAULT_CONFIG), tiny


@pytest.fixture
def fake_mnist(monkeypatch):
    """32 training and 8 test images of blobs on a black background; a tiny architecture."""
    g = torch.Generator().manual_seed(0)

    def split(n: int, name: str) -> MNIST:
        images = torch.zeros(n, 1, 28, 28, dtype=torch.uint8)
        images[:, :, 8:20, 10:18] = torch.randint(100, 256, (n, 1, 12, 8), generator=g).to(
            torch.uint8
        )
        return MNIST(images, torch.zeros(n, dtype=torch.long), name, "fake", False)

    data = {"train": split(32, "train"), "test": split(8, "test")}
    monkeypatch.setattr(tm, "load_mnist", lambda root, split: data[split])
    monkeypatch.setattr(tm, "DEFAULT_CONFIG", TINY_CONFIG)
    return data


def common(out) -> list[str]:
    return [
        "--out",
        str(out),
        "--batch-size",
        "4",
        "--eval-every",
        "3",
        "--eval-images",
        "4",
        "--warmup",
        "2",
        "--device",
        "cpu",
        "--lr",
        "1e-3",
    ]


def assert_same_run(dir_a, metrics_a: dict, dir_b, metrics_b: dict) -> None:
    """The two runs saved the same model (to 1e-6) and report the same final bits/dim."""
    a = ImageRealNVP.load(str(dir_a / "model.pt")).state_dict()
    b = ImageRealNVP.load(str(dir_b / "model.pt")).state_dict()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key
    assert metrics_b["test_bits_per_dim"] == pytest.approx(metrics_a["test_bits_per_dim"], abs=1e-4)


def test_trains_logs_and_saves_a_loadable_model(tmp_path, fake_mnist, capsys):
    metrics = tm.run(common(tmp_path) + ["--steps", "6"])
    assert metrics["steps"] == 6 and metrics["test_images"] == 8
    assert [e["step"] for e in metrics["log"]] == [3, 6]
    assert all(0 < e["test_bpd"] < 16 for e in metrics["log"])
    assert metrics["config"] == TINY_CONFIG
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["test_bits_per_dim"] == metrics["test_bits_per_dim"]
    model = ImageRealNVP.load(str(tmp_path / "model.pt"))
    assert model.config == TINY_CONFIG
    # the saved (EMA) model gives the logged final figure with the same evaluation
    assert tm.evaluate(model, fake_mnist["test"].images) == pytest.approx(
        metrics["test_bits_per_dim"], abs=1e-3
    )
    assert "final test bits/dim" in capsys.readouterr().out


def test_resume_continues_exactly_where_the_checkpoint_left(tmp_path, fake_mnist):
    # one run of 6 steps ...
    straight = tm.run(common(tmp_path / "a") + ["--steps", "6", "--seed", "3"])
    # ... against 3 steps, a stop (the final checkpoint), then --resume up to 6 steps
    tm.run(common(tmp_path / "b") + ["--steps", "3", "--seed", "3"])
    state = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert state["step"] == 3 and state["config"] == TINY_CONFIG
    resumed = tm.run(common(tmp_path / "b") + ["--steps", "6", "--seed", "3", "--resume"])
    assert resumed["steps"] == 6
    assert_same_run(tmp_path / "a", straight, tmp_path / "b", resumed)


def test_resume_errors_are_clear(tmp_path, fake_mnist):
    with pytest.raises(UsageError, match="no checkpoint"):
        tm.run(common(tmp_path) + ["--steps", "2", "--resume"])
    tm.run(common(tmp_path) + ["--steps", "2"])
    with pytest.raises(UsageError, match="architecture"):
        tm.run(common(tmp_path) + ["--steps", "4", "--resume", "--hidden", "6,6"])


@pytest.mark.parametrize("blow_up", [float("inf"), 1e7])  # non-finite, or finite but absurd
def test_divergence_stops_before_checkpointing_and_the_run_resumes_exactly(
    tmp_path, fake_mnist, monkeypatch, blow_up
):
    straight = tm.run(common(tmp_path / "a") + ["--steps", "6", "--seed", "3"])
    real_loss = tm.nll
    calls = []

    def breaks_at_step_4(model, x):  # the 5th batch (4 updates done) blows up
        calls.append(None)
        loss = real_loss(model, x)
        return loss + blow_up if len(calls) == 5 else loss

    monkeypatch.setattr(tm, "nll", breaks_at_step_4)
    run_b = common(tmp_path / "b") + ["--steps", "6", "--seed", "3", "--checkpoint-every", "0"]
    with pytest.raises(RunStopped) as excinfo:
        tm.run(run_b + ["--max-restarts", "0"])
    message = str(excinfo.value)
    assert "training diverged at step 4" in message and "(--max-bpd 16)" in message
    assert "--resume and a larger --max-restarts" in message
    assert f"{tmp_path / 'b' / 'checkpoint.pt'}, saved before the divergence" in message
    # the checkpoint holds the last weights that gave a sane loss, never the diverged ones
    assert torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["step"] == 3
    monkeypatch.setattr(tm, "nll", real_loss)
    resumed = tm.run(run_b + ["--resume"])
    assert resumed["steps"] == 6
    assert_same_run(tmp_path / "a", straight, tmp_path / "b", resumed)


def test_divergence_restarts_from_the_checkpoint_with_half_the_learning_rate(
    tmp_path, fake_mnist, monkeypatch
):
    real_loss = tm.nll
    calls = []

    def blows_up(model, x, on_calls):
        calls.append(None)
        loss = real_loss(model, x)
        return loss + 1e7 if len(calls) in on_calls else loss

    run = common(tmp_path) + ["--steps", "6", "--checkpoint-every", "0"]
    # once, at the 5th batch: one restart from step 3, then the run completes
    monkeypatch.setattr(tm, "nll", lambda m, x: blows_up(m, x, {5}))
    metrics = tm.run(run)
    assert metrics["steps"] == 6 and len(calls) == 5 + 3  # steps 3, 4, 5 redone
    (restart,) = metrics["restarts"]
    assert restart["diverged_at_step"] == 4 and restart["resumed_at_step"] == 3
    assert restart["lr_scale"] == 0.5 and restart["bpd"] > 16
    assert 0 < metrics["test_bits_per_dim"] < 16
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["lr_scale"] == 0.5 and state["restarts"] == metrics["restarts"]
    # every batch from the 5th on: two restarts (lr x0.5, x0.25), then a clear stop
    calls.clear()
    monkeypatch.setattr(tm, "nll", lambda m, x: blows_up(m, x, range(5, 99)))
    with pytest.raises(RunStopped, match="training diverged at step 3"):  # 3 again
        tm.run(common(tmp_path / "c") + ["--steps", "6", "--checkpoint-every", "0"])
    state = torch.load(tmp_path / "c" / "checkpoint.pt", weights_only=True)
    assert [r["lr_scale"] for r in state["restarts"]] == [0.5, 0.25] and state["step"] == 3


def test_max_bpd_must_exceed_the_uniform_model(tmp_path, fake_mnist, capsys):
    assert tm.main(common(tmp_path) + ["--steps", "2", "--max-bpd", "8"]) == 2
    assert "--max-bpd: expected a number above 8" in capsys.readouterr().err


def test_time_budget_stops_the_run(tmp_path, fake_mnist, capsys):
    metrics = tm.run(common(tmp_path) + ["--steps", "1000", "--max-minutes", "0.0001"])
    assert metrics["steps"] < 1000
    assert "time budget" in capsys.readouterr().out


def test_set_changes_the_architecture_and_is_recorded(tmp_path, fake_mnist):
    metrics = tm.run(
        common(tmp_path)
        + ["--steps", "3", "--set", "n_final_checker=0", 'activation="relu"', "hidden=[6,4]"]
    )
    expected = dict(TINY_CONFIG, n_final_checker=0, activation="relu", hidden=[6, 4])
    assert metrics["config"] == expected
    model = ImageRealNVP.load(str(tmp_path / "model.pt"))
    assert model.config["activation"] == "relu" and model.config["n_final_checker"] == 0
    assert model.config["hidden"] == [6, 4]
    assert not any(isinstance(m, torch.nn.SiLU) for m in model.modules())


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("widths=3", "--set: expected KEY=JSON with KEY one of"),
        ("n_final", "--set: expected KEY=JSON"),
        ("alpha=1e-5x", "--set: the value of alpha is not JSON"),
        ('activation="tanh"', "activation: expected one of"),
    ],
)
def test_set_errors_name_the_option(tmp_path, fake_mnist, capsys, item, message):
    with pytest.raises(UsageError) as excinfo:
        tm.run(common(tmp_path) + ["--steps", "2", "--set", item])
    assert message in str(excinfo.value) + capsys.readouterr().err


def test_the_command_trains_on_dequantized_training_images(tmp_path, fake_mnist, monkeypatch):
    """What the loss sees: batches of ``--batch-size`` images ``(k + u) / 256`` with ``k`` a
    training image and ``u`` in [0, 1)."""
    seen = []
    real_nll = tm.nll

    def recording(model, x):
        seen.append(x.detach().clone())
        return real_nll(model, x)

    monkeypatch.setattr(tm, "nll", recording)
    tm.run(common(tmp_path) + ["--steps", "3"])
    train = fake_mnist["train"].images.double()
    assert len(seen) == 3
    for x in seen:
        assert x.shape == (4, 1, 28, 28) and x.dtype == torch.float32
        assert bool((x >= 0).all()) and bool((x < 1).all())
        k = torch.floor(x.double() * 256)
        assert all(any(torch.equal(img, t) for t in train) for img in k)
        assert not torch.equal(x.double(), k / 256)  # the noise u is there


def test_compile_traces_the_training_loss_as_one_graph(tmp_path, fake_mnist, monkeypatch):
    """``--compile`` runs: with the value checks off during training (``validation(False)``)
    the loss compiles as one graph (``fullgraph=True``; torch's "eager" backend, which checks
    the tracing without compiling C++)."""
    real_compile = torch.compile
    compiled = []

    def checked_compile(fn):
        compiled.append(fn)
        return real_compile(fn, backend="eager", fullgraph=True)

    monkeypatch.setattr(torch, "compile", checked_compile)
    metrics = tm.run(common(tmp_path) + ["--steps", "2", "--compile"])
    assert len(compiled) == 1 and metrics["steps"] == 2
    assert 0 < metrics["test_bits_per_dim"] < 16


def test_resume_refuses_other_training_settings(tmp_path, fake_mnist):
    """A resumed run is the run it continues: another --lr, --batch-size or --ema would make
    its record (metrics.json, model.pt's metadata) wrong, so it is refused."""
    tm.run(common(tmp_path) + ["--steps", "2"])
    for flag, value in [("--lr", "2e-3"), ("--batch-size", "8"), ("--ema", "0.99")]:
        with pytest.raises(UsageError, match=rf"^--resume: the run was started with {flag} "):
            tm.run(common(tmp_path) + ["--steps", "4", "--resume", flag, value])
    assert tm.main(common(tmp_path) + ["--steps", "4", "--resume", "--lr", "2e-3"]) == 2
    assert tm.run(common(tmp_path) + ["--steps", "4", "--resume"])["steps"] == 4


def test_a_variational_run_restarts_after_a_divergence(tmp_path, fake_mnist, monkeypatch):
    """The restart reloads the checkpoint as what the run is (variational), not uniform."""
    real_elbo = tm.negative_elbo_given_noise
    calls = []

    def blows_up(model, x):
        calls.append(None)
        loss = real_elbo(model, x)
        return loss + 1e7 if len(calls) == 5 else loss

    monkeypatch.setattr(tm, "negative_elbo_given_noise", blows_up)
    argv = ["--steps", "6", "--checkpoint-every", "0", "--dequantization", "variational"]
    metrics = tm.run(common(tmp_path) + argv)
    assert metrics["steps"] == 6 and [r["resumed_at_step"] for r in metrics["restarts"]] == [3]


def test_a_failed_checkpoint_write_stops_clearly_and_keeps_the_last_one(
    tmp_path, fake_mnist, monkeypatch, capsys
):
    tm.run(common(tmp_path) + ["--steps", "2"])
    good = (tmp_path / "checkpoint.pt").read_bytes()
    import coursekit.train_mnist_checkpoints as checkpoints

    def disk_full(obj, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoints, "atomic_save", disk_full)
    with pytest.raises(RunStopped, match=r"^--out: cannot write the checkpoint .*No space left"):
        tm.run(common(tmp_path) + ["--steps", "4", "--resume"])
    assert tm.main(common(tmp_path) + ["--steps", "4", "--resume"]) == 1
    assert "the last good checkpoint is kept" in capsys.readouterr().err
    assert (tmp_path / "checkpoint.pt").read_bytes() == good


def test_hardware_names_the_processor_model(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9999\n")
    assert cpu_model(cpuinfo) == "AMD EPYC 9999"
    cpuinfo.write_text("processor\t: 0\nBogoMIPS\t: 50.00\n")  # no model line (some ARM kernels)
    assert cpu_model(cpuinfo) is None
    assert cpu_model(tmp_path / "missing") is None
    text = hardware()
    assert f"{os.cpu_count()} CPUs" in text and torch.__version__ in text


def test_resume_from_a_bad_checkpoint_names_the_problem(tmp_path, fake_mnist):
    tm.run(common(tmp_path) + ["--steps", "2"])
    path = tmp_path / "checkpoint.pt"
    state = torch.load(path, weights_only=True)
    state["optimizer"] = {"state": {}, "param_groups": []}  # a torch.optim.Adam state
    torch.save(state, path)
    with pytest.raises(UsageError, match="no FlatAdam state"):
        tm.run(common(tmp_path) + ["--steps", "4", "--resume"])
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(UsageError, match="truncated or corrupt") as excinfo:
        tm.run(common(tmp_path) + ["--steps", "4", "--resume"])
    assert str(path) in str(excinfo.value)


def test_variational_dequantization_trains_saves_and_resumes_exactly(tmp_path, fake_mnist):
    """--dequantization variational: the pair (flow + q) is trained on the bound, saved,
    reloaded with the logged figure, and a resumed run equals an uninterrupted one."""
    flags = ["--dequantization", "variational", "--seed", "5"]
    straight = tm.run(common(tmp_path / "a") + ["--steps", "6"] + flags)
    pair = DequantizedImageFlow.load(str(tmp_path / "a" / "model.pt"))
    assert pair.config["flow"] == TINY_CONFIG
    assert pair.config["dequantizer"]["hidden"] == tm.DEQUANTIZER_CONFIG["hidden"]
    assert tm.evaluate(pair, fake_mnist["test"].images) == pytest.approx(
        straight["test_bits_per_dim"], abs=1e-3
    )
    assert all(0 < e["test_bpd"] < 16 for e in straight["log"])
    tm.run(common(tmp_path / "b") + ["--steps", "3"] + flags)
    resumed = tm.run(common(tmp_path / "b") + ["--steps", "6", "--resume"] + flags)
    a = DequantizedImageFlow.load(str(tmp_path / "a" / "model.pt")).state_dict()
    b = DequantizedImageFlow.load(str(tmp_path / "b" / "model.pt")).state_dict()
    assert a.keys() == b.keys() and any(k.startswith("dequantizer.") for k in a)
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key
    assert resumed["test_bits_per_dim"] == pytest.approx(straight["test_bits_per_dim"], abs=1e-4)
    # a checkpoint of one kind of dequantization does not resume as the other
    with pytest.raises(UsageError, match="--resume: the checkpoint was trained with"):
        tm.run(common(tmp_path / "b") + ["--steps", "8", "--resume"])


def test_dequantization_flag_is_checked(tmp_path, fake_mnist, capsys):
    assert tm.main(common(tmp_path) + ["--steps", "2", "--dequantization", "gaussian"]) == 2
    assert "--dequantization: expected uniform or variational" in capsys.readouterr().err
