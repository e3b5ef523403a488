"""Pure traffic decisions: weighted choice, sticky-session resolution, failback ramp steps."""

from __future__ import annotations

from collections.abc import Collection, Mapping

MAX_WEIGHT = 100


def eligible(weights: Mapping[str, int], healthy: Collection[str]) -> dict[str, int]:
    """Sites that may take new traffic: healthy and weight > 0."""
    return {s: w for s, w in weights.items() if w > 0 and s in healthy}


def choose(
    weights: Mapping[str, int],
    healthy: Collection[str],
    point: float,
    exclude: Collection[str] = (),
) -> str | None:
    """Weighted choice among eligible sites; ``point`` is uniform in [0, 1).

    Sites are taken in sorted order so the same point always gives the same site."""
    pool = {s: w for s, w in eligible(weights, healthy).items() if s not in exclude}
    total = sum(pool.values())
    if total == 0:
        return None
    target = min(max(point, 0.0), 1.0) * total
    acc = 0
    last = None
    for site in sorted(pool):
        acc += pool[site]
        last = site
        if target < acc:
            return site
    return last


def resolve(
    pinned: str | None,
    weights: Mapping[str, int],
    healthy: Collection[str],
    point: float,
    exclude: Collection[str] = (),
) -> str | None:
    """The site for a request: its sticky site while that one is eligible, else a weighted choice.

    A pinned site that is unhealthy or drained to weight 0 fails over like any other request."""
    if pinned is not None and pinned not in exclude and pinned in eligible(weights, healthy):
        return pinned
    return choose(weights, healthy, point, exclude)


def fallback(
    weights: Mapping[str, int], healthy: Collection[str], exclude: Collection[str]
) -> str | None:
    """The site for a request while every site with weight is down (a failover under way):
    a healthy site without weight. A standby answers the reads it can (discovery, JWKS,
    introspection, userinfo, client_credentials) and refuses writes before changing
    anything, so a refused request can still go to the primary once there is one.
    None when a weighted site is up, or when no site has weight (drained on purpose)."""
    weighted = [s for s, w in weights.items() if w > 0]
    if not weighted or any(s in healthy for s in weighted):
        return None
    pool = sorted(s for s in weights if s in healthy and s not in exclude)
    return pool[0] if pool else None


def validate(weights: Mapping[str, object], known: Collection[str]) -> dict[str, int]:
    """Check a weights update from an operator or controller; ValueError says what is wrong."""
    out: dict[str, int] = {}
    for site, value in weights.items():
        if site not in known:
            raise ValueError(f"unknown site {site!r} (known: {', '.join(sorted(known))})")
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"weight of {site!r} must be an integer 0..{MAX_WEIGHT}")
        if not 0 <= value <= MAX_WEIGHT:
            raise ValueError(f"weight of {site!r} must be 0..{MAX_WEIGHT}, got {value}")
        out[site] = value
    return out


def ramp_steps(to: str, others: list[str], percents: list[int]) -> list[dict[str, int]]:
    """Weights for each step of a gradual move of traffic to ``to`` (e.g. 10, 25, 50, 100 %).

    The remainder is split evenly over ``others`` (the first ones take the rounding)."""
    steps = []
    for pct in percents:
        pct = min(max(pct, 0), MAX_WEIGHT)
        step = {to: pct}
        rest = MAX_WEIGHT - pct
        for i, other in enumerate(others):
            step[other] = rest // len(others) + (1 if i < rest % len(others) else 0)
        steps.append(step)
    return steps


def initial_weights(primary: str, sites: list[str]) -> dict[str, int]:
    """All traffic to the primary until the controller says otherwise."""
    return {s: MAX_WEIGHT if s == primary else 0 for s in sites}
