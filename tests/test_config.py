"""Pool and pinned-offer parsing: every error names the full YAML key and says what to do."""

from __future__ import annotations

from typing import Any

import pytest

from ray_multicloud.cluster_config.pools import parse_offer, parse_pool
from ray_multicloud.errors import ConfigError
from ray_multicloud.policy import OfferIndex
from ray_multicloud.pricing import load_catalog
from ray_multicloud.types import CapacityType, PoolSpec

KEY = "available_node_types.gpu_spot.node_config.pool"
OFFER_KEY = "available_node_types.head.node_config.offer"


@pytest.fixture(scope="module")
def index() -> OfferIndex:
    return OfferIndex.build(load_catalog().offers)


def pool_of(index: OfferIndex, **pool: Any) -> PoolSpec:
    return parse_pool("gpu_spot", {"pool": pool}, index)


def test_full_pool_parses(index: OfferIndex) -> None:
    pool = pool_of(
        index,
        accelerator="a100",
        accelerator_count=8,
        min_vcpus=32,
        min_memory_gib=256,
        clouds=["aws", "gcp"],
        regions=["us-*", "europe-west4"],
        capacity_types=["spot", "on_demand", "SPOT"],
        max_price_per_hour=40,
        source_preference=["gcp"],
        min_clouds=2,
        min_on_demand=1,
    )
    assert pool == PoolSpec(
        name="gpu_spot",
        accelerator="A100",  # the catalog's spelling
        accelerator_count=8.0,
        min_vcpus=32.0,
        min_memory_gib=256.0,
        clouds=("aws", "gcp"),
        regions=("us-*", "europe-west4"),
        capacity_types=(CapacityType.SPOT, CapacityType.ON_DEMAND),
        max_price_per_hour=40.0,
        source_preference=("gcp",),
        min_clouds=2,
        min_on_demand=1,
    )


def test_defaults(index: OfferIndex) -> None:
    pool = pool_of(index, accelerator="T4")
    assert (pool.accelerator_count, pool.capacity_types, pool.min_clouds, pool.max_price_per_hour) == (
        1.0,
        (CapacityType.SPOT, CapacityType.ON_DEMAND, CapacityType.RESERVED),  # unset: any, reserved too
        1,
        None,
    )


