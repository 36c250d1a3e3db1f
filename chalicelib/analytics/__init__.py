"""Each platform's own analytics, kept before the platforms forget them, and the attention report.

A layer above the inbox and the reports (the store never learns it exists):
- `catalogue`: what each channel's platform offers, as data (metrics.json: platform metric name
  -> label, windows, the metrics behind "reach" and "new followers"); Telegram offers none;
- `platforms`: one fetcher per platform API (Facebook Page insights, Instagram account insights,
  LinkedIn organization share and follower statistics, WhatsApp message and pricing analytics,
  X public metrics of our own posts), each within its per-request window, a metric the platform
  stopped serving ("invalid metric") reported as unavailable rather than failing the rest;
- `snapshot`: the daily scheduled run, one item per channel account and day, resumable;
- `attention`: the report joining reach and followers with the inbox's volume, response rate and
  response times per day and channel (the inbox side read through chalicelib.reports' public
  functions).
"""
