//! `organism data fetch --exchange binance | binance-spot` against a stand-in for Binance's
//! public REST (started here on 127.0.0.1): `/fapi/v1/klines`, `/fapi/v1/fundingRate` and
//! `/api/v3/klines` with Binance's row shapes, time windows and page caps (an answer never holds
//! more than `limit` rows, and a `limit` above the endpoint's cap is refused as Binance refuses
//! it). The expected files are the stand-in's own rows.

mod common;

use std::{collections::HashMap, net::SocketAddr};

use axum::{
    extract::{Query, State},
    http::StatusCode,
    routing::get,
    Json, Router,
};
use serde_json::{json, Value};

const HOUR: i64 = 3_600_000;

/// The stand-in's market: hourly bars from `first` through the bar forming at `now`, and a
/// funding record every 8 hours.
#[derive(Clone)]
struct Market {
    first: i64,
    now: i64,
}

impl Market {
    fn bar(&self, i: i64) -> [f64; 5] {
        let close = |k: i64| 100.0 + 10.0 * ((k as f64) / 10.0).sin();
        let (o, c) = (close(i - 1), close(i));
        [o, o.max(c) * 1.01, o.min(c) * 0.99, c, 1000.0 + i as f64]
    }

    fn bars(&self) -> impl Iterator<Item = (i64, [f64; 5])> + '_ {
        (0..)
            .map(move |i| (self.first + i * HOUR, i))
            .take_while(move |(t, _)| *t <= self.now)
            .map(move |(t, i)| (t, self.bar(i)))
    }

    fn funding(&self) -> impl Iterator<Item = (i64, f64)> + '_ {
        let first = self.first.div_euclid(8 * HOUR) * 8 * HOUR + 8 * HOUR;
        (0..)
            .map(move |i| (first + i * 8 * HOUR, 0.0001 * ((i % 5) - 2) as f64))
            .take_while(move |(t, _)| *t <= self.now)
    }
}

fn window(
    q: &HashMap<String, String>,
    cap: usize,
) -> Result<(i64, i64, usize), (StatusCode, Json<Value>)> {
    let n = |k: &str| q.get(k).and_then(|v| v.parse::<i64>().ok());
    let limit = n("limit").unwrap_or(500) as usize;
    if limit > cap {
        return Err((
            StatusCode::BAD_REQUEST,
            Json(json!({"code": -1130, "msg": "Data sent for parameter 'limit' is not valid."})),
        ));
    }
    Ok((
        n("startTime").unwrap_or(0),
        n("endTime").unwrap_or(i64::MAX),
        limit,
    ))
}

async fn klines(
    State((m, cap)): State<(Market, usize)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    assert_eq!(q.get("symbol").map(String::as_str), Some("BTCUSDT"));
    let (from, to, limit) = window(&q, cap)?;
    let rows: Vec<Value> = m
        .bars()
        .filter(|(t, _)| *t >= from && *t <= to)
        .take(limit)
        .map(|(t, b)| {
            json!([
                t,
                b[0].to_string(),
                b[1].to_string(),
                b[2].to_string(),
                b[3].to_string(),
                b[4].to_string(),
                t + HOUR - 1,
                "0",
                7,
                "0",
                "0",
                "0"
            ])
        })
        .collect();
    Ok(Json(Value::Array(rows)))
}

async fn funding(
    State((m, _)): State<(Market, usize)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    let (from, to, limit) = window(&q, 1000)?;
    let rows: Vec<Value> = m
        .funding()
        .filter(|(t, _)| *t >= from && *t <= to)
        .take(limit)
        .map(|(t, r)| json!({"symbol": "BTCUSDT", "fundingTime": t, "fundingRate": format!("{r:.8}"), "markPrice": "100"}))
        .collect();
    Ok(Json(Value::Array(rows)))
}

