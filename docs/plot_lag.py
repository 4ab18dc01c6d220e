"""Draws docs/consumer-lag.png from the consumer-lag panel's data that the
dashboards test wrote (LAG_PANEL_DATA=/tmp/lag.json make test, or run that
test alone): lag per projector group during a load with a paused projector.

    python3 docs/plot_lag.py /tmp/lag.json docs/consumer-lag.png
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

series = json.load(open(sys.argv[1]))
fig, ax = plt.subplots(figsize=(9, 3.6), dpi=110)
t0 = min(float(v[0]) for s in series for v in s["values"])
for s in series:
    xs = [float(v[0]) - t0 for v in s["values"]]
    ys = [float(v[1]) for v in s["values"]]
    ax.plot(xs, ys, label=s["metric"].get("group", "?"))
ax.set_title("sum by (group) (sluice_consumer_group_lag_messages): projector-redis paused, then resumed")
ax.set_xlabel("seconds into the load")
ax.set_ylabel("lag (messages)")
ax.grid(alpha=0.3)
ax.legend(fontsize=7, loc="upper left")
fig.tight_layout()
fig.savefig(sys.argv[2])
print(f"wrote {sys.argv[2]}")
