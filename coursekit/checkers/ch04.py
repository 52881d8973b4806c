"""Checkers for chapter 4, coupling layers (slides: INN – REALNVP: LAYER, INVERSE LAYER,
CALCUL DU JACOBIEN, eq. 12–13).

The student's coupling functions use a boolean ``mask`` of shape (d,) (True = kept ``x1``),
and two networks ``s_net``, ``t_net`` mapping (batch, k) -> (batch, d − k).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import Tensor

from coursekit.checkers._common import Hint, as_float, as_pair, as_tensor, call, checker, close
from coursekit.flows import AffineCoupling, affine_forward

_MASK = torch.tensor([True, False, True, False, False])


def coupling_example(seed: int = 0, batch: int = 16) -> tuple[Tensor, Tensor, Callable, Callable]:
    """``(x, mask, s_net, t_net)``: a fixed 5-D example with nonlinear, nonzero s and t."""
    g = torch.Generator().manual_seed(seed)
    w_s = torch.randn(2, 3, generator=g, dtype=torch.float64)
    w_t = torch.randn(2, 3, generator=g, dtype=torch.float64)
    b_t = torch.randn(3, generator=g, dtype=torch.float64)
    s_net = lambda x1: torch.tanh(x1 @ w_s)
    t_net = lambda x1: torch.sin(x1 @ w_t) + b_t
    x = torch.randn(batch, 5, generator=g, dtype=torch.float64)
    return x, _MASK.clone(), s_net, t_net


def _ref_forward(x: Tensor, mask: Tensor, s_net: Callable, t_net: Callable):
    """The reference answer: eq. (12) from the library's own :func:`affine_forward`."""
    x1, x2 = x[:, mask], x[:, ~mask]
    z2, log_det = affine_forward(x2, s_net(x1), t_net(x1))
    z = x.clone()
    z[:, ~mask] = z2
    return z, log_det


def _split_out(out, x: Tensor, what: str) -> tuple[Tensor, Tensor]:
    first, ld = as_pair(out, what)
    first = as_tensor(first, tuple(x.shape), f"the first output of {what}")
    if isinstance(ld, Tensor) and ld.dim() == 2 and ld.shape[0] == x.shape[0]:
        raise Hint(
            f"log_det has shape {tuple(ld.shape)}: sum over the features so that it "
            f"has shape (batch,) = ({x.shape[0]},)"
        )
    ld = as_tensor(ld, (x.shape[0],), f"the log_det of {what}")
    return first, ld


@checker("4.1", "affine coupling layer: forward and log-det")
def check_coupling_forward(fn: Callable) -> str:
    """``fn(x, mask, s_net, t_net) -> (z, log_det)`` (slide LAYER, eq. 12)."""
    x, mask, s_net, t_net = coupling_example()
    z, ld = _split_out(call(fn, x.clone(), mask.clone(), s_net, t_net), x, "your forward")
    z_ref, ld_ref = _ref_forward(x, mask, s_net, t_net)
    s, t = s_net(x[:, mask]), t_net(x[:, mask])
    if not close(z[:, mask], x[:, mask], rtol=0, atol=1e-12):
        raise Hint("the kept coordinates x1 (mask True) must pass through unchanged")
    z2 = z[:, ~mask]
    x2 = x[:, ~mask]
    if not close(z2, z_ref[:, ~mask], rtol=1e-9, atol=1e-12):
        if close(z2, x2 * s + t, rtol=1e-9):
            raise Hint("scale by exp(s(x1)), not by s(x1)")
        if close(z2, (x2 + t) * torch.exp(s), rtol=1e-9):
            raise Hint("order: scale first, then shift — z2 = x2 ⊙ exp(s) + t")
        if close(z2, x2 * torch.exp(-s) + t, rtol=1e-9):
            raise Hint("the forward scales by exp(+s); exp(−s) belongs to the inverse")
        raise Hint(
            "z2 is wrong: it should be x2 ⊙ exp(s(x1)) + t(x1), with s and t computed "
            "from the kept part x1 = x[:, mask]"
        )
    if close(ld, ld_ref, rtol=1e-9, atol=1e-12):
        return "z and log|det| = Σ s(x1) are right (eq 12)."
    if close(ld, -ld_ref, rtol=1e-9, atol=1e-12):
        raise Hint(
            "wrong sign of the log-det: the forward layer expands by exp(s), so log|det| = +Σ s"
        )
    if close(ld, torch.exp(s).sum(1), rtol=1e-9):
        raise Hint("log|det| = Σ s(x1) (eq 12), not Σ exp(s(x1))")
    if close(ld, torch.exp(s).prod(1), rtol=1e-9):
        raise Hint("you returned |det| = Π exp(s); return its log, Σ s")
    raise Hint("log_det is wrong: it is the sum of s(x1) over the changed features (eq 12)")


