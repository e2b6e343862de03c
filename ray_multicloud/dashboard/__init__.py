"""What a team looks at: ``ray-multicloud status`` (``fleet``) and the dashboard served from the head.

* ``fleet``: the cluster's machines on every configured cloud, through the drivers (tags, not
  local state), priced from the offer book, with each node's Ray state from the GCS.
* ``ledger_view``: the ledger read through a read-only SQLite connection (decisions, timeline,
  spend against on-demand).
* ``app``: the read-only, token-protected aiohttp app and its page (``static/``: plain HTML, JS
  and SVG, nothing fetched from elsewhere).
* ``grafana.json``: a Grafana dashboard over the Prometheus gauges ``metrics.py`` exports.

Modules are imported on use (``from ray_multicloud.dashboard.fleet import ...``), so importing
this package needs neither aiohttp nor Ray.
"""
