"""Bradley-Terry under the leaderboard's prior, by hand, for two contestants: what tests compare the boards with.

With the prior N(1000, PRIOR_SD_ELO^2) on each rating and the ratings at +-d/2 (log-odds units) around the mean,
the posterior mode solves  wins (1 - s(d)) - losses s(d) = d / (2 sd^2)  with s the logistic function (a tie is
half a win for each side). Its left side falls and its right side grows in d, so bisection finds the one root.
"""

from __future__ import annotations

import math

ELO_PER_UNIT = 400 / math.log(10)


def map_gap(wins: float, losses: float, prior_sd_elo: float = 200.0) -> float:
    """The rating gap (Elo points) the posterior mode puts between a contestant with these wins and its rival."""
    sd = prior_sd_elo / ELO_PER_UNIT
    low, high = -50.0, 50.0
    for _ in range(200):
        d = (low + high) / 2
        s = 1 / (1 + math.exp(-d))
        if wins * (1 - s) - losses * s - d / (2 * sd * sd) > 0:
            low = d
        else:
            high = d
    return d * ELO_PER_UNIT
