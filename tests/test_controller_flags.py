"""The controller's command line (the hardening issue's finding 8): every numeric flag refuses what
is not a finite number in its range, naming the flag, before anything is read or started."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ray_multicloud.controller import main

# flag -> (a value it must refuse, why)
REFUSED = [
    ("--interval", "0", "above zero"),
    ("--interval", "nan", "finite"),
    ("--interval", "-5", "above zero"),
    ("--horizon-hours", "inf", "finite"),
    ("--checkpoint-s", "-1", "zero or more"),
    ("--restart-s", "ten", "not a number"),
    ("--state-gb", "-0.5", "zero or more"),
    ("--min-relative-saving", "1.5", "at most 1"),
    ("--min-interval-s", "-inf", "finite"),
    ("--drain-deadline-s", "0", "above zero"),
    ("--speedup", "NaN", "finite"),
    ("--log-level", "LOUD", "invalid choice"),
]


@pytest.mark.parametrize(("flag", "value", "why"), REFUSED)
def test_a_bad_flag_is_a_usage_error_naming_it(
        flag: str, value: str, why: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--config", "/nonexistent.yaml", f"{flag}={value}", "--once", "--no-metrics"])
    assert exit_.value.code == 2  # argparse's usage error, before the config is read
    err = capsys.readouterr().err
    assert flag in err and why in err
    assert "Traceback" not in err


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_interval_accepts_exactly_the_finite_positive_numbers(value: float) -> None:
    import argparse

    from ray_multicloud.controller import _number

    parse = _number(positive=True)
    if math.isfinite(value) and value > 0:
        assert parse(repr(value)) == value
    else:
        with pytest.raises(argparse.ArgumentTypeError):
            parse(repr(value))
