//! Alerts against a local HTTP server that also answers 500 and hangs: every alertable journal
//! row is delivered once, in order, under one idempotency key per batch through retries with
//! backoff, within the rate limit; a sender that dies mid-send is followed by one that sends
//! the same batch under the same key; Discord, Slack and Telegram get their own shapes.

use std::time::Duration;

use organism::{
    clock::{Clock, SimClock},
    execution::OrderSide,
    runner::journal::{self, BreachRow, Entry, FillRow, Money, NoticeRow},
    serve::alerts::{self, AlertsConfig, Sender, EVENTS},
};

mod common;

use common::hooks::{Answer, Hooks};

fn config(hooks: &Hooks) -> AlertsConfig {
    AlertsConfig {
        webhook_url: format!("{}/hook", hooks.url),
        discord_webhook_url: String::new(),
        slack_webhook_url: String::new(),
        telegram_chat_id: String::new(),
        telegram_api_url: "https://api.telegram.org".into(),
        events: EVENTS.iter().map(|e| e.to_string()).collect(),
        max_per_minute: 2,
        timeout_secs: 0.5,
        batch: 2,
    }
}

fn fill(qty: f64) -> FillRow {
    FillRow {
        fee: Money(0.05),
        id: 1,
        notional: Money(qty * 100.0),
        price: Money(100.0),
        qty: Money(qty),
        side: OrderSide::Buy,
    }
}

const HOUR: i64 = 3_600_000;

/// Five alertable rows (three fills, a breach, a notice) among rows no alert is about.
fn five(conn: &mut rusqlite::Connection, from: f64) {
    let bar = |close: f64| journal::BarRow {
        close: Money(close),
        funding_rate: 0.0,
        high: Money(close),
        low: Money(close),
        open: Money(close),
        volume: Money(1.0),
    };
    let rows = vec![
        Entry::new("BTC", 0, bar(100.0)),
        Entry::new("s/BTC", 0, fill(from)),
        Entry::new("s/BTC", 0, fill(from + 1.0)),
        Entry::new("BTC", HOUR, bar(101.0)),
        Entry::new("s/BTC", HOUR, fill(from + 2.0)),
        Entry::new(
            "s/BTC",
            HOUR,
            BreachRow::Book {
                flattened: true,
                reason: "daily loss".into(),
            },
        ),
        Entry::new(
            "*",
            HOUR,
            NoticeRow {
                event: "stop".into(),
                text: "stopped".into(),
            },
        ),
    ];
    journal::append(conn, "paper", &rows, 0).unwrap();
}

/// The journal seqs of the alertable rows of `account`.
fn alertable(conn: &rusqlite::Connection) -> Vec<i64> {
    journal::entries(conn, "paper")
        .unwrap()
        .into_iter()
        .filter(|(_, e)| alerts::describe("paper", e).is_some())
        .map(|(s, _)| s)
        .collect()
}

