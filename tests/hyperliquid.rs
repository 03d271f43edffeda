//! The Hyperliquid client, history fetch and WebSocket feed against the local test exchange
//! (started here on 127.0.0.1 with an ephemeral port). No other network is used.
#![allow(clippy::disallowed_methods)] // these tests measure real waits (rate limits, heartbeats)

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use organism::{
    clock::SimClock,
    exchange::{
        hyperliquid::{
            fetch::{fetch, FetchRequest},
            info::{InfoClient, RateLimiter, RetryPolicy, Timeouts},
            ws::{spawn, FeedConfig, FeedEvent, Subscription},
            HlError,
        },
        local::LocalExchange,
    },
    market::{csv::load_candles, csv::load_funding, synthetic::SyntheticParams, HOUR_MS},
};

mod common;

const START: i64 = 1_704_067_200_000; // 2024-01-01 00:00 UTC

fn params() -> SyntheticParams {
    SyntheticParams {
        bars: 9000,
        start_ms: START,
        coins: vec!["BTC".into(), "ETH".into()],
        annual_vol: vec![0.5, 0.7],
        start_price: vec![42_000.0, 2_300.0],
        ..SyntheticParams::default()
    }
}

/// An exchange whose clock is 30 minutes into bar `bar`.
async fn exchange(bar: i64) -> LocalExchange {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    LocalExchange::start(addr, &params(), START + bar * HOUR_MS + HOUR_MS / 2)
        .await
        .unwrap()
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    }
}

fn client(ex: &LocalExchange) -> InfoClient {
    InfoClient::with_policy(&ex.http_url(), fast_retry(), 1200.0).unwrap()
}

fn scratch(name: &str) -> PathBuf {
    common::scratch("hl", name)
}

