"""``provider.reservations``: capacity the team has already committed to, filled first.

A FinOps commitment (an AWS Reserved Instance or Savings Plan, a GCP committed-use discount, an
Azure reservation) is paid per hour for its whole term whether a node uses it or not. So the
policy should fill it before anything else, and count its cost as sunk: a node on it costs the
decision $0/h more than no node at all. Declared as::

    provider:
      reservations:
        - cloud: aws                  # a provider.clouds entry
          instance_type: p3.2xlarge
          region: us-east-1
          zone: us-east-1a            # optional: a zonal commitment; default any zone of the region
          count: 2                    # nodes the commitment covers
          term_price_per_hour: 1.95   # what each is paid per hour (the effective hourly rate)
          starts: 2026-07-01          # optional; default: already running
          ends: 2027-06-30            # optional; default: open
          team: ml-research           # optional: who the commitment is charged to in reports

Each active reservation becomes one *reserved offer* (``CapacityType.RESERVED``): the catalogue's
on-demand offer of that machine in that place (the first zone of the region by name, unless
``zone`` names one), with ``price_per_hour`` 0 (sunk: what every decision sees),
``term_price_per_hour`` (what the ledger records as paid) and ``reserved_count`` slots
(``policy.place`` fills them first while they are free). A node on it is launched on the cloud's
ordinary on-demand path: a Reserved Instance is a billing discount AWS applies automatically to
running on-demand instances that match its attributes (instance type, platform, tenancy, and its
region, or its zone for a zonal one), with no launch parameter (EC2 User Guide, "How Reserved
Instance discounts are applied", https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/apply_ri.html);
Azure applies a reservation to matching VMs the same way ("How the Azure reservation discount is
applied to virtual machines", learn.microsoft.com cost-management-billing/manage/
understand-vm-reservation-charges), and a GCP committed-use discount applies to matching usage in
its region. An AWS On-Demand Capacity Reservation targeted at launch
(``CapacityReservationSpecification``) is not implemented: the matching is the cloud's billing.

Errors are ``ConfigError`` naming the key (``provider.reservations[1].instance_type``); a
reservation that matches no on-demand offer of the configured clouds is one of them.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ray_multicloud.errors import ConfigError
from ray_multicloud.schema import check_section
from ray_multicloud.types import CapacityType, Offer, Reservation

KEY = "provider.reservations"
REQUIRED: tuple[str, ...] = ("cloud", "instance_type", "region", "count", "term_price_per_hour")
OPTIONAL: tuple[str, ...] = ("zone", "starts", "ends", "team")


def _text(key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(key, f"must be a non-empty string, got {value!r}")
    return value.strip()


def _when(key: str, value: object) -> float:
    """A date (``2027-06-30``, midnight UTC), a datetime (naive = UTC) or its ISO text, as POSIX s."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ConfigError(key, f"{value!r} is not a date: write it as YYYY-MM-DD") from None
    if isinstance(value, dt.datetime):
        when = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return when.timestamp()
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC).timestamp()
    raise ConfigError(key, f"must be a date (YYYY-MM-DD), got {value!r}")


def parse_reservations(provider_config: Mapping[str, Any]) -> tuple[Reservation, ...]:
    """``provider.reservations`` as ``Reservation``s (none when absent); ``ConfigError`` naming the key."""
    raw = provider_config.get("reservations")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(KEY, f"must be a list of commitments (cloud, instance_type, region, count, "
                               f"term_price_per_hour), got {type(raw).__name__}")
    out: list[Reservation] = []
    for i, entry in enumerate(raw):
        key = f"{KEY}[{i}]"
        item = check_section(key, entry, REQUIRED + OPTIONAL,
                             example=f"{{{': ..., '.join(REQUIRED)}: ...}}")
        for name in REQUIRED:
            if name not in item:
                raise ConfigError(f"{key}.{name}", f"missing: a reservation needs {', '.join(REQUIRED)}")
        count = item["count"]
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ConfigError(f"{key}.count", f"must be a whole number of nodes >= 1, got {count!r}")
        price = item["term_price_per_hour"]
        if isinstance(price, bool) or not isinstance(price, (int, float)) or not math.isfinite(price) \
                or price < 0:
            raise ConfigError(f"{key}.term_price_per_hour",
                              f"must be a finite number of USD per hour >= 0, got {price!r}")
        starts = _when(f"{key}.starts", item["starts"]) if item.get("starts") is not None else None
        ends = _when(f"{key}.ends", item["ends"]) if item.get("ends") is not None else None
        if starts is not None and ends is not None and ends <= starts:
            raise ConfigError(f"{key}.ends", "is not after starts")
        zone = item.get("zone")
        out.append(Reservation(
            cloud=_text(f"{key}.cloud", item["cloud"]),
            instance_type=_text(f"{key}.instance_type", item["instance_type"]),
            region=_text(f"{key}.region", item["region"]),
            zone="" if zone is None or zone == "" else _text(f"{key}.zone", zone),
            count=count,
            term_price_per_hour=float(price),
            starts=starts,
            ends=ends,
            team="" if item.get("team") is None else _text(f"{key}.team", item["team"]),
            key=key,
        ))
    return tuple(out)