/// The seqs a webhook request carried.
fn seqs(body: &serde_json::Value) -> Vec<i64> {
    body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_arrive_once_in_order_through_failures_hangs_rate_limits_and_a_dead_sender() {
    let hooks = Hooks::start().await;
    let dir = common::scratch("alerts", "once");
    let db = dir.join("reg.db");
    let mut conn = organism::store::open(&db).unwrap();
    // Rows before the target is first configured are not replayed.
    five(&mut conn, 100.0);
    let cfg = config(&hooks);
    let targets = cfg.targets().unwrap();
    alerts::register(&conn, &targets).unwrap();
    let old = alertable(&conn);
    five(&mut conn, 1.0);
    let want: Vec<i64> = alertable(&conn)
        .into_iter()
        .filter(|s| !old.contains(s))
        .collect();
    assert_eq!(want.len(), 5);
    // A 500, then a hang longer than the timeout, then 200s.
    hooks.script(&[Answer::Status(500), Answer::Hang(Duration::from_secs(2))]);
    let clock = SimClock::at(1_000_000);
    let http = reqwest::Client::new();
    let mut sender = Sender::default();
    // One round a simulated second; the requests each minute of it.
    let mut per_minute: Vec<usize> = Vec::new();
    let mut seen = 0;
    for tick in 0..600 {
        sender
            .round(&mut conn, &cfg, &targets, &http, &clock)
            .await
            .unwrap();
        if tick % 60 == 59 {
            let n = hooks.received().len();
            per_minute.push(n - seen);
            seen = n;
        }
        clock.advance(1000);
    }
    let got = hooks.received();
    // At most 2 a minute, failures included.
    assert!(per_minute.iter().all(|&n| n <= 2), "{per_minute:?}");
    // The 500 and the hang were the first batch, sent again under its key until it went.
    assert_eq!(got[0].status, 500);
    assert!(got[1].hung);
    assert_eq!(got[0].key, got[2].key);
    assert_eq!(got[1].key, got[2].key);
    assert_eq!(seqs(&got[0].body), seqs(&got[2].body));
    // Delivered: every row once, in order.
    let delivered: Vec<i64> = got
        .iter()
        .filter(|r| r.status == 200 && !r.hung)
        .flat_map(|r| seqs(&r.body))
        .collect();
    assert_eq!(delivered, want);
    let keys: std::collections::BTreeSet<&str> = got
        .iter()
        .filter(|r| r.status == 200 && !r.hung)
        .map(|r| r.key.as_str())
        .collect();
    assert_eq!(keys.len(), 3, "three batches of at most two");
    let texts: Vec<String> = got[2].body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        texts,
        [
            "[paper] s/BTC: buy 1 at 100 (fee 0.0500) in bar 1970-01-01 00:00",
            "[paper] s/BTC: buy 2 at 100 (fee 0.0500) in bar 1970-01-01 00:00"
        ]
    );

    // A sender that dies mid-send (its round dropped while the request hangs) leaves its batch
    // leased; once the lease ends a new sender sends the same batch under the same key.
    five(&mut conn, 10.0);
    hooks.script(&[Answer::Hang(Duration::from_secs(3))]);
    let before = hooks.received().len();
    clock.advance(120_000);
    let mut dying = Sender::default();
    let _ = tokio::time::timeout(
        Duration::from_millis(200),
        dying.round(&mut conn, &cfg, &targets, &http, &clock),
    )
    .await;
    drop(dying);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut after = Sender::default();
    // Leased: nothing yet.
    after
        .round(&mut conn, &cfg, &targets, &http, &clock)
        .await
        .unwrap();
    assert_eq!(hooks.received().len(), before + 1);
    clock.advance(60_000);
    for _ in 0..240 {
        after
            .round(&mut conn, &cfg, &targets, &http, &clock)
            .await
            .unwrap();
        clock.advance(1000);
    }
    let got = hooks.received();
    let again = &got[before..];
    assert_eq!(again[0].key, again[1].key, "the dead sender's batch, again");
    assert_eq!(seqs(&again[0].body), seqs(&again[1].body));
    let delivered: Vec<i64> = again[1..].iter().flat_map(|r| seqs(&r.body)).collect();
    let all = alertable(&conn);
    assert_eq!(delivered, all[all.len() - 5..].to_vec());
    // Nothing more to send.
    let n = hooks.received().len();
    after
        .round(&mut conn, &cfg, &targets, &http, &clock)
        .await
        .unwrap();
    assert_eq!(hooks.received().len(), n);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = clock.now_ms();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_slack_and_telegram_get_their_own_shapes() {
    let hooks = Hooks::start().await;
    let dir = common::scratch("alerts", "shapes");
    let db = dir.join("reg.db");
    let mut conn = organism::store::open(&db).unwrap();
    // SAFETY: this test binary's tests read no other environment variable concurrently.
    std::env::set_var(alerts::TELEGRAM_TOKEN_ENV, "123:secret");
    let cfg = AlertsConfig {
        webhook_url: String::new(),
        discord_webhook_url: format!("{}/discord", hooks.url),
        slack_webhook_url: format!("{}/slack", hooks.url),
        telegram_chat_id: "42".into(),
        telegram_api_url: hooks.url.clone(),
        batch: 20,
        max_per_minute: 20,
        events: vec!["fill".into()],
        ..config(&hooks)
    };
    let targets = cfg.targets().unwrap();
    assert!(!format!("{targets:?}").contains("secret"), "{targets:?}");
    alerts::register(&conn, &targets).unwrap();
    five(&mut conn, 1.0);
    let n = alerts::flush(
        &db,
        &cfg,
        &targets,
        &SimClock::at(0),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    // Three fills to each of three targets; the breach and the notice are not among the events.
    assert_eq!(n, 9);
    let got = hooks.received();
    let text = "[paper] s/BTC: buy 1 at 100 (fee 0.0500) in bar 1970-01-01 00:00\n\
                [paper] s/BTC: buy 2 at 100 (fee 0.0500) in bar 1970-01-01 00:00\n\
                [paper] s/BTC: buy 3 at 100 (fee 0.0500) in bar 1970-01-01 01:00";
    let by = |path: &str| got.iter().find(|r| r.path == path).unwrap().body.clone();
    assert_eq!(by("/discord"), serde_json::json!({ "content": text }));
    assert_eq!(by("/slack"), serde_json::json!({ "text": text }));
    assert_eq!(
        by("/bot123:secret/sendMessage"),
        serde_json::json!({ "chat_id": "42", "text": text })
    );
    assert_eq!(got.len(), 3);
    // Without the token, Telegram is refused with a message naming the variable.
    std::env::remove_var(alerts::TELEGRAM_TOKEN_ENV);
    let e = cfg.targets().unwrap_err();
    assert!(e.contains("TELEGRAM_BOT_TOKEN"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
