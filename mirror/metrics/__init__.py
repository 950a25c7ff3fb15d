"""Every Prometheus metric of the mirror, defined once. Names are a contract with the shipped dashboard.

Every labelled metric declares, right below its definition, every label combination it can take (`declare`):
those series exist at 0 from start, so the first event of each is seen by ``rate()`` and ``increase()`` (a
series born holding its first event never counts it). Labels whose values come from the configuration (the
remote routes, the HTTP routes an edge serves) are declared as a function of `Known`, and `start` creates them
when the edge starts. A test checks that every labelled metric here is declared.

One package, one module per area (``traffic``, ``http``, ``region``, ``remote``; ``registry`` holds the registry
and the declarations); everything is used as ``metrics.<name>``.
"""

from __future__ import annotations

from mirror.metrics.http import *  # noqa: F401,F403
from mirror.metrics.region import *  # noqa: F401,F403
from mirror.metrics.registry import DECLARED, REGISTRY, Known, exposition, product, series, start
from mirror.metrics.remote import *  # noqa: F401,F403
from mirror.metrics.traffic import *  # noqa: F401,F403

__all__ = ["DECLARED", "REGISTRY", "Known", "exposition", "product", "series", "start"]

start()
