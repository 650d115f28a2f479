"""``metrics``: Prometheus / OpenMetrics collectors over the broker, the event stream and results.

``broker.py`` reads queue depths at scrape time through the broker adapters;
``events.py`` turns the event stream into counters, histograms and worker
gauges with bounded label sets; ``results.py`` counts stored results;
``serve.py`` is the HTTP server (``/metrics``, ``/health``) and the loop
that follows the event stream between scrapes.
"""
