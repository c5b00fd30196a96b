"""Draws from the schema's time distributions (time between failures, time to repair), in seconds.

``random.Random`` rather than a numpy Generator: the model draws one scalar at a time, where the
standard library is roughly twenty times cheaper per call, and its streams are reproducible across
platforms for a given seed (Python documents ``random`` as reproducible for the same seed and version).
"""

from __future__ import annotations

import random
from typing import Callable

from factory_models.schema import Exponential, Fixed, Lognormal, Weibull


def sampler_s(dist: Fixed | Exponential | Lognormal | Weibull, rng: random.Random) -> Callable[[], float]:
    """A function that returns the next duration in seconds drawn from ``dist`` with ``rng``.

    Lognormal is parameterised by its arithmetic mean and the sigma of the underlying normal
    (``mu = ln(mean) - sigma^2 / 2``); Weibull by scale (eta) and shape (beta), as in the schema.
    """
    if isinstance(dist, Fixed):
        value = dist.value_s
        return lambda: value
    if isinstance(dist, Exponential):
        rate = 1.0 / dist.mean_s
        return lambda: rng.expovariate(rate)
    if isinstance(dist, Lognormal):
        mu, sigma = dist.mu, dist.sigma
        return lambda: rng.lognormvariate(mu, sigma)
    if isinstance(dist, Weibull):
        scale, shape = dist.scale_s, dist.shape
        return lambda: rng.weibullvariate(scale, shape)
    raise TypeError(f"unsupported distribution {type(dist).__name__}; expected fixed, exponential, lognormal or weibull")


def stream(seed: int, name: str) -> random.Random:
    """An independent random stream for one component, derived from the run's seed and its name.

    One stream per machine (and per release, per meter) keeps common random numbers between
    scenarios: changing one station's parameters does not reshuffle every other station's draws.
    String seeds are hashed with SHA-512 by ``random.seed`` (version 2), so they do not depend on
    PYTHONHASHSEED.
    """
    return random.Random(f"{seed}:{name}")
