"""``pricing/egress.py``'s contracts, each expected value from its docstrings and messages (and the
vendors' rates the module docstring quotes), never read off the code: the published table, the
free same-region move, the source cloud billing, and every refusal of a table file, word for word."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ray_multicloud.errors import MultiCloudError
from ray_multicloud.pricing.egress import (
    CLOUDS,
    PUBLISHED,
    EgressError,
    EgressTable,
    egress_usd_per_gb,
    load_egress_table,
    parse_egress_table,
)


def test_the_published_table_is_the_docstrings_rates_and_named_published() -> None:
    # Module docstring, "Sources of PUBLISHED": aws 0.02 / 0.09, gcp 0.02 / 0.12, azure 0.02 / 0.087.
    expect = {
        ("aws", "aws"): 0.02, ("aws", "gcp"): 0.09, ("aws", "azure"): 0.09,
        ("gcp", "gcp"): 0.02, ("gcp", "aws"): 0.12, ("gcp", "azure"): 0.12,
        ("azure", "azure"): 0.02, ("azure", "aws"): 0.087, ("azure", "gcp"): 0.087,
    }
    assert dict(PUBLISHED.rates) == expect
    assert PUBLISHED.source == "published"
    assert EgressTable({}).source == "published"  # the default source
    assert CLOUDS == ("aws", "gcp", "azure")
    for src, dst in expect:
        assert PUBLISHED.rate(src, dst) == expect[(src, dst)]


def test_egress_is_free_within_a_region_and_billed_by_the_source_cloud() -> None:
    assert egress_usd_per_gb(PUBLISHED, ("gcp", "us-east1"), ("gcp", "us-east1")) == 0.0
    assert egress_usd_per_gb(PUBLISHED, ("gcp", "us-east1"), ("gcp", "us-west1")) == 0.02
    assert egress_usd_per_gb(PUBLISHED, ("gcp", "us-east1"), ("aws", "us-east-1")) == 0.12
    assert egress_usd_per_gb(PUBLISHED, ("aws", "us-east-1"), ("gcp", "us-east1")) == 0.09
    assert egress_usd_per_gb(PUBLISHED, ("azure", "eastus"), ("aws", "eastus")) == 0.087
    # the same region name in another cloud is another place: not free
    assert egress_usd_per_gb(PUBLISHED, ("aws", "r"), ("gcp", "r")) == 0.09


def test_a_missing_pair_is_an_egress_error_that_says_what_to_add() -> None:
    table = EgressTable({("aws", "aws"): 0.02, ("gcp", "gcp"): 0.02}, "mine.json")
    with pytest.raises(EgressError) as err:
        table.rate("aws", "gcp")
    assert str(err.value) == (
        'egress table (mine.json) has no rate for aws->gcp; add "aws->gcp": USD_PER_GB to it'
    )
    assert err.value.__cause__ is None and err.value.__suppress_context__
    assert isinstance(err.value, MultiCloudError)
    # egress_usd_per_gb between regions of two clouds asks the same pair
    with pytest.raises(EgressError, match=re.escape("no rate for gcp->aws;")):
        egress_usd_per_gb(table, ("gcp", "a"), ("aws", "b"))
    # within one region no rate is needed
    assert egress_usd_per_gb(table, ("azure", "x"), ("azure", "x")) == 0.0


def test_require_names_the_first_missing_ordered_pair_in_sorted_order() -> None:
    table = EgressTable({("aws", "aws"): 0.02, ("gcp", "gcp"): 0.02, ("gcp", "aws"): 0.1}, "t")
    # clouds sorted: aws, gcp -> pairs aws->aws, aws->gcp (missing: the first named)
    with pytest.raises(EgressError, match=re.escape("no rate for aws->gcp;")):
        table.require(["gcp", "aws", "gcp"])
    table.require(["aws"])  # aws->aws only: complete
    table.require([])
    full = EgressTable({(a, b): 0.01 for a in ("aws", "gcp") for b in ("aws", "gcp")}, "t")
    full.require(iter(["gcp", "aws"]))  # any iterable, once
    with pytest.raises(EgressError, match=re.escape("no rate for azure->azure;")):
        EgressTable({}, "t").require(["azure"])


def test_parse_reads_keys_with_spaces_and_keeps_numbers_as_floats() -> None:
    table = parse_egress_table({" aws -> gcp ": 0, "gcp->gcp": 1, "azure->aws": 0.087}, "f.json")
    assert dict(table.rates) == {("aws", "gcp"): 0.0, ("gcp", "gcp"): 1.0, ("azure", "aws"): 0.087}
    assert all(type(v) is float for v in table.rates.values())
    assert table.source == "f.json"


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([], 'f.json: expected a JSON object {"aws->gcp": 0.09, ...}, got list'),
        ({}, 'f.json: expected a JSON object {"aws->gcp": 0.09, ...}, got dict'),
        (None, 'f.json: expected a JSON object {"aws->gcp": 0.09, ...}, got NoneType'),
        ({"aws-gcp": 0.1}, "f.json: key 'aws-gcp' is not \"SRC->DST\" (e.g. \"aws->gcp\")"),
        ({"aws->": 0.1}, "f.json: key 'aws->' is not \"SRC->DST\" (e.g. \"aws->gcp\")"),
        ({" ->gcp": 0.1}, "f.json: key ' ->gcp' is not \"SRC->DST\" (e.g. \"aws->gcp\")"),
        ({"a->b->c": 0.1}, "f.json: key 'a->b->c' is not \"SRC->DST\" (e.g. \"aws->gcp\")"),
        ({1: 0.1}, "f.json: key 1 is not \"SRC->DST\" (e.g. \"aws->gcp\")"),
        ({"aws->gcp": -0.01}, "f.json: 'aws->gcp' must be a USD per GB >= 0, got -0.01"),
        ({"aws->gcp": True}, "f.json: 'aws->gcp' must be a USD per GB >= 0, got True"),
        ({"aws->gcp": "0.09"}, "f.json: 'aws->gcp' must be a USD per GB >= 0, got '0.09'"),
        ({"aws->gcp": float("inf")}, "f.json: 'aws->gcp' must be a USD per GB >= 0, got inf"),
        ({"aws->gcp": float("nan")}, "f.json: 'aws->gcp' must be a USD per GB >= 0, got nan"),
        ({"aws->gcp": None}, "f.json: 'aws->gcp' must be a USD per GB >= 0, got None"),
    ],
)
def test_parse_refuses_naming_the_file_and_key(obj: object, message: str) -> None:
    with pytest.raises(EgressError) as err:
        parse_egress_table(obj, "f.json")
    assert str(err.value) == message


def test_load_reads_a_file_and_names_it_when_it_cannot(tmp_path: Path) -> None:
    good = tmp_path / "rates.json"
    good.write_text(json.dumps({"aws->aws": 0.02}), encoding="utf-8")
    table = load_egress_table(str(good))
    assert dict(table.rates) == {("aws", "aws"): 0.02} and table.source == str(good)

    missing = tmp_path / "none.json"
    with pytest.raises(EgressError) as err:
        load_egress_table(missing)
    assert str(err.value) == f"{missing}: cannot read (No such file or directory)"

    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(EgressError) as err2:
        load_egress_table(bad)
    assert str(err2.value).startswith(f"{bad}: not valid JSON (")
    assert err2.value.__cause__ is None and err2.value.__suppress_context__

    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(EgressError, match="not valid JSON"):
        load_egress_table(deep)

    empty = tmp_path / "empty.json"
    empty.write_text("{}", encoding="utf-8")
    with pytest.raises(EgressError, match=re.escape(f"{empty}: expected a JSON object")):
        load_egress_table(empty)
