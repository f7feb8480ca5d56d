"""Settings for bench/feed.py `--layers memory-lean`: the app's settings with bench/lean_layer."""

import os
import sys

from ozweb.settings import *  # noqa: F403

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "bench.lean_layer.LeanInMemoryChannelLayer",
        "CONFIG": {"capacity": 2000},
    }
}

# The GIL convoy experiment: a request thread that releases the GIL for every SQLite call
# waits up to the switch interval (5 ms) to get it back while the event loop is busy.
if _interval := os.environ.get("BENCH_SWITCHINTERVAL"):
    sys.setswitchinterval(float(_interval))
