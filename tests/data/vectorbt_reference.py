"""Makes tests/data/vbt_fixture_1h.csv and prints vectorbt's numbers for it.

The fixture: 2,000 hourly bars of a geometric random walk (numpy seed 20261122, 1 % hourly
volatility), prices rounded to 4 decimals, high/low 0.3 % outside the body. The reference:
vectorbt 0.28.1 `Portfolio.from_signals(close, MA.ma_crossed_above, MA.ma_crossed_below,
fees=0.00045, slippage=0.0001, init_cash=10000, freq='1h')` with EMAs (`ewm=True`).

    python3 -m venv /tmp/vbt && /tmp/vbt/bin/pip install vectorbt==0.28.1
    /tmp/vbt/bin/python tests/data/vectorbt_reference.py
"""
import os

import numpy as np
import pandas as pd
import vectorbt as vbt

here = os.path.dirname(os.path.abspath(__file__))
path = os.path.join(here, "vbt_fixture_1h.csv")

rng = np.random.default_rng(20261122)
n = 2000
close = np.round(100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n))), 4)
open_ = np.round(np.concatenate([[100.0], close[:-1]]), 4)
high = np.round(np.maximum(open_, close) * 1.003, 4)
low = np.round(np.minimum(open_, close) * 0.997, 4)
volume = np.round(rng.uniform(10.0, 100.0, n), 3)
ts = 1735689600000 + 3600000 * np.arange(n)  # 2025-01-01 00:00 UTC
with open(path, "w") as f:
    f.write("timestamp_ms,open,high,low,close,volume\n")
    for row in zip(ts, open_, high, low, close, volume):
        f.write("{},{!r},{!r},{!r},{!r},{!r}\n".format(int(row[0]), *map(float, row[1:])))

df = pd.read_csv(path)
c = df["close"]
print("vectorbt", vbt.__version__)
for fast, slow in [(12, 26), (2, 10), (51, 200), (20, 50), (7, 130)]:
    f = vbt.MA.run(c, window=fast, ewm=True)
    s = vbt.MA.run(c, window=slow, ewm=True)
    pf = vbt.Portfolio.from_signals(
        c,
        f.ma_crossed_above(s),
        f.ma_crossed_below(s),
        fees=0.00045,
        slippage=0.0001,
        init_cash=10000,
        freq="1h",
    )
    print(
        "({}, {}, {!r}, {!r}, {!r}, {}),".format(
            fast,
            slow,
            float(pf.total_return()),
            float(pf.sharpe_ratio()),
            float(pf.max_drawdown()),
            int(pf.trades.closed.count()),
        )
    )