/// Thirty days of BTC 1h candles and funding into `out`, as of `now`.
fn req(out: &std::path::Path, now: i64) -> FetchRequest {
    FetchRequest {
        coins: vec!["BTC".into()],
        intervals: vec!["1h".into()],
        days: 30,
        out: out.to_path_buf(),
        now_ms: now,
        funding: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_requests_parse_into_typed_values() {
    let ex = exchange(100).await;
    let c = client(&ex);
    let meta = c.meta().await.unwrap();
    let names: Vec<&str> = meta.universe.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["BTC", "ETH"]);
    assert_eq!(meta.universe[0].sz_decimals, 5);
    let ctxs = c.meta_and_asset_ctxs().await.unwrap();
    let btc = ex.candles("BTC", "1h").unwrap();
    // Bar 100 is the current one; its close is the mark price, parsed exactly.
    assert_eq!(
        ctxs[0].mark_px.to_string(),
        btc.close[100].to_string().trim_end_matches(".0")
    );
    assert_eq!(ctxs[0].funding, 0.0000125);
    let mids = c.all_mids().await.unwrap();
    assert_eq!(mids.len(), 2);
    let book = c.l2_book("ETH").await.unwrap();
    assert_eq!((book.bids.len(), book.asks.len()), (2, 2));
    assert!(book.bids[0].px < book.asks[0].px);
    let bars = c
        .candle_snapshot("BTC", "1h", START, START + 9 * HOUR_MS)
        .await
        .unwrap();
    assert_eq!(bars.len(), 10);
    assert_eq!(bars[3].t, START + 3 * HOUR_MS);
    assert_eq!(bars[3].close_time, START + 4 * HOUR_MS - 1);
    assert_eq!(bars[3].close, btc.close[3]);
    let f = c
        .funding_history("ETH", START, Some(START + 5 * HOUR_MS))
        .await
        .unwrap();
    assert_eq!(f.len(), 5);
    assert_eq!(f[0].time, START + 37);
    // Every request was a POST to /info with the documented body.
    let seen = ex.seen();
    assert_eq!(seen.info_requests[0]["type"], "meta");
    let snap = seen
        .info_requests
        .iter()
        .find(|r| r["type"] == "candleSnapshot")
        .unwrap();
    assert_eq!(snap["req"]["coin"], "BTC");
    assert_eq!(snap["req"]["interval"], "1h");
    assert_eq!(snap["req"]["startTime"], START);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_retried_or_surfaced_with_the_body() {
    let ex = exchange(100).await;
    let c = client(&ex);
    ex.set_faults(|f| f.fail_next = [429, 500, 503].into());
    assert_eq!(
        c.meta().await.unwrap().universe.len(),
        2,
        "succeeds on the 4th attempt"
    );
    ex.set_faults(|f| f.fail_next = [502; 4].into());
    let e = c.meta().await.unwrap_err();
    assert!(
        matches!(
            e,
            HlError::Exhausted {
                attempts: 4,
                status: 502,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("injected 502"), "{e}");
    ex.set_faults(|f| f.fail_next = [400].into());
    let e = c.meta().await.unwrap_err();
    assert!(matches!(e, HlError::Http { status: 400, .. }), "{e}");
    let e = c
        .post(&serde_json::json!({"type": "nope"}), 20.0)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("422") && e.to_string().contains("unknown variant"),
        "{e}"
    );
    ex.set_faults(|f| f.malformed_next = 1);
    let e = c.meta().await.unwrap_err();
    assert!(matches!(e, HlError::Parse { .. }), "{e}");
    // 429 with Retry-After is honoured (0 s here) and retried.
    ex.set_faults(|f| {
        f.fail_next = [429].into();
        f.retry_after = Some(0);
    });
    assert!(c.all_mids().await.is_ok());
    // A slow answer is waited for.
    ex.set_faults(|f| f.delay = Duration::from_millis(300));
    let t0 = std::time::Instant::now();
    assert_eq!(c.meta().await.unwrap().universe.len(), 2);
    assert!(t0.elapsed() >= Duration::from_millis(300));
    ex.set_faults(|f| f.delay = Duration::ZERO);
    // Nothing listening: a connectivity error after the retries.
    let dead = InfoClient::with_policy("http://127.0.0.1:9", fast_retry(), 1200.0).unwrap();
    assert!(matches!(
        dead.meta().await.unwrap_err(),
        HlError::Connectivity { .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn the_limiter_holds_the_weight_budget() {
    // 60 weight per minute: three weight-20 requests pass at once, the fourth waits 20 s.
    let l = RateLimiter::new(60.0);
    let t0 = tokio::time::Instant::now();
    for _ in 0..3 {
        l.acquire(20.0).await;
    }
    assert!(t0.elapsed() < Duration::from_millis(1));
    l.acquire(20.0).await;
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_secs(20) && waited < Duration::from_secs(21),
        "{waited:?}"
    );
    // Weight charged after a reply makes later requests wait for it.
    l.charge(30.0);
    let t1 = tokio::time::Instant::now();
    l.acquire(2.0).await;
    assert!(
        t1.elapsed() >= Duration::from_secs(31),
        "{:?}",
        t1.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_pages_writes_and_resumes_incrementally() {
    let ex = exchange(3000).await;
    let c = client(&ex);
    let out = scratch("fetch");
    let req = |now: i64, days: u32| FetchRequest {
        coins: vec!["BTC".into(), "ETH".into()],
        intervals: vec!["1h".into(), "4h".into()],
        days,
        out: out.clone(),
        now_ms: now,
        funding: true,
    };
    // 60 days of 1h = 1440 bars: three pages of at most 500.
    let reports = fetch(&c, &req(ex.now(), 60), &|_| {}).await.unwrap();
    assert_eq!(reports.len(), 6);
    let btc = load_candles(&out.join("candles/hyperliquid_BTC_1h.csv")).unwrap();
    let truth = ex.candles("BTC", "1h").unwrap();
    // Closed bars only: the last written bar is 2999 (bar 3000 is still forming).
    assert_eq!(btc.ts.last().copied(), Some(truth.ts[2999]));
    assert_eq!(btc.len(), 1440);
    let first = 3000 - 1440;
    assert_eq!(btc.ts[0], truth.ts[first]);
    assert_eq!(&btc.close[..], &truth.close[first..3000]);
    assert_eq!(btc.gaps().gaps, 0);
    let eth4 = load_candles(&out.join("candles/hyperliquid_ETH_4h.csv")).unwrap();
    assert_eq!(eth4.len(), 360);
    let f = load_funding(&out.join("funding/hyperliquid_BTC.csv")).unwrap();
    assert_eq!(f.ts.len(), 1440);
    let pages = ex
        .seen()
        .info_requests
        .iter()
        .filter(|r| {
            r["type"] == "candleSnapshot"
                && r["req"]["coin"] == "BTC"
                && r["req"]["interval"] == "1h"
        })
        .count();
    assert_eq!(pages, 3);
    // Ten hours later: only the new bars are requested and appended.
    for _ in 0..10 {
        ex.advance();
    }
    let before = ex.seen().info_requests.len();
    let reports = fetch(&c, &req(ex.now(), 60), &|_| {}).await.unwrap();
    assert_eq!(reports[0].after - reports[0].before, 10);
    let new_requests = &ex.seen().info_requests[before..];
    let snap = new_requests
        .iter()
        .find(|r| r["type"] == "candleSnapshot")
        .unwrap();
    assert_eq!(snap["req"]["startTime"], truth.ts[3000]);
    let btc2 = load_candles(&out.join("candles/hyperliquid_BTC_1h.csv")).unwrap();
    assert_eq!(btc2.len(), 1450);
    assert_eq!(&btc2.close[..1440], &btc.close[..]);
    assert_eq!(btc2.ts.last().copied(), Some(truth.ts[3009]));
    // A third run right away writes nothing new.
    let reports = fetch(&c, &req(ex.now(), 60), &|_| {}).await.unwrap();
    assert!(reports.iter().all(|r| r.after == r.before));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_server_cannot_corrupt_or_stall_a_fetch() {
    let ex = exchange(3000).await;
    let c = client(&ex);
    let truth = ex.candles("BTC", "1h").unwrap();
    // Rows dated in the future are rejected, and later fetches still add what is new.
    let out = scratch("future");
    ex.set_faults(|f| f.future_rows = 3);
    let r = fetch(&c, &req(&out, ex.now()), &|_| {}).await.unwrap();
    assert_eq!(r[0].after, 720);
    assert!(r[0].rejected >= 3, "{r:?}");
    assert_eq!(r[1].after, 720);
    assert!(r[1].rejected >= 3, "{r:?}");
    let f = load_funding(&out.join("funding/hyperliquid_BTC.csv")).unwrap();
    assert!(*f.ts.last().unwrap() <= ex.now());
    for _ in 0..5 {
        ex.advance();
    }
    let r = fetch(&c, &req(&out, ex.now()), &|_| {}).await.unwrap();
    assert_eq!((r[0].after - r[0].before, r[1].after - r[1].before), (5, 5));
    // A server that ignores endTime (and the clock) cannot make the fetch loop or write the
    // future: the files hold exactly the closed bars and the funding up to now.
    ex.set_faults(|f| {
        f.future_rows = 0;
        f.ignore_end = true;
    });
    let out = scratch("ignore-end");
    let r = fetch(&c, &req(&out, ex.now()), &|_| {}).await.unwrap();
    assert!(r[0].rejected > 0 && r[1].rejected > 0, "{r:?}");
    let btc = load_candles(&out.join("candles/hyperliquid_BTC_1h.csv")).unwrap();
    assert_eq!(btc.len(), 720);
    assert_eq!(btc.ts.last().copied(), Some(truth.ts[3004]));
    assert_eq!(&btc.close[..], &truth.close[3005 - 720..3005]);
    let f = load_funding(&out.join("funding/hyperliquid_BTC.csv")).unwrap();
    assert_eq!(f.ts.len(), 720);
    assert!(*f.ts.last().unwrap() <= ex.now());
    ex.set_faults(|f| f.ignore_end = false);
    // A server whose funding pages never run out (records a minute apart): the fetch stops
    // after the pages hourly funding can fill, with an error, and writes nothing.
    ex.set_faults(|f| f.funding_step_ms = Some(60_000));
    let out = scratch("endless");
    let e = fetch(&c, &req(&out, ex.now()), &|_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("kept sending new records after 4 pages"), "{e}");
    assert!(!out.join("funding/hyperliquid_BTC.csv").exists());
    ex.set_faults(|f| f.funding_step_ms = None);
    // A garbage page is summarized, never dumped.
    ex.set_faults(|f| f.garbage_next = 1);
    let e = c.meta().await.unwrap_err().to_string();
    assert!(
        e.contains("not JSON") && e.contains("bytes starting `<!DOCTYPE html>"),
        "{e}"
    );
    assert!(e.len() < 600, "{} bytes: {e}", e.len());
    // A huge answer is refused without reading it all.
    ex.set_faults(|f| f.huge_next = Some(20 << 20));
    let e = c.meta().await.unwrap_err().to_string();
    assert!(e.contains("larger than 16 MiB"), "{e}");
    // A server that does not answer in time: a timeout, said as one.
    let impatient = InfoClient::with_timeouts(
        &ex.http_url(),
        RetryPolicy {
            max_attempts: 2,
            ..fast_retry()
        },
        1200.0,
        Timeouts {
            connect: Duration::from_secs(2),
            read: Duration::from_millis(200),
            ..Timeouts::default()
        },
    )
    .unwrap();
    ex.set_faults(|f| f.delay = Duration::from_millis(1500));
    let e = impatient.meta().await.unwrap_err().to_string();
    assert!(
        e.contains("timed out waiting for the answer after 0.2 s"),
        "{e}"
    );
    assert!(e.contains("after 2 attempts"), "{e}");
    ex.set_faults(|f| f.delay = Duration::ZERO);
    // Nothing listening: a refused connection, said as one.
    let dead = InfoClient::with_policy("http://127.0.0.1:9", fast_retry(), 1200.0).unwrap();
    let e = dead.meta().await.unwrap_err().to_string();
    assert!(
        e.contains("could not connect") && e.contains("refused"),
        "{e}"
    );
}

/// What an independent reliability run found (issue 45): a page of bars 853 times away from
/// the stored close was appended and left the folder stuck; a funding page served newest
/// first lost records for good; a dripping or hung server held a fetch for minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_join_is_refused_funding_holes_are_refilled_and_requests_have_a_deadline() {
    let ex = exchange(3000).await;
    let c = client(&ex);
    let truth = ex.candles("BTC", "1h").unwrap();
    // The join: bars 853x away from the stored last close are refused before anything is
    // written; the file still loads, and the next healthy fetch appends as usual.
    let out = scratch("join");
    fetch(&c, &req(&out, ex.now()), &|_| {}).await.unwrap();
    let file = out.join("candles/hyperliquid_BTC_1h.csv");
    let kept = std::fs::read(&file).unwrap();
    for _ in 0..5 {
        ex.advance();
    }
    ex.set_faults(|f| f.price_scale = Some(853.0));
    let e = fetch(&c, &req(&out, ex.now()), &|_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!(
            "BTC 1h bar at {}: implausible bar: open",
            truth.ts[3000]
        )) && e.contains("x away from the previous close")
            && e.contains("the page is refused and")
            && e.contains("is left as it was"),
        "{e}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), kept, "nothing appended");
    ex.set_faults(|f| f.price_scale = None);
    let r = fetch(&c, &req(&out, ex.now()), &|_| {}).await.unwrap();
    assert_eq!(r[0].after - r[0].before, 5);
    assert_eq!(load_candles(&file).unwrap().len(), 725);
    // Funding served newest first: every record kept (the page is put in time order).
    let out = scratch("newest-first");
    ex.set_faults(|f| f.funding_newest_first = true);
    fetch(&c, &req(&out, ex.now()), &|_| {}).await.unwrap();
    ex.set_faults(|f| f.funding_newest_first = false);
    let ffile = out.join("funding/hyperliquid_BTC.csv");
    let whole = load_funding(&ffile).unwrap();
    assert_eq!(whole.ts.len(), 720);
    // A hole an earlier fetch left (49 records in the middle) is asked for again and filled.
    let text = std::fs::read_to_string(&ffile).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let holed: String = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| !(300..349).contains(i))
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    std::fs::write(&ffile, holed).unwrap();
    assert_eq!(load_funding(&ffile).unwrap().ts.len(), 671);
    let r = fetch(&c, &req(&out, ex.now()), &|_| {}).await.unwrap();
    assert_eq!((r[1].before, r[1].after), (671, 720));
    assert_eq!(load_funding(&ffile).unwrap(), whole);
    // A server that drips its answer a byte every half second, or hangs: the request fails at
    // its deadline (1 s here; 60 s by default), said as such, not after minutes.
    let within = |total: Duration| {
        InfoClient::with_timeouts(
            &ex.http_url(),
            fast_retry(),
            1200.0,
            Timeouts {
                total,
                ..Timeouts::default()
            },
        )
        .unwrap()
    };
    let impatient = within(Duration::from_secs(1));
    for fault in ["drip", "hang"] {
        ex.set_faults(|f| match fault {
            "drip" => f.drip = Some(Duration::from_millis(500)),
            _ => f.delay = Duration::from_secs(120),
        });
        let t = std::time::Instant::now();
        let e = impatient.meta().await.unwrap_err().to_string();
        assert!(
            e.contains(
                "no complete answer within the request deadline of 1 s \
                 (exchange.request_deadline_secs)"
            ),
            "{fault}: {e}"
        );
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{fault}: {:?}",
            t.elapsed()
        );
        ex.set_faults(|f| {
            f.drip = None;
            f.delay = Duration::ZERO;
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_last_5000_candles_are_served_and_gaps_are_reported() {
    let ex = exchange(8000).await;
    let c = client(&ex);
    let out = scratch("limit");
    let req = FetchRequest {
        coins: vec!["ETH".into()],
        intervals: vec!["1h".into()],
        days: 365,
        out: out.clone(),
        now_ms: ex.now(),
        funding: false,
    };
    let r = fetch(&c, &req, &|_| {}).await.unwrap();
    // 365 days requested, 5,000 bars kept by the exchange, the forming one excluded.
    assert_eq!(r[0].after, 4999);
    assert_eq!(r[0].gaps.gaps, 0);
    // A file with a hole: fetch appends after it and reports the gap, never fills it.
    let path = out.join("candles/hyperliquid_ETH_1h.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.remove(100);
    lines.remove(100);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    ex.advance();
    let r = fetch(
        &c,
        &FetchRequest {
            now_ms: ex.now(),
            ..req
        },
        &|_| {},
    )
    .await
    .unwrap();
    assert_eq!((r[0].gaps.gaps, r[0].gaps.missing_bars), (1, 2));
    assert_eq!(r[0].after, 4998);
}

async fn collect_candles(
    feed: &mut organism::exchange::hyperliquid::ws::Feed,
    until_t: i64,
    events: &mut Vec<FeedEvent>,
) -> Vec<organism::exchange::hyperliquid::Candle> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while out
        .last()
        .is_none_or(|c: &organism::exchange::hyperliquid::Candle| c.t < until_t)
    {
        let e = tokio::time::timeout_at(deadline, feed.events.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "timed out; got {} candles, last {:?}",
                    out.len(),
                    out.last().map(|c| c.t)
                )
            })
            .expect("feed ended");
        if let FeedEvent::Candle { candle, .. } = &e {
            out.push(*candle);
        }
        events.push(e);
    }
    out
}

fn feed_config(ex: &LocalExchange, subs: Vec<Subscription>) -> FeedConfig {
    let mut cfg = FeedConfig::new(ex.ws_url(), subs);
    cfg.reconnect_base = Duration::from_millis(20);
    cfg.reconnect_max = Duration::from_millis(100);
    cfg.ping_every = Duration::from_millis(200);
    cfg.close_check_every = Duration::from_millis(50);
    cfg
}

fn btc_1h() -> Subscription {
    Subscription::Candle {
        coin: "BTC".into(),
        interval: "1h".into(),
    }
}

async fn wait_connected(ex: &LocalExchange, n: usize) {
    for _ in 0..200 {
        if ex.seen().ws_connections >= n {
            tokio::time::sleep(Duration::from_millis(50)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no WebSocket connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_delivers_closed_bars_and_other_channels() {
    let ex = exchange(500).await;
    let info = Arc::new(client(&ex));
    let subs = vec![
        btc_1h(),
        Subscription::AllMids,
        Subscription::Trades { coin: "ETH".into() },
        Subscription::L2Book { coin: "BTC".into() },
    ];
    let mut feed = spawn(feed_config(&ex, subs), info, Arc::new(SimClock(ex.clock())));
    wait_connected(&ex, 1).await;
    for _ in 0..5 {
        ex.advance();
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let truth = ex.candles("BTC", "1h").unwrap();
    let mut events = Vec::new();
    // Bars 501..504 close when the next bar's first update arrives; bar 505 is still open.
    let got = collect_candles(&mut feed, truth.ts[504], &mut events).await;
    let ts: Vec<i64> = got.iter().map(|c| c.t).collect();
    assert_eq!(ts, truth.ts[501..505].to_vec());
    for (c, i) in got.iter().zip(501..) {
        assert_eq!(
            (c.open, c.high, c.low, c.close),
            (truth.open[i], truth.high[i], truth.low[i], truth.close[i])
        );
    }
    assert!(events
        .iter()
        .any(|e| matches!(e, FeedEvent::Mids(m) if m.len() == 2)));
    assert!(events
        .iter()
        .any(|e| matches!(e, FeedEvent::Trades(t) if t[0].coin == "ETH")));
    assert!(events
        .iter()
        .any(|e| matches!(e, FeedEvent::Book(b) if b.coin == "BTC")));
    feed.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_backfill_every_bar_exactly_once() {
    let ex = exchange(1000).await;
    let truth = ex.candles("BTC", "1h").unwrap();
    ex.set_faults(|f| {
        // Two connections are dropped after 9 messages; two bars never appear on the stream;
        // every 4th message is preceded by garbage.
        f.ws_drop_after = Some(9);
        f.ws_drops = 2;
        f.ws_skip_bars = [truth.ts[1006], truth.ts[1013]].into();
        f.ws_malformed_every = Some(4);
    });
    let info = Arc::new(client(&ex));
    let mut feed = spawn(
        feed_config(&ex, vec![btc_1h()]),
        info,
        Arc::new(SimClock(ex.clock())),
    );
    wait_connected(&ex, 1).await;
    for _ in 0..30 {
        ex.advance();
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let mut events = Vec::new();
    let got = collect_candles(&mut feed, truth.ts[1029], &mut events).await;
    let ts: Vec<i64> = got.iter().map(|c| c.t).collect();
    assert_eq!(
        ts,
        truth.ts[1001..1030].to_vec(),
        "every closed bar once, in order"
    );
    for (c, i) in got.iter().zip(1001..) {
        assert_eq!(c.close, truth.close[i], "bar {i}");
        assert_eq!(c.volume, truth.volume[i], "bar {i} has its final values");
    }
    let stats = &feed.stats;
    assert!(stats.reconnects.load(std::sync::atomic::Ordering::Relaxed) >= 2);
    assert!(stats.backfilled.load(std::sync::atomic::Ordering::Relaxed) >= 2);
    assert!(stats.malformed.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    assert!(events.iter().any(|e| matches!(e, FeedEvent::Malformed(_))));
    assert!(events
        .iter()
        .any(|e| matches!(e, FeedEvent::Reconnected(_))));
    feed.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_keeps_an_idle_connection_open_and_close_time_closes_a_bar() {
    let ex = exchange(2000).await;
    ex.set_faults(|f| f.ws_idle_timeout = Some(Duration::from_millis(600)));
    let info = Arc::new(client(&ex));
    let mut feed = spawn(
        feed_config(&ex, vec![btc_1h()]),
        info,
        Arc::new(SimClock(ex.clock())),
    );
    wait_connected(&ex, 1).await;
    ex.advance(); // bar 2001 starts
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(ex.seen().pings >= 3, "pings {}", ex.seen().pings);
    assert_eq!(
        ex.seen().ws_connections,
        1,
        "the heartbeat kept the connection"
    );
    // No later bar arrives, but once the clock passes bar 2001's close time it is delivered.
    ex.clock()
        .fetch_add(HOUR_MS, std::sync::atomic::Ordering::SeqCst);
    let truth = ex.candles("BTC", "1h").unwrap();
    let mut events = Vec::new();
    let got = collect_candles(&mut feed, truth.ts[2001], &mut events).await;
    assert_eq!(got.last().unwrap().t, truth.ts[2001]);
    feed.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_fetch_and_fetch_sentiment_against_the_local_exchange() {
    use organism::clock::{Clock, WallClock};
    let now = WallClock.now_ms();
    let p = SyntheticParams {
        start_ms: now.div_euclid(HOUR_MS) * HOUR_MS - 3000 * HOUR_MS,
        ..params()
    };
    let ex = LocalExchange::start("127.0.0.1:0".parse().unwrap(), &p, now)
        .await
        .unwrap();
    let out = scratch("cli");
    let bin = env!("CARGO_BIN_EXE_organism");
    let url = ex.http_url();
    let fetch_cli = |extra: &[&str]| {
        let mut args = vec![
            "data", "fetch", "--coins", "BTC,ETH", "--days", "20", "--out",
        ];
        args.push(out.to_str().unwrap());
        args.extend_from_slice(extra);
        let mut c = tokio::process::Command::new(bin);
        c.args(args).env("HYPERLIQUID_API_URL", &url);
        c
    };
    let o = within(&mut fetch_cli(&["--interval", "1h"])).await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("hyperliquid_BTC_1h.csv: 480 rows (+480)"),
        "{stdout}"
    );
    assert!(stdout.contains("funding/hyperliquid_ETH.csv"), "{stdout}");
    // Again with --json: four files, nothing new, nothing rejected.
    let o = within(&mut fetch_cli(&["--json"])).await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let files = v["files"].as_array().unwrap();
    assert_eq!(files.len(), 4);
    assert!(
        files.iter().all(|f| f["added"] == 0 && f["rejected"] == 0),
        "{v}"
    );
    assert_eq!(files[0]["after"], 480);
    // The fetched directory is usable data.
    let o = within(tokio::process::Command::new(bin).args([
        "backtest",
        "--data",
        out.to_str().unwrap(),
        "--coin",
        "ETH",
        "--json",
    ]))
    .await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let fg = out.join("fear_greed.csv");
    let o = within(tokio::process::Command::new(bin).args([
        "data",
        "fetch-sentiment",
        "--url",
        &url,
        "--out",
        fg.to_str().unwrap(),
    ]))
    .await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let loaded = organism::market::csv::load_fear_greed(&fg).unwrap();
    assert_eq!(loaded.value.len(), 400);
    assert!(loaded.day.windows(2).all(|w| w[1] == w[0] + 1));
    // An unreachable API: one clear error, exit 1.
    let o = within(tokio::process::Command::new(bin).args([
        "data",
        "fetch",
        "--coins",
        "BTC",
        "--out",
        out.to_str().unwrap(),
        "--api-url",
        "http://127.0.0.1:9",
    ]))
    .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("connection to http://127.0.0.1:9"));
}

/// Runs `cmd` to its end within [`common::DEADLINE`] (killed on the way out if it does not).
async fn within(cmd: &mut tokio::process::Command) -> std::process::Output {
    let what = format!("{:?}", cmd.as_std().get_args().collect::<Vec<_>>());
    let run = cmd.kill_on_drop(true).output();
    tokio::time::timeout(common::DEADLINE, run)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "organism {what} did not finish within {:?}",
                common::DEADLINE
            )
        })
        .unwrap_or_else(|e| panic!("organism {what}: cannot run: {e}"))
}
