"""Set before any test module is imported: Ray must only ever dial loopback here.

Ray 2.60 reads ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` once, when ``ray`` is first imported; unset, a
driver's ``ray.init("127.0.0.1:PORT")`` tries the machine's other address and hangs (RAY_NOTES.md).
Collecting any test module that imports the provider (and so ``ray``) before an end-to-end module
could set it would leave every later ``ray.init`` hanging, so it is set here, first.
"""

import os
import time
from collections.abc import Iterator

import pytest

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


@pytest.fixture
def far_local_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local zone set to UTC-10 (POSIX ``LOC+10``): for tests that a timestamp's text
    stays UTC whatever the machine's zone."""
    monkeypatch.setenv("TZ", "LOC+10")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()
