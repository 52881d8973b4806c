"""Device choice and the notebook refresh tool."""

from __future__ import annotations

import nbformat
import pytest
import torch

from coursekit import notebook_tools
from coursekit.device import default_device


def test_auto_device_is_available_and_cpu_can_be_forced():
    device = default_device()
    assert device.type in {"cpu", "cuda", "mps"}
    torch.zeros(1, device=device)  # usable
    assert default_device("cpu") == torch.device("cpu")


def test_unavailable_or_unknown_devices_are_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert default_device() == torch.device("cpu")
    with pytest.raises(ValueError, match="preference.*CUDA"):
        default_device("cuda")
    with pytest.raises(ValueError, match="preference.*MPS"):
        default_device("mps")
    with pytest.raises(ValueError, match="preference"):
        default_device("tpu-please")


def test_auto_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert default_device().type == "mps"


def _notebook(path, source: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


def test_execute_stores_outputs_without_timings(tmp_path, capsys):
    good = tmp_path / "good.ipynb"
    _notebook(good, "print(6 * 7)")
    # a missing notebook (a typo) fails the call before anything runs
    assert notebook_tools.main(["execute", str(good), str(tmp_path / "missing.ipynb")]) == 2
    assert "missing.ipynb: no such notebook" in capsys.readouterr().err
    assert nbformat.read(good, as_version=4).cells[0].outputs == []
    assert notebook_tools.main(["execute", str(good)]) == 0
    nb = nbformat.read(good, as_version=4)
    (cell,) = nb.cells
    assert cell.outputs[0]["text"] == "42\n"
    assert "execution" not in cell.metadata
    assert "executed" in capsys.readouterr().out


def test_execute_reports_a_failing_notebook_and_fails(tmp_path, capsys):
    bad = tmp_path / "bad.ipynb"
    _notebook(bad, "raise RuntimeError('boom')")
    assert notebook_tools.main(["execute", str(bad)]) == 1
    assert "FAILED" in capsys.readouterr().err
