"""Two classical density estimators to set beside the flows (notebook 09).

* :class:`GaussianKDE`: the kernel density estimate ``p̂(x) = (1/n) Σ_i N(x; x_i, H)`` with
  Scott's bandwidth ``H = n^{−2/(d+4)} Σ̂`` (Σ̂ the sample covariance), as
  ``scipy.stats.gaussian_kde`` (Parzen, 1962; Scott, 1992).
* :func:`fit_gmm`: a Gaussian mixture with full covariances fitted by expectation–maximisation
  (Dempster, Laird & Rubin, 1977), started from means drawn among the data (k-means++ style).

Both have ``log_prob(x)`` (batch, d) -> (batch,) in float64, so
:func:`coursekit.metrics.kl_with_se` measures them like a flow.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from coursekit._validation import check_positive_int, check_tensor
from coursekit.flows.base import LOG_2PI


def _gaussian_log_prob(x: Tensor, means: Tensor, chol: Tensor) -> Tensor:
    """``log N(x_b; μ_k, L_k L_kᵀ)`` for x (batch, d), means (K, d), chol (K, d, d); (batch, K)."""
    d = x.shape[1]
    diff = (x[:, None, :] - means[None]).permute(1, 2, 0)  # (K, d, batch)
    sol = torch.linalg.solve_triangular(chol, diff, upper=False)  # L⁻¹ (x − μ)
    maha = (sol**2).sum(1).T  # (batch, K)
    log_det = 2 * torch.log(torch.diagonal(chol, dim1=1, dim2=2)).sum(1)  # (K,)
    return -0.5 * (maha + log_det + d * LOG_2PI)


class GaussianKDE:
    """Kernel density estimate with a Gaussian kernel of covariance ``H = h² Σ̂``.

    Args:
        data: (n, d) points.
        factor: ``h``; default Scott's ``n^{−1/(d+4)}``.
    """

    def __init__(self, data: Tensor, factor: float | None = None):
        check_tensor(data, "data")
        if data.dim() != 2 or data.shape[0] < 2:
            raise ValueError(f"data: expected shape (n, d) with n ≥ 2, got {tuple(data.shape)}")
        self.data = data.detach().double()
        n, d = self.data.shape
        self.factor = n ** (-1.0 / (d + 4)) if factor is None else float(factor)
        if not self.factor > 0:
            raise ValueError(f"factor: expected a positive bandwidth factor, got {factor!r}")
        cov = torch.cov(self.data.T).reshape(d, d)
        self.bandwidth = self.factor**2 * cov
        self._chol = torch.linalg.cholesky(self.bandwidth)[None]

    def log_prob(self, x: Tensor, batch_size: int = 1_000) -> Tensor:
        """``log (1/n) Σ_i N(x; x_i, H)``, (batch,)."""
        check_tensor(x, "x", event_shape=(self.data.shape[1],))
        x = x.double()
        out = []
        for chunk in x.split(check_positive_int(batch_size, "batch_size")):
            diff = (chunk[:, None, :] - self.data[None]).reshape(-1, self.data.shape[1])
            lp = _gaussian_log_prob(diff, diff.new_zeros(1, diff.shape[1]), self._chol)
            out.append(torch.logsumexp(lp.reshape(len(chunk), -1), 1) - math.log(len(self.data)))
        return torch.cat(out)


class FullGaussianMixture:
    """``Σ_k w_k N(μ_k, Σ_k)`` with full covariances; ``log_prob`` and ``sample``."""

    def __init__(self, weights: Tensor, means: Tensor, covariances: Tensor):
        self.weights = weights.double()
        self.means = means.double()
        self.covariances = covariances.double()
        self._chol = torch.linalg.cholesky(self.covariances)

    def log_prob(self, x: Tensor) -> Tensor:
        """(batch, d) -> (batch,)."""
        check_tensor(x, "x", event_shape=(self.means.shape[1],))
        lp = _gaussian_log_prob(x.double(), self.means, self._chol)
        return torch.logsumexp(lp + self.weights.log(), dim=1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        n = check_positive_int(n, "n")
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, self.means.shape[1], generator=generator, dtype=torch.float64)
        return self.means[k] + (self._chol[k] @ eps[:, :, None])[:, :, 0]


def fit_gmm(
    data: Tensor,
    k: int,
    iterations: int = 200,
    generator: torch.Generator | None = None,
    reg: float = 1e-6,
    tol: float = 1e-10,
) -> FullGaussianMixture:
    """Fit ``k`` full-covariance Gaussians to ``data`` (n, d) by EM.

    Start: k-means++ means drawn among the data from ``generator`` (each next mean drawn with
    probability ∝ squared distance to the nearest chosen one), covariances the data's, equal
    weights. Each iteration: responsibilities ``r_ik ∝ w_k N(x_i; μ_k, Σ_k)`` (E step), then
    ``w_k = mean_i r_ik``, ``μ_k``, ``Σ_k`` their weighted moments + ``reg·I`` (M step); stops
    when the mean log-likelihood gains less than ``tol``.
    """
    check_tensor(data, "data")
    k = check_positive_int(k, "k")
    iterations = check_positive_int(iterations, "iterations")
    x = data.detach().double()
    n, d = x.shape
    if n < k:
        raise ValueError(f"data: expected at least k = {k} points, got {n}")
    first = int(torch.randint(0, n, (1,), generator=generator))
    centres = [x[first]]
    for _ in range(1, k):
        d2 = torch.cdist(x, torch.stack(centres)).min(1).values ** 2
        centres.append(x[int(torch.multinomial(d2 / d2.sum(), 1, generator=generator))])
    means = torch.stack(centres)
    eye = torch.eye(d, dtype=torch.float64)
    covs = torch.cov(x.T).reshape(d, d).expand(k, d, d).clone() + reg * eye
    weights = torch.full((k,), 1.0 / k, dtype=torch.float64)
    previous = -math.inf
    for _ in range(iterations):
        lp = _gaussian_log_prob(x, means, torch.linalg.cholesky(covs)) + weights.log()
        total = torch.logsumexp(lp, 1, keepdim=True)
        resp = (lp - total).exp()  # (n, k)
        nk = resp.sum(0) + 1e-12
        weights = nk / n
        means = (resp.T @ x) / nk[:, None]
        diff = x[None] - means[:, None]  # (k, n, d)
        covs = torch.einsum("kn,kni,knj->kij", resp.T, diff, diff) / nk[:, None, None] + reg * eye
        current = float(total.mean())
        if current - previous < tol:
            break
        previous = current
    return FullGaussianMixture(weights, means, covs)
