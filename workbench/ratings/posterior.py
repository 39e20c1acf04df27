"""How sure the Bradley-Terry ratings are: a weak prior on every rating and the posterior's normal covariance.

A few votes cannot say much, so every rating starts from a prior: 1000 on the Elo scale with a standard deviation
of PRIOR_SD_ELO (200 points). The fit is the posterior mode (`scoring._fit` with `l2 = PRIOR_L2`), and its
covariance is the inverse of the Fisher information of the votes plus the prior's precision (the Laplace
approximation). With two votes that is wide, where a bootstrap of two identical votes has zero width; with
thousands of votes it matches the bootstrap, since the prior's weight is then negligible.

    cov = covariance(pairs, counts, r, n_models)          # natural log-odds units, from scoring._matchups
    sd = centred_sd(cov, anchor=None) * ELO_PER_UNIT       # each rating's standard deviation, in Elo points

Pure numpy; `scoring.leaderboard` uses it for its intervals and `sampler` for the information a vote would add.
"""

from __future__ import annotations

import math

import numpy as np

ELO_PER_UNIT = 400.0 / math.log(10.0)  # Elo points per natural log-odds unit
PRIOR_SD_ELO = 200.0  # the prior's standard deviation of each rating: a few votes cannot move it far
PRIOR_L2 = (ELO_PER_UNIT / PRIOR_SD_ELO) ** 2  # its precision in log-odds units: the fit's L2 penalty


def win_probability(r: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """P(first beats second) for each row (i, j) of `pairs`, from log-odds ratings `r`."""
    return 1.0 / (1.0 + np.exp(r[pairs[:, 1]] - r[pairs[:, 0]]))


def information(pairs: np.ndarray, counts: np.ndarray, r: np.ndarray, n_models: int) -> np.ndarray:
    """Fisher information of the votes about the ratings: sum of n p (1 - p) x x^T with x = e_i - e_j.

    A tie counts as half a win for each side, and the logistic likelihood's curvature does not depend on the
    outcome, so ties add the same information as decisive votes (as the fit treats them).
    """
    w = counts * (p := win_probability(r, pairs)) * (1.0 - p)
    info = np.zeros((n_models, n_models))
    i, j = pairs[:, 0], pairs[:, 1]
    np.add.at(info, (i, i), w)
    np.add.at(info, (j, j), w)
    np.add.at(info, (i, j), -w)
    np.add.at(info, (j, i), -w)
    return info


def covariance(pairs: np.ndarray, counts: np.ndarray, r: np.ndarray, n_models: int, l2: float = PRIOR_L2) -> np.ndarray:
    """The posterior covariance of the log-odds ratings: (information + l2 I)^-1.

    With `l2 = 0` (no prior) the free shift of all ratings is fixed by adding the mean's direction, which does
    not change the variance of any difference or of any rating relative to the mean.
    """
    precision = information(pairs, counts, r, n_models) + l2 * np.eye(n_models)
    if l2 <= 0:
        precision += np.full((n_models, n_models), 1.0 / n_models)
    return np.linalg.inv(precision)


def contrast(n_models: int, anchor: int | None = None) -> np.ndarray:
    """The matrix that turns ratings into what is shown: relative to their mean, or to the anchor's rating."""
    if anchor is None:
        return np.eye(n_models) - np.full((n_models, n_models), 1.0 / max(n_models, 1))
    c = np.eye(n_models)
    c[:, anchor] -= 1.0
    return c


def centred_sd(cov: np.ndarray, anchor: int | None = None) -> np.ndarray:
    """Each shown rating's standard deviation (log-odds units): relative to the mean, or to the anchor (0)."""
    c = contrast(len(cov), anchor)
    return np.sqrt(np.clip(np.einsum("ij,jk,ik->i", c, cov, c), 0.0, None))