@checker("4.2", "affine coupling layer: inverse")
def check_coupling_inverse(fn: Callable) -> str:
    """``fn(z, mask, s_net, t_net) -> (x, log_det)`` undoing the forward (slide INVERSE LAYER)."""
    x, mask, s_net, t_net = coupling_example(seed=1)
    z, ld_fwd = _ref_forward(x, mask, s_net, t_net)
    x_back, ld = _split_out(call(fn, z.clone(), mask.clone(), s_net, t_net), z, "your inverse")
    s, t = s_net(z[:, mask]), t_net(z[:, mask])
    z2 = z[:, ~mask]
    if not close(x_back, x, rtol=1e-9, atol=1e-10):
        back2 = x_back[:, ~mask]
        if not close(x_back[:, mask], x[:, mask], atol=1e-12):
            raise Hint("the kept coordinates z1 must pass through unchanged")
        if close(back2, z2 * torch.exp(-s) - t, rtol=1e-9):
            raise Hint(
                "inverse does not undo forward: undo the shift BEFORE the scale, "
                "x2 = (z2 − t) ⊙ exp(−s)"
            )
        if close(back2, (z2 - t) * torch.exp(s), rtol=1e-9):
            raise Hint("inverse does not undo forward: divide by exp(s), i.e. multiply by exp(−s)")
        err = float((x_back - x).abs().max())
        raise Hint(
            f"inverse does not undo forward (max error {err:.3g}); s and t come from "
            "z1 = z[:, mask] (equal to x1)"
        )
    if close(ld, -ld_fwd, rtol=1e-9, atol=1e-12):
        return "inverse(forward(x)) = x to 1e-10 and log|det ∂x/∂z| = −Σ s."
    if close(ld, ld_fwd, rtol=1e-9, atol=1e-12):
        raise Hint(
            "wrong sign of the log-det: the inverse shrinks by exp(−s), so its "
            "log|det| = −Σ s (forward and inverse log-dets sum to 0)"
        )
    raise Hint("x is right but log_det is not: it should be −Σ s(z1)")


def random_couplings(n_layers: int = 4, dim: int = 4, seed: int = 0) -> list[AffineCoupling]:
    """``n_layers`` float64 coupling layers with alternating masks and random weights."""
    g = torch.Generator().manual_seed(seed)
    half = dim // 2
    layers = []
    for i in range(n_layers):
        mask = [1] * half + [0] * (dim - half) if i % 2 == 0 else [0] * half + [1] * (dim - half)
        layer = AffineCoupling(mask, hidden=(8,)).double()
        with torch.no_grad():
            for p in layer.parameters():
                p.copy_(0.7 * torch.randn(p.shape, generator=g, dtype=torch.float64))
        layers.append(layer)
    return layers


@checker("4.3", "a stack of layers: the chain rule (13)")
def check_compose(fn: Callable) -> str:
    """``fn(layers, x) -> (z, log_det)`` for ``f = l_n ∘ … ∘ l_1`` (eq. 13)."""
    layers = random_couplings()
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    with torch.no_grad():
        z, ld = _split_out(call(fn, copy.deepcopy(layers), x.clone()), x, "your composition")
        h, lds, at_x, rev = x, [], [], x
        for layer in layers:
            h, d = layer(h)
            lds.append(d)
            at_x.append(layer(x)[1])
        for layer in reversed(layers):
            rev, _ = layer(rev)
    if not close(z, h, rtol=1e-9, atol=1e-10):
        if close(z, rev, rtol=1e-9, atol=1e-10):
            raise Hint("wrong order: f = l_n ∘ … ∘ l_1 applies l_1 FIRST")
        raise Hint("z is not l_n(…l_1(x)): feed each layer the output of the previous one")
    want = torch.stack(lds).sum(0)
    if close(ld, want, rtol=1e-9, atol=1e-10):
        return "z and the total log-det Σ_i log|det J_li(x_(i−1))| are right (eq 13)."
    if close(ld, torch.stack(at_x).sum(0), rtol=1e-9, atol=1e-10):
        raise Hint("each log-det must be evaluated at x_(i−1) (the layer's own input), not at x")
    if close(ld, torch.stack(lds).prod(0), rtol=1e-9, atol=1e-10):
        raise Hint("determinants multiply, so log-dets ADD (eq 13)")
    if close(ld, lds[-1], rtol=1e-9, atol=1e-10):
        raise Hint("you kept only the last layer's log-det; sum them over the layers")
    raise Hint("total log-det is wrong: sum the log-dets returned by every layer")


