"""Private machines carry an amortised $/h; savings figures state their baseline, with and without them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ray_multicloud.cli import main
from ray_multicloud.clouds.private import (
    DEFAULT_COST,
    UNPRICED,
    machine_offers,
    parse_machines,
    unpriced_warnings,
)
from ray_multicloud.errors import ConfigError
from ray_multicloud.ledger import Ledger
from ray_multicloud.savings import BASELINE, split_savings
from ray_multicloud.types import CapacityType, Offer

H = 3600.0
BASE = {"instance_type": "a100", "accelerator": "A100", "accelerator_count": 1, "count": 2}


def pool(*machines: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"driver": "private", "region": "dc1", "machines": list(machines), **extra}


def test_default_method_by_hand() -> None:
    # 24,875 USD over 4 years of 8,760 h = 0.709903; 0.8125 kW x 1.58 x 0.13 = 0.166888.
    _, (m,) = parse_machines("onprem", pool({**BASE, "capex_usd": 24875, "power_kw": 0.8125}))
    assert m.price_per_hour == pytest.approx(0.709903 + 0.166888, abs=1e-6)
    assert "24,875" in m.price_basis and "PUE 1.58" in m.price_basis
    assert (DEFAULT_COST.lifetime_years, DEFAULT_COST.pue, DEFAULT_COST.usd_per_kwh) == (4.0, 1.58, 0.13)


def test_pool_cost_defaults_and_machine_overrides() -> None:
    # cost: 3 years, PUE 1.2, 0.10 $/kWh, 0.05 $/h; the second machine overrides the lifetime to 6 years.
    spec = pool(
        {**BASE, "capex_usd": 26280, "power_kw": 1.0},
        {**BASE, "instance_type": "b", "capex_usd": 26280, "power_kw": 1.0, "lifetime_years": 6},
        cost={"lifetime_years": 3, "pue": 1.2, "usd_per_kwh": 0.10, "overhead_per_hour": 0.05},
    )
    _, (a, b) = parse_machines("onprem", spec)
    assert a.price_per_hour == pytest.approx(1.0 + 0.12 + 0.05)  # 26280 / 26280 h
    assert b.price_per_hour == pytest.approx(0.5 + 0.12 + 0.05)  # 26280 / 52560 h


def test_declared_price_and_ondemand_equivalent() -> None:
    _, (m,) = parse_machines("onprem", pool({**BASE, "amortised_per_hour": 1.1,
                                             "ondemand_equivalent_per_hour": 3.67}))
    (o,) = machine_offers("onprem", "dc1", [m])
    assert (o.price_per_hour, o.ondemand_price_per_hour, o.price_scope) == (1.1, 3.67, "private")
    assert o.capacity is CapacityType.ON_DEMAND


def test_without_equivalent_the_machine_claims_no_saving() -> None:
    _, (m,) = parse_machines("onprem", pool({**BASE, "amortized_per_hour": 0.9}))
    (o,) = machine_offers("onprem", "dc1", [m])
    assert o.ondemand_price_per_hour == o.price_per_hour == 0.9


def test_unpriced_machine_is_zero_and_warned() -> None:
    _, (m,) = parse_machines("onprem", pool({**BASE, "ondemand_equivalent_per_hour": 3.67}))
    assert (m.price_per_hour, m.price_basis) == (0.0, UNPRICED)
    (w,) = unpriced_warnings("onprem", [m])
    assert "provider.clouds.onprem.machines[0]" in w and "capex_usd" in w


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({"capex_usd": -1}, "machines[0].capex_usd"),
        ({"capex_usd": 0}, "machines[0].capex_usd"),
        ({"capex_usd": 1000, "pue": 0.9}, "machines[0].pue"),
        ({"capex_usd": 1000, "lifetime_years": 0}, "machines[0].lifetime_years"),
        ({"capex_usd": 1000, "amortised_per_hour": 1.0}, "machines[0].amortised_per_hour"),
        ({"power_kw": 1.0}, "machines[0].power_kw"),
        ({"amortised_per_hour": "cheap"}, "machines[0].amortised_per_hour"),
        ({"capex": 1000}, "machines[0].capex"),
    ],
)
def test_bad_price_inputs_name_the_key(extra: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_machines("onprem", pool({**BASE, **extra}))
    assert err.value.key == f"provider.clouds.onprem.{key}"


def test_bad_pool_cost_names_the_key() -> None:
    with pytest.raises(ConfigError) as err:
        parse_machines("onprem", pool({**BASE, "capex_usd": 1}, cost={"pue": 0.5}))
    assert err.value.key == "provider.clouds.onprem.cost.pue"
    with pytest.raises(ConfigError) as err:
        parse_machines("onprem", pool({**BASE}, cost={"life": 3}))
    assert err.value.key == "provider.clouds.onprem.cost.life"


def test_extra_keys_for_drivers_reusing_the_parser() -> None:
    spec = pool({**BASE, "hosts": ["10.0.0.1"]}, ssh_user="ray")
    region, (m,) = parse_machines("lab", spec, extra_keys=("ssh_user",), extra_machine_keys=("hosts",))
    assert (region, m.count) == ("dc1", 2)


VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True),
                   st.text(max_size=5), st.lists(st.integers(), max_size=2))
KEYS = st.sampled_from(["capex_usd", "power_kw", "pue", "lifetime_years", "usd_per_kwh", "overhead_per_hour",
                        "amortised_per_hour", "ondemand_equivalent_per_hour", "count", "bogus"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=5),
       st.one_of(st.none(), st.dictionaries(KEYS, VALUES, max_size=3)))
def test_any_machine_entry_parses_or_names_its_key(
    extra: dict[str, Any], cost: dict[str, Any] | None
) -> None:
    spec = pool({**BASE, **extra}, **({} if cost is None else {"cost": cost}))
    try:
        _, (m,) = parse_machines("onprem", spec)
    except ConfigError as exc:
        assert exc.key.startswith("provider.clouds.onprem")
        return
    assert m.price_per_hour >= 0 and m.ondemand_equivalent_per_hour >= 0


def private_offer(price: float, od: float) -> Offer:
    return Offer("onprem", "dc1", "", "a100", "A100", 1, 8, 64, CapacityType.ON_DEMAND, price, od,
                 price_scope="private")


def public_offer(price: float, od: float) -> Offer:
    return Offer("aws", "us-east-1", "a", "p4", "A100", 1, 8, 64, CapacityType.SPOT, price, od)


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.db"
    with Ledger(path) as led:
        led.record_launch("p", "c", "gpu", private_offer(1.0, 4.0), "r1", at=0.0)  # 2 h: 2 against 8
        led.record_launch("s", "c", "gpu", public_offer(1.5, 3.0), "r2", at=0.0)   # 2 h: 3 against 6
    return path


def test_split_by_hand(ledger: Path) -> None:
    with Ledger(ledger, create=False) as led:
        rows = led.spend(2 * H)
    split = split_savings(rows, ["onprem"])
    assert (split.all.cost_usd, split.all.baseline_usd) == pytest.approx((5.0, 14.0))
    assert split.all.fraction == pytest.approx(9 / 14)
    public = split.public
    assert (public.cost_usd, public.baseline_usd, public.fraction) == pytest.approx((3.0, 6.0, 0.5))


def test_report_states_baseline_and_both_figures(ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--ledger", str(ledger), "--until", str(2 * H), "--private", "onprem"]) == 0
    out = capsys.readouterr().out
    assert f"compared against: {BASELINE}" in out
    assert "saved 64.3% ($5.000000 spent against $14.000000)" in out and "(onprem)" in out
    assert "saved 50.0% ($3.000000 against $6.000000) over the 1 public-cloud node(s) alone" in out


def test_report_without_private_names_says_so(ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--ledger", str(ledger), "--until", str(2 * H)]) == 0
    assert "private clouds unknown" in capsys.readouterr().out


def test_repo_config_prices_its_private_machine() -> None:
    import yaml

    config = yaml.safe_load((Path(__file__).parents[1] / "cluster_configs/local-multicloud.yaml").read_text())
    _, (m,) = parse_machines("onprem", config["provider"]["clouds"]["onprem"])
    assert m.priced and m.price_per_hour == pytest.approx(0.8768, abs=1e-4)


def test_demo_summary_states_baseline_and_both_figures(ledger: Path) -> None:
    from ray_multicloud.scenarios.demo import DemoResult

    with Ledger(ledger, create=False) as led:
        rows = tuple(led.spend(2 * H))
    result = DemoResult(rows=rows, ledger_path=str(ledger), workload={}, wall_seconds=12.0,
                        private_clouds=("onprem",))
    lines = result.summary()
    assert lines[0] == f"compared against: {BASELINE}"
    assert lines[1].startswith("saved 64.3% ($5.000000 spent against $14.000000) over all 2 node(s)")
    assert lines[2].startswith("saved 50.0% ($3.000000 against $6.000000) over the 1 public-cloud node(s)")
    assert lines[3] == "wall time 12s"


def test_the_provider_records_the_amortised_price_in_the_ledger(tmp_path: Path) -> None:
    from tests.fakes.memory_cloud import launch_workers, memory_cluster, memory_provider

    with memory_cluster(tmp_path) as (cluster, world):
        cluster["provider"]["ledger"] = str(tmp_path / "ledger.db")
        provider = memory_provider(cluster, world)
        (inst,) = launch_workers(provider, cluster, node_type="a100_ondemand", request="a")
        assert provider.node_tags(inst.instance_id)["rmc-offer"].startswith("onprem/")
    with Ledger(tmp_path / "ledger.db", create=False) as led:
        (row,) = led.spend()
    # The repo config's onprem machine: $24,875 over 4 years + 0.8125 kW x 1.58 x $0.13/kWh.
    assert row.price_per_hour == pytest.approx(0.876790, abs=1e-6)
    assert row.ondemand_price_per_hour == 3.67