def _closest(wanted: str, names: Iterable[str]) -> str:
    import difflib

    close = difflib.get_close_matches(wanted, sorted(set(names)), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def match_offer(reservation: Reservation, offers: Sequence[Offer]) -> Offer:
    """The on-demand offer ``reservation`` covers: same cloud, region and instance type (and zone,
    when it names one); the first zone by name when several match. ``ConfigError`` naming the key
    of the first field that matches nothing, with what the catalogue has instead."""
    r, key = reservation, reservation.key or KEY
    od = [o for o in offers if o.capacity is CapacityType.ON_DEMAND]
    steps: tuple[tuple[str, str, Any], ...] = (
        ("cloud", r.cloud, lambda o: o.cloud == r.cloud),
        ("region", r.region, lambda o: o.region == r.region),
        ("instance_type", r.instance_type, lambda o: o.instance_type == r.instance_type),
        ("zone", r.zone, lambda o: not r.zone or o.zone == r.zone),
    )
    left = od
    for name, wanted, pred in steps:
        kept = [o for o in left if pred(o)]
        if not kept:
            have = sorted({str(getattr(o, name)) or "-" for o in left})
            shown = ", ".join(have[:10]) + (f", ... {len(have) - 10} more" if len(have) > 10 else "")
            where = "" if name == "cloud" else " there"
            raise ConfigError(
                f"{key}.{name}",
                f"{wanted!r} matches no on-demand offer of the configured clouds' catalogue{where}"
                f"{_closest(wanted, have)} (offered: {shown or 'none'}); a commitment must name a "
                "machine the cluster can launch",
            )
        left = kept
    return min(left, key=lambda o: (o.zone, o.offer_id))


def reserved_offers(
    reservations: Sequence[Reservation], offers: Sequence[Offer], *, now: float | None = None
) -> list[Offer]:
    """One reserved offer per reservation active at ``now`` (None: every one; see the module
    docstring); ``ConfigError`` when one matches no offer (checked for every reservation, active
    or not) or two cover the same machine in the same place."""
    out: list[Offer] = []
    seen: dict[str, list[Reservation]] = {}
    for r in reservations:
        base = match_offer(r, offers)
        offer = replace(base, capacity=CapacityType.RESERVED, price_per_hour=0.0,
                        term_price_per_hour=r.term_price_per_hour, reserved_count=r.count,
                        source=r.key or KEY, stale=False, as_of=None)
        for other in seen.get(offer.offer_id, []):
            if _overlap(r, other):
                raise ConfigError(r.key or KEY, f"covers {offer.offer_id} over the same time as "
                                  f"{other.key or KEY}; declare one reservation with the summed count "
                                  "(and the average term price)")
        seen.setdefault(offer.offer_id, []).append(r)
        if now is None or r.active(now):
            out.append(offer)
    return out


def _overlap(a: Reservation, b: Reservation) -> bool:
    a0, a1 = a.starts if a.starts is not None else -math.inf, a.ends if a.ends is not None else math.inf
    b0, b1 = b.starts if b.starts is not None else -math.inf, b.ends if b.ends is not None else math.inf
    return a0 < b1 and b0 < a1
