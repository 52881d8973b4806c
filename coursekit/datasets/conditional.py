"""A family of 2-D targets indexed by a context c, for conditional flows (notebook 09).

``p(x | c)`` is the slides' 4 modes with their centres at ``(±c, ±c)`` (σ = 0.5): ``c = 2``
is the slides' example, small ``c`` merges the modes, large ``c`` separates them. Every
member has an exact density, so ``KL(p(·|c) ‖ p_θ(·|c))`` can be estimated for any c.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from coursekit._validation import check_positive_float, check_positive_int
from coursekit.datasets.toy import GaussianMixture


def spread_modes(c: float, std: float = 0.5) -> GaussianMixture:
    """The member ``p(· | c)``: equal-weight ``N((±c, ±c), σ² I)``."""
    c = check_positive_float(c, "c")
    centres = [(-c, -c), (c, c), (c, -c), (-c, c)]
    return GaussianMixture(centres, stds=std, name=f"4 modes at (±{c:g}, ±{c:g})")


class SpreadModesFamily:
    """Pairs ``(x, c)``: ``c`` uniform over ``contexts``, then ``x ~ p(· | c)``.

    ``sample(n, generator)`` returns (n, 3) float64 rows ``[x₁, x₂, c]``, the batches a
    conditional flow is trained on (:func:`coursekit.flows.conditional.conditional_nll_loss`).
    """

    def __init__(self, contexts: Sequence[float], std: float = 0.5):
        values = [check_positive_float(c, "contexts") for c in contexts]
        if not values:
            raise ValueError("contexts: expected at least one context value, got none")
        self.contexts = torch.tensor(values, dtype=torch.float64)
        self.std = check_positive_float(std, "std")

    def member(self, c: float) -> GaussianMixture:
        """``p(· | c)`` (any positive c, seen in training or not)."""
        return spread_modes(c, self.std)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """(n, 3) rows ``[x, c]``."""
        n = check_positive_int(n, "n")
        c = self.contexts[torch.randint(0, len(self.contexts), (n,), generator=generator)]
        signs = 2.0 * torch.randint(0, 2, (n, 2), generator=generator).double() - 1.0
        x = signs * c[:, None] + self.std * torch.randn(
            n, 2, generator=generator, dtype=torch.float64
        )
        return torch.cat([x, c[:, None]], dim=1)