@pytest.mark.parametrize(
    ("pool", "key", "fragments"),
    [
        # unknown keys, with close matches
        ({"acelerator": "A100"}, f"{KEY}.acelerator", ["unknown key", "did you mean 'accelerator'"]),
        ({"accelerator": "A100", "max_price": 3}, f"{KEY}.max_price", ["did you mean 'max_price_per_hour'"]),
        ({"accelerator": "A100", "zzz": 1}, f"{KEY}.zzz", ["unknown key (allowed: accelerator,"]),
        # wrong types
        ({"accelerator": "A100", "accelerator_count": "8"}, f"{KEY}.accelerator_count", ["must be a number"]),
        ({"accelerator": "A100", "accelerator_count": True}, f"{KEY}.accelerator_count", ["must be a number"]),
        ({"accelerator": "A100", "accelerator_count": 0}, f"{KEY}.accelerator_count", ["> 0"]),
        ({"accelerator": "A100", "clouds": "aws"}, f"{KEY}.clouds", ["must be a list of strings, e.g. ['aws']"]),
        ({"accelerator": "A100", "regions": ["us-*", 3]}, f"{KEY}.regions[1]", ["non-empty string"]),
        ({"accelerator": "A100", "regions": ["u*s"]}, f"{KEY}.regions[0]", ["only at the end"]),
        ({"accelerator": "A100", "min_clouds": 1.5}, f"{KEY}.min_clouds", ["must be an integer"]),
        ({"accelerator": "A100", "min_on_demand": -1}, f"{KEY}.min_on_demand", [">= 0"]),
        ({"accelerator": "A100", "min_vcpus": -2}, f"{KEY}.min_vcpus", [">= 0"]),
        ({"accelerator": "A100", "capacity_types": ["cheap"]}, f"{KEY}.capacity_types[0]", ["use 'spot', 'on-demand' or 'reserved'"]),
        ({"accelerator": 100}, f"{KEY}.accelerator", ["must be a non-empty string"]),
        ({"accelerator_count": 1}, f"{KEY}.accelerator_count", ["name the accelerator"]),
        # unknown accelerator / cloud
        ({"accelerator": "A1000"}, f"{KEY}.accelerator", ["unknown accelerator 'A1000'", "did you mean", "known: A10,"]),
        ({"accelerator": "A100", "clouds": ["awz"]}, f"{KEY}.clouds[0]", ["no offers from cloud 'awz'", "'aws'"]),
        ({"accelerator": "A100", "source_preference": ["oracle"]}, f"{KEY}.source_preference[0]", ["clouds with offers"]),
        (
            {"accelerator": "A100", "clouds": ["aws"], "source_preference": ["gcp"]},
            f"{KEY}.source_preference[0]",
            ["'gcp' is not in clouds ['aws']"],
        ),
        # contradictory limits
        ({"accelerator": "A100", "capacity_types": []}, f"{KEY}.capacity_types", ["is empty"]),
        (
            {"accelerator": "A100", "clouds": ["aws", "gcp"], "min_clouds": 3},
            f"{KEY}.min_clouds",
            ["clouds allows only ['aws', 'gcp']"],
        ),
        (
            {"accelerator": "A100", "capacity_types": ["spot"], "min_on_demand": 1},
            f"{KEY}.min_on_demand",
            ["excludes on-demand", "add 'on-demand'"],
        ),
        (
            {"accelerator": "A100", "accelerator_count": 8, "max_price_per_hour": 1.0},
            f"{KEY}.max_price_per_hour",
            ["none at or below $1.00/h", "cheapest matching is aws", "p4d.24xlarge $2.47/h"],
        ),
        (
            {"accelerator": "H100", "clouds": ["aws"], "regions": ["eu-north-1"], "min_clouds": 1,
             "capacity_types": ["spot"], "accelerator_count": 8, "min_on_demand": 0, "max_price_per_hour": 100,
             "source_preference": ["aws"], "min_vcpus": 200},
            f"{KEY}.clouds",  # gcp's a3 machines have 208 vCPUs: the clouds filter removes the last ones
            ["H100 offers with at least 8 GPUs with at least 200 vCPUs, none in allowed clouds ['aws']"],
        ),
        # no offer can ever match
        ({"accelerator": "A100", "regions": ["mars-*"]}, f"{KEY}.regions", ["none in allowed regions ['mars-*']"]),
        ({"accelerator": "A100", "accelerator_count": 32}, f"{KEY}.accelerator_count", ["(largest: 16)"]),
        ({"accelerator": "A10G", "min_memory_gib": 4096}, f"{KEY}.min_memory_gib", ["(largest: 16 GiB)"]),
        (
            {"accelerator": "H100-MEGA", "min_clouds": 2},
            f"{KEY}.min_clouds",
            ["only 1 cloud(s) have matching offers (gcp)"],
        ),
    ],
)  # fmt: skip
def test_errors_name_the_key(index: OfferIndex, pool: dict[str, Any], key: str, fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        pool_of(index, **pool)
    assert info.value.key == key
    assert str(info.value).startswith(f"{key}: ")
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


@pytest.mark.parametrize(
    ("node_config", "key"),
    [
        ({}, "available_node_types.gpu_spot.node_config.pool"),
        ({"pool": ["A100"]}, "available_node_types.gpu_spot.node_config.pool"),
        ("pool", "available_node_types.gpu_spot.node_config"),
    ],
    ids=["missing", "not-a-mapping", "node-config-not-a-mapping"],
)
def test_pool_section_shape(index: OfferIndex, node_config: Any, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_pool("gpu_spot", node_config, index)
    assert info.value.key == key


# ---------------------------------------------------------------- pinned offers

HEAD = {
    "cloud": "local",
    "region": "local",
    "zone": "local-a",
    "instance_type": "cpu-4",
    "capacity": "on-demand",
    "price_per_hour": 0.0,
    "vcpus": 4,
    "memory_gib": 8,
}


def test_pinned_offer_parses() -> None:
    offer = parse_offer("head", {"offer": HEAD})
    assert (offer.cloud, offer.zone, offer.instance_type, offer.capacity) == (
        "local",
        "local-a",
        "cpu-4",
        CapacityType.ON_DEMAND,
    )
    assert (offer.accelerator, offer.accelerator_count, offer.vcpus, offer.price_per_hour) == (
        "",
        0.0,
        4.0,
        0.0,
    )
    assert offer.ondemand_price_per_hour == 0.0
    gpu = parse_offer(
        "head",
        {
            "offer": {
                **HEAD,
                "capacity": "spot",
                "price_per_hour": 1,
                "ondemand_price_per_hour": 3,
                "accelerator": "T4",
            }
        },
    )
    assert (gpu.capacity, gpu.accelerator_count) == (CapacityType.SPOT, 1.0)
    assert gpu.discount == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("change", "key", "fragment"),
    [
        ({"cloud": None}, f"{OFFER_KEY}.cloud", "missing"),
        ({"capacity": "cheap"}, f"{OFFER_KEY}.capacity", "use 'spot', 'on-demand'"),
        ({"price_per_hour": -1}, f"{OFFER_KEY}.price_per_hour", ">= 0"),
        ({"price_per_hour": 5, "ondemand_price_per_hour": 3}, f"{OFFER_KEY}.price_per_hour", "cannot exceed"),
        ({"zone": 3}, f"{OFFER_KEY}.zone", "must be a string"),
        ({"instnce_type": "x"}, f"{OFFER_KEY}.instnce_type", "did you mean 'instance_type'"),
        ({"accelerator_count": 2}, f"{OFFER_KEY}.accelerator_count", "name the accelerator"),
        ({"vcpus": "four"}, f"{OFFER_KEY}.vcpus", "must be a number"),
    ],
)
def test_pinned_offer_errors_name_the_key(change: dict[str, Any], key: str, fragment: str) -> None:
    raw = {**HEAD, **change}
    raw = {k: v for k, v in raw.items() if not (k == "cloud" and v is None)}
    with pytest.raises(ConfigError) as info:
        parse_offer("head", {"offer": raw})
    assert info.value.key == key
    assert fragment in str(info.value)
