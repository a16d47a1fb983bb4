"""A mock DHgate (敦煌网) seller backend: the portal dhbot's tests, demo and benchmarks run against.

It is a separate web app: it imports nothing from ``bot`` or ``flows`` and they never import it.
Start it with ``python -m mock_portal``; script it through the JSON API under ``/__admin/``.
"""

__version__ = "0.1.0"
