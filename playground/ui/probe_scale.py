"""The ranges probe panels are drawn on (pure functions): a bar panel's axis (``lo``..``hi``, in calibrated z)
and a heatmap's colour scale (``±vmax``). One reply fits its own; replies shown side by side (the Compare tab)
share ``shared_scale`` of them all, so equal lengths and equal colours mean equal readouts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

BAR_FLOOR = (-2.0, 4.0)  # the axis always shows at least this much
BAR_LIMITS = (-12.0, 16.0)  # and never more than this
HEAT_FLOOR = 4.0  # the heatmap's colour scale reaches at least ±4 z


def bar_values(
    means: Mapping[str, float],
    prompt_last: Mapping[str, float] | None = None,
    thresholds: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[float]:
    """What a bar panel must show: the reply means, the prompt predictions and the drawn warn/act lines."""
    values = [*means.values(), *(prompt_last or {}).values()]
    for trait in means:
        rule = (thresholds or {}).get(trait) or {}
        values += [rule[k] for k in ("warn", "act") if rule.get(k) is not None]
    return [float(v) for v in values]


def bar_range(values: Iterable[float]) -> tuple[float, float]:
    """The axis for ``values``: at least ``BAR_FLOOR``, half a unit beyond the extremes, within ``BAR_LIMITS``."""
    values = list(values)
    if not values:
        return BAR_FLOOR
    lo = min(BAR_FLOOR[0], min(values) - 0.5)
    hi = max(BAR_FLOOR[1], max(values) + 0.5)
    return max(lo, BAR_LIMITS[0]), min(hi, BAR_LIMITS[1])


def heat_vmax(values: Iterable[float], floor: float = HEAT_FLOOR) -> float:
    """The heatmap's colour scale for ``values``: ±the largest magnitude, at least ``floor``."""
    return max([floor, *(abs(float(v)) for v in values)])


@dataclass(frozen=True)
class PanelScale:
    """One bar axis and one heatmap colour scale, for every panel drawn with it."""

    lo: float
    hi: float
    vmax: float

    @property
    def span(self) -> tuple[float, float]:
        return self.lo, self.hi

    def describe(self) -> str:
        return f"bars {self.lo:+.1f} to {self.hi:+.1f} z, heatmap colours ±{self.vmax:.1f} z"


def shared_scale(panels: Iterable[tuple[Iterable[float], Iterable[float]]]) -> PanelScale:
    """One scale for several replies, each given as (its ``bar_values``, its heatmap series): the widest of them."""
    bars: list[float] = []
    heat: list[float] = []
    for bar, series in panels:
        bars += list(bar)
        heat += list(series)
    lo, hi = bar_range(bars)
    return PanelScale(lo, hi, heat_vmax(heat))