def mask_stacks() -> list[Tensor]:
    """The stacks of masks of exercise 4.4: (n_layers, d) bool tensors, True = kept."""
    t, f = True, False
    return [
        torch.tensor([[t, t, f, f], [f, f, t, t], [t, t, f, f]]),  # alternating halves
        torch.tensor([[t, t, f, f]] * 4),  # the same mask in every layer
        torch.tensor([[t, f, t, f, t, f], [t, t, f, f, t, t], [t, f, f, t, t, f]]),
        torch.tensor([[t, f], [t, f], [f, t]]),
        torch.tensor([[f, t, t], [f, t, f]]),
    ]


def measured_untouched(masks: Tensor, seed: int = 0) -> Tensor:
    """Coordinates that a stack of random float64 ``AffineCoupling`` layers with these masks
    leaves exactly unchanged on 256 random points; (d,) bool."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(256, masks.shape[1], generator=g, dtype=torch.float64)
    h = x
    with torch.no_grad():
        for mask in masks:
            layer = AffineCoupling(mask, hidden=(8,)).double()
            for p in layer.parameters():
                p.copy_(0.5 * torch.randn(p.shape, generator=g, dtype=torch.float64))
            h, _ = layer(h)
    return (h == x).all(dim=0)


_WHERE_MASKS = "see notebook 04, section 'Why the masks must alternate'"


@checker("4.4", "coordinates a stack never transforms")
def check_never_transformed(fn: Callable) -> str:
    """``fn(masks) -> (d,) bool``: True where no layer of the stack changes the coordinate."""
    outputs = []
    for masks in mask_stacks():
        given = masks.clone()
        out = call(fn, given)
        if not torch.equal(given, masks):
            raise Hint(
                f"your function modified the masks tensor in place: work on a copy ({_WHERE_MASKS})"
            )
        if isinstance(out, Tensor) and out.dtype != torch.bool:
            if out.shape == (masks.shape[1],) and bool(((out == 0) | (out == 1)).all()):
                out = out.bool()
        if not isinstance(out, Tensor) or out.dtype != torch.bool:
            raise Hint(
                f"return a boolean tensor of shape (d,), True = never transformed ({_WHERE_MASKS})"
            )
        if out.shape != (masks.shape[1],):
            raise Hint(
                f"for masks of shape {tuple(masks.shape)} (n_layers, d) return shape "
                f"({masks.shape[1]},), one answer per coordinate"
            )
        outputs.append((masks, out.detach().clone()))

    def every(rule: Callable[[Tensor], Tensor]) -> bool:
        return all(torch.equal(out, rule(masks)) for masks, out in outputs)

    if every(measured_untouched):
        return (
            "a coordinate is never transformed exactly when every layer keeps it — measured on "
            "random coupling layers; with alternating masks there is none."
        )
    if every(lambda m: m.any(dim=0)):
        raise Hint(
            "a coordinate is transformed as soon as ONE layer changes it (mask False "
            f"there); it is never transformed only if EVERY layer keeps it ({_WHERE_MASKS})"
        )
    if every(lambda m: ~measured_untouched(m)):
        raise Hint(
            f"you returned the coordinates that ARE transformed; return the others ({_WHERE_MASKS})"
        )
    if every(lambda m: m[0]):
        raise Hint(f"look at every layer of the stack, not only the first ({_WHERE_MASKS})")
    masks = next(m for m, out in outputs if not torch.equal(out, measured_untouched(m)))
    raise Hint(
        f"wrong for the masks {masks.int().tolist()}: a layer changes the coordinates where "
        f"its mask is False ({_WHERE_MASKS})"
    )


@checker("4.5", "zeros of a coupling layer's Jacobian")
def check_jacobian_zeros(fn: Callable[[], int]) -> str:
    """``fn()`` = entries of the 6×6 Jacobian (k = 2) that are 0 whatever s and t are."""
    got = as_float(call(fn))
    if got == 22:
        return (
            "22 = 2·4 (upper-right block) + 2 (off-diagonal of I_2) + 12 (off-diagonal of "
            "diag(exp s))."
        )
    if got == 8:
        raise Hint(
            "the zero upper-right block has 8 entries, but I_k and diag(exp(s)) have "
            "zeros off their diagonals too"
        )
    if got == 20:
        raise Hint("the identity block I_k has off-diagonal zeros too")
    if got in (30, 36 - 6):
        raise Hint("∂z2/∂x1 is a full block, not zero in general")
    raise Hint(
        "count block by block: J = [[I_k, 0], [∂z2/∂x1, diag(exp(s))]] with k = 2, d − k = 4"
    )
