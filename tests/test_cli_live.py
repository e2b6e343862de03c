"""``ray-multicloud prices --live`` against the fake price APIs: each price's source and age, and a
failed feed that leaves catalog prices in place and says so."""

from __future__ import annotations

import pytest
from fakes.price_servers import FakeAwsPrices, FakeRetailPrices

from ray_multicloud.cli import main


def test_prices_live_shows_source_and_age(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeRetailPrices() as fake:
        code = main(
            [
                "prices",
                "--accelerator",
                "V100",
                "--cloud",
                "azure",
                "--region",
                "eastus",
                "--live",
                "--feed-endpoint",
                f"azure={fake.url}/api/retail/prices",
            ]
        )
    out = capsys.readouterr().out
    assert code == 0
    assert "price source" in out and "age" in out
    spot = next(line for line in out.splitlines() if " spot " in line)
    assert "0.3213" in spot and "live:azure-retail-prices" in spot and " 0s" in spot


def test_prices_live_with_a_failed_feed_keeps_catalog_prices(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeRetailPrices() as fake:
        fake.fail = True
        code = main(
            [
                "prices",
                "--accelerator",
                "V100",
                "--cloud",
                "azure",
                "--live",
                "--feed-endpoint",
                f"azure={fake.url}/api/retail/prices",
            ]
        )
    captured = capsys.readouterr()
    assert code == 0
    assert "feed azure failed" in captured.err and "503" in captured.err
    assert "catalog snapshot" in captured.out and "live:" not in captured.out


def test_prices_live_aws_uses_the_standard_credential_chain(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATESTING")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret-never-printed")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with FakeAwsPrices() as fake:
        code = main(
            [
                "prices",
                "--accelerator",
                "A10G",
                "--cloud",
                "aws",
                "--region",
                "us-east-1",
                "--limit",
                "3",
                "--live",
                "--feed-endpoint",
                f"aws={fake.url}",
            ]
        )
    captured = capsys.readouterr()
    assert code == 0
    assert "live:aws-spot-price-history" in captured.out and "0.3382" in captured.out
    assert "testing-secret-never-printed" not in captured.out + captured.err
