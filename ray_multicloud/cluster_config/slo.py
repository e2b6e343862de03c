"""A serving pool's ``slo:`` section: its latency target and client mix, checked against its offers.

    available_node_types:
      serve_pool:
        node_config:
          pool: {accelerator: T4, clouds: [aws, azure]}
          slo:
            p95_ms: 200            # 95% of requests within 200 ms, as clients see them (required)
            service_ms: 20         # one request on an idle replica (default 20)
            clients: {us-east-1: 0.7, eu-west-1: 0.3}   # client mix: region -> share (default: none)
            scale_in_below: 0.5    # remove a replica only when every p95 is under 0.5 x p95_ms
            max_busy_after_scale_in: 0.6

``check_pool_slo`` refuses an SLO that no set of the pool's offers can keep for its client mix
(``policy.slo.impossible``): the message names each client region that misses it, its nearest offer,
the RTT and the sum. A client or offer region the RTT table lacks a pair for is an error naming the
pair, never a silent default. Pure given its arguments; ``ConfigError(key, message)`` on a problem.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ray_multicloud.errors import ConfigError
from ray_multicloud.policy.place import OfferIndex, matching_offers
from ray_multicloud.policy.slo import CapacityOption, SloTarget, impossible, network_p95_ms
from ray_multicloud.schema import check_section
from ray_multicloud.types import PoolSpec

SLO_KEYS = ("p95_ms", "service_ms", "clients", "scale_in_below", "max_busy_after_scale_in")


@dataclass(frozen=True, slots=True)
class PoolSlo:
    """A pool's SLO and the client mix it is judged for (region -> share, summing to 1; may be empty)."""

    target: SloTarget
    clients: Mapping[str, float]

    def describe(self) -> str:
        mix = ", ".join(f"{r} {s:.0%}" for r, s in sorted(self.clients.items())) or "no client mix"
        return f"SLO p95 {self.target.p95_ms:g} ms (service {self.target.service_ms:g} ms; clients: {mix})"


def _number(key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(key, f"must be a number, got {value!r}")
    return float(value)


def parse_slo(node_type: str, node_config: Mapping[str, Any]) -> PoolSlo | None:
    """The node type's ``slo:`` section, or None when it has none."""
    key = f"available_node_types.{node_type}.node_config.slo"
    section = node_config.get("slo")
    if section is None:
        return None
    section = check_section(key, section, SLO_KEYS, example="{p95_ms: 200}")
    if "p95_ms" not in section:
        raise ConfigError(f"{key}.p95_ms", "missing: the latency target in ms, e.g. p95_ms: 200")
    values = {k: _number(f"{key}.{k}", section[k]) for k in SLO_KEYS if k != "clients" and k in section}
    try:
        target = SloTarget(**values)
    except ValueError as exc:
        raise ConfigError(key, str(exc)) from None
    raw = section.get("clients") or {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{key}.clients", f"must map client region -> share, got {type(raw).__name__}")
    shares = {str(r): _number(f"{key}.clients.{r}", s) for r, s in raw.items()}
    for region, share in shares.items():
        if share < 0:
            raise ConfigError(f"{key}.clients.{region}", f"a share must be >= 0, got {share:g}")
    total = sum(shares.values())
    if shares and total <= 0:
        raise ConfigError(f"{key}.clients", "the shares sum to 0; give each client region a positive share")
    return PoolSlo(target, {r: s / total for r, s in shares.items() if s > 0} if shares else {})


def check_pool_slo(node_type: str, slo: PoolSlo, pool: PoolSpec, index: OfferIndex, rtt_table: Any) -> None:
    """``ConfigError`` when no set of the pool's offers can keep ``slo`` for its clients (see the module
    docstring). ``rtt_table``: a ``serve.ranking.RttTable`` (``rtt(a, b)``, ``missing_pair(a, b)``)."""
    key = f"available_node_types.{node_type}.node_config.slo"
    offers = matching_offers(pool, index)
    options = [CapacityOption(o.offer_id, o.region, o.price_per_hour) for o in offers]
    for client in sorted(slo.clients):
        for region in sorted({o.region for o in options}):
            if rtt_table.rtt(client, region) is None:
                raise ConfigError(f"{key}.clients.{client}", rtt_table.missing_pair(client, region)
                                  + ", or limit the pool's `regions:` to regions the table knows")
    why = impossible(slo.target, options, slo.clients, rtt_table.rtt)
    if why is not None:
        raise ConfigError(key, why)


def best_network_p95(slo: PoolSlo, pool: PoolSpec, index: OfferIndex, rtt_table: Any) -> str:
    """A one-line note for ``plan``: the pool's cheapest offer and its network p95 for the mix."""
    offers = matching_offers(pool, index)
    if not offers or not slo.clients:
        return slo.describe()
    cheapest = min(offers, key=lambda o: (o.price_per_hour, o.offer_id))
    net = network_p95_ms(cheapest.region, slo.clients, rtt_table.rtt)
    return (f"{slo.describe()}; cheapest offer {cheapest.offer_id}: network p95 {net:g} ms + service "
            f"{slo.target.service_ms:g} ms")
