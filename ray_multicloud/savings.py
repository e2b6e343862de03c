"""Savings figures that say what they compare against, with and without private machines.

Pure over ledger rows (``Ledger.spend``). Every figure the project prints (``ray-multicloud
report``, the demo's summary, the README) is ``1 - spend / baseline`` where

- *spend* is what the ledger recorded: public offers at their list price (spot prices as they
  moved), private machines at their amortised $/h (``clouds/private.py``, "Price");
- *baseline* (``BASELINE``) is the on-demand list price of the same node hours on the same
  machine; for a private machine, its declared ``ondemand_equivalent_per_hour`` (the public
  on-demand price of a like machine; unset: its own price, so it claims nothing).

A private machine's saving rests on two estimates (its amortised price and its on-demand
equivalent) rather than two price lists, so every figure is also given over the public-cloud
rows alone (``SavingsSplit.public``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ray_multicloud.ledger import SpendRow

PRIVATE_DRIVERS = frozenset({"private", "ssh"})  # drivers of machines the team owns
BASELINE = (
    "the on-demand list price of the same node hours on the same machine (a private machine: its "
    "ondemand_equivalent_per_hour, and it is charged at its amortised $/h)"
)


@dataclass(frozen=True, slots=True)
class Savings:
    """Spend against the baseline over some rows."""

    cost_usd: float
    baseline_usd: float
    instances: int

    @property
    def saved_usd(self) -> float:
        return self.baseline_usd - self.cost_usd

    @property
    def fraction(self) -> float:
        return self.saved_usd / self.baseline_usd if self.baseline_usd > 0 else 0.0


@dataclass(frozen=True, slots=True)
class SavingsSplit:
    """All rows, the public-cloud rows alone, and which clouds were taken as private."""

    all: Savings
    public: Savings
    private_clouds: tuple[str, ...]
    private_known: bool = True


def _savings(rows: Sequence[SpendRow]) -> Savings:
    return Savings(sum((r.cost_usd for r in rows), 0.0), sum((r.ondemand_cost_usd for r in rows), 0.0),
                   len(rows))


def split_savings(rows: Sequence[SpendRow], private_clouds: Collection[str] | None) -> SavingsSplit:
    """``rows`` summed, and summed without the rows of ``private_clouds`` (None: unknown)."""
    private = set(private_clouds or ())
    public = [r for r in rows if r.cloud not in private]
    return SavingsSplit(_savings(rows), _savings(public), tuple(sorted(private)), private_clouds is not None)


def describe(split: SavingsSplit) -> list[str]:
    """The lines every savings summary prints: the baseline, then the figure with and without
    private machines."""
    a, p = split.all, split.public
    lines = [f"compared against: {BASELINE}"]
    with_private = (f"saved {a.fraction:.1%} (${a.cost_usd:.6f} spent against ${a.baseline_usd:.6f}) "
                    f"over all {a.instances} node(s)")
    if not split.private_known:
        lines.append(with_private + "; private clouds unknown (pass --config or --private NAME), so "
                     "private machines, if any, are mixed in")
        return lines
    names = ", ".join(split.private_clouds) or "none configured"
    lines.append(with_private + f", private machines ({names}) at their amortised price")
    lines.append(f"saved {p.fraction:.1%} (${p.cost_usd:.6f} against ${p.baseline_usd:.6f}) over the "
                 f"{p.instances} public-cloud node(s) alone, without private machines")
    return lines


def private_clouds_of(clouds: Mapping[str, Any]) -> tuple[str, ...]:
    """Names of ``provider.clouds`` entries whose driver owns fixed machines (``PRIVATE_DRIVERS``)."""
    return tuple(sorted(
        str(name) for name, spec in clouds.items()
        if isinstance(spec, Mapping) and str(spec.get("driver", name)) in PRIVATE_DRIVERS
    ))
