"""Set before any test module is imported: Ray must only ever dial loopback here.

Ray 2.60 reads ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` once, when ``ray`` is first imported; unset, a
driver's ``ray.init("127.0.0.1:PORT")`` tries the machine's other address and hangs (RAY_NOTES.md).
Collecting any test module that imports the provider (and so ``ray``) before an end-to-end module
could set it would leave every later ``ray.init`` hanging, so it is set here, first.
"""

import os

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
