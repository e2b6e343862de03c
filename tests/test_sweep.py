"""``sim.sweep``: a sweep's scenarios as Ray tasks on a private local Ray (loopback)."""

from __future__ import annotations

import math

import pytest

from ray_multicloud.sim.sweep import map_tasks, run_tasks


def test_every_task_runs_once_in_order_and_errors_reach_the_caller() -> None:
    # Builtins and stdlib functions travel by reference, so the workers need nothing of this module.
    assert sorted(run_tasks(abs, [-3, 1, -2], workers=1)) == [1, 2, 3]
    assert map_tasks(str, [3, 1, 2, 10], workers=2) == ["3", "1", "2", "10"]  # the tasks' order
    with pytest.raises(ValueError, match="math domain error"):
        map_tasks(math.sqrt, [4.0, -1.0], workers=1)
    with pytest.raises(ValueError, match="workers must be >= 1"):
        list(run_tasks(abs, [1], workers=0))