async fn stand_in(m: Market) -> String {
    let app = Router::new()
        .route("/fapi/v1/klines", get(klines))
        .route("/fapi/v1/fundingRate", get(funding))
        .with_state((m.clone(), 1500))
        .merge(
            Router::new()
                .route("/api/v3/klines", get(klines))
                .with_state((m, 1000)),
        );
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

fn rows(path: &std::path::Path) -> Vec<Vec<f64>> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|x| x.parse::<f64>().unwrap()).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_perpetuals_and_spot_fetch_into_the_data_layout() {
    #[allow(clippy::disallowed_methods)] // the stand-in's market ends at the real now
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let m = Market {
        first: now.div_euclid(HOUR) * HOUR - 120 * 24 * HOUR,
        now,
    };
    let url = stand_in(m.clone()).await;
    let dir = common::scratch("binance", "fetch");
    let out = dir.join("data");
    let run = |exchange: &'static str| {
        let (url, out) = (url.clone(), out.clone());
        tokio::task::spawn_blocking(move || {
            common::organism(&[
                "data",
                "fetch",
                "--exchange",
                exchange,
                "--api-url",
                &url,
                "--coins",
                "BTC",
                "--days",
                "90",
                "--out",
                common::s(&out),
                "--json",
            ])
        })
    };
    let o = run("binance").await.unwrap();
    assert!(o.status.success(), "{}", common::stderr(&o));
    let v: Value = serde_json::from_str(common::stdout(&o).trim()).unwrap();
    let files = v["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{v}");
    // 90 days of hourly bars: two pages of at most 1,500, every one the stand-in's, no gap,
    // the last the newest closed bar.
    let candles = rows(&out.join("candles/binanceusdm_BTC_1h.csv"));
    assert!((2159..=2161).contains(&candles.len()), "{}", candles.len());
    let served: HashMap<i64, [f64; 5]> = m.bars().collect();
    for (k, r) in candles.iter().enumerate() {
        let t = r[0] as i64;
        if k > 0 {
            assert_eq!(t - candles[k - 1][0] as i64, HOUR);
        }
        assert_eq!(&r[1..6], &served[&t][..], "bar {t}");
    }
    let last = candles.last().unwrap()[0] as i64;
    assert!(
        last + HOUR <= now + HOUR && last + 2 * HOUR > now,
        "{last} {now}"
    );
    assert_eq!(files[0]["gaps"], 0);
    // Funding: every 8-hour record from 90 days back, rates as served.
    let f = rows(&out.join("funding/binanceusdm_BTC.csv"));
    let want: Vec<(i64, f64)> = m.funding().filter(|(t, _)| *t >= f[0][0] as i64).collect();
    assert!((269..=271).contains(&f.len()), "{}", f.len());
    assert_eq!(f.len(), want.len());
    for (r, (t, rate)) in f.iter().zip(&want) {
        assert_eq!((r[0] as i64, r[1]), (*t, *rate));
    }
    assert_eq!(files[1]["gaps"], 0);
    // Again: only what is new (at most the bar that closed meanwhile).
    let o = run("binance").await.unwrap();
    let v: Value = serde_json::from_str(common::stdout(&o).trim()).unwrap();
    assert!(v["files"][0]["added"].as_u64().unwrap() <= 1, "{v}");
    // Spot: candles only, in 1,000-bar pages, under its own source name.
    let o = run("binance-spot").await.unwrap();
    assert!(o.status.success(), "{}", common::stderr(&o));
    let v: Value = serde_json::from_str(common::stdout(&o).trim()).unwrap();
    assert_eq!(v["files"].as_array().unwrap().len(), 1, "{v}");
    let spot = rows(&out.join("candles/binancespot_BTC_1h.csv"));
    assert!(spot.len() >= candles.len() && spot.len() <= candles.len() + 1);
    assert!(!out.join("funding/binancespot_BTC.csv").exists());
    // The files load as a universe of that source.
    let o = tokio::task::spawn_blocking({
        let out = out.clone();
        move || {
            common::organism(&[
                "backtest",
                "--data",
                common::s(&out),
                "--source",
                "binanceusdm",
                "--coin",
                "BTC",
                "--json",
            ])
        }
    })
    .await
    .unwrap();
    assert!(o.status.success(), "{}", common::stderr(&o));
    // A server that refuses: one clear error naming the URL and the answer.
    let o = tokio::task::spawn_blocking({
        let out = out.clone();
        let url = format!("{url}/nothing-here");
        move || {
            common::organism(&[
                "data",
                "fetch",
                "--exchange",
                "binance",
                "--api-url",
                &url,
                "--coins",
                "ETH",
                "--out",
                common::s(&out),
            ])
        }
    })
    .await
    .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let e = common::stderr(&o);
    assert!(e.contains("/nothing-here/fapi/v1/klines: HTTP 404"), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}
