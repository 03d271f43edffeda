//! `organism cycle` with a fixed clock against the local exchange (in process, 127.0.0.1): the
//! steps of a period run once and are journaled, a second run in the period does nothing, the
//! next period fetches only the new bars, a live lock keeps a second cycle out and a dead one's
//! is taken over, and a failed step is carried on from by the next run.

use std::{net::SocketAddr, path::Path};

use organism::{
    exchange::local::LocalExchange,
    market::{synthetic::SyntheticParams, HOUR_MS},
    runner::journal::{self, Kind, Row},
};

mod common;

use common::{organism, s, scratch};

const DAY_MS: i64 = 24 * HOUR_MS;
/// 2026-01-01 00:00 UTC.
const START: i64 = 1_767_225_600_000;

/// The journal's cycle rows: (period, step, outcome).
fn rows(db: &Path) -> Vec<(String, String, String)> {
    let conn = organism::store::open(db).unwrap();
    journal::of_kind(&conn, "cycle", Kind::Cycle)
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.row {
            Row::Cycle(c) => Some((c.period, c.step, c.outcome)),
            _ => None,
        })
        .collect()
}

fn lines(p: &Path) -> usize {
    std::fs::read_to_string(p).unwrap().lines().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_runs_each_period_once_under_a_lock_and_carries_on_after_a_failure() {
    let dir = scratch("cycle", "periods");
    let params = SyntheticParams {
        seed: 5,
        bars: 24 * 80,
        start_ms: START,
        coins: vec!["BTC".into(), "ETH".into()],
        annual_vol: vec![0.8, 0.9],
        start_price: vec![40_000.0, 2_500.0],
        ..Default::default()
    };
    // Day 61 (2026-03-03), 02:30: the period's bars up to 02:00 have closed.
    let day = START + 61 * DAY_MS;
    let now = day + 2 * HOUR_MS + 30 * 60_000;
    let ex = LocalExchange::start(SocketAddr::from(([127, 0, 0, 1], 0)), &params, now)
        .await
        .unwrap();
    let url = ex.http_url();
    let hooks = common::hooks::Hooks::start().await;
    let cfg = dir.join("cycle.toml");
    std::fs::write(
        &cfg,
        format!(
            "[evolution]\npopulation = 8\ngenerations = 2\nseeds = [\"ema_crossover\", \"donchian_breakout\"]\n\n[promotion]\nregistry = \"{reg}\"\n\n\
             [cycle]\nwindow_days = 40\ndata = \"{data}\"\nruns = \"{runs}\"\n\n\
             [alerts]\nwebhook_url = \"{hook}/hook\"\n",
            hook = hooks.url,
            reg = dir.join("reg.db").display(),
            data = dir.join("data").display(),
            runs = dir.join("runs").display(),
        ),
    )
    .unwrap();
    let db = dir.join("reg.db");
    let candles = dir.join("data/candles/hyperliquid_BTC_1h.csv");
    let cycle = move |at: i64| {
        let (cfg, url) = (cfg.clone(), url.clone());
        tokio::task::spawn_blocking(move || {
            organism(&[
                "cycle",
                "--once",
                "--config",
                s(&cfg),
                "--now-ms",
                &at.to_string(),
                "--api-url",
                &url,
            ])
        })
    };
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };

    // The first period: every step, once.
    let o = cycle(now).await.unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let steps = ["fetch", "evolve", "promote", "paper", "retire", "done"];
    let first: Vec<(String, String, String)> = steps
        .iter()
        .map(|st| ("2026-03-03".to_string(), st.to_string(), "ok".to_string()))
        .collect();
    assert_eq!(rows(&db), first, "{}", text(&o));
    // 41 days of closed bars before now: the window and the day it starts in.
    let fetched = lines(&candles) - 1;
    assert_eq!(fetched, 41 * 24, "{}", text(&o));
    let run = dir.join("runs/2026-03-03");
    // Generations 0, 1 and 2.
    assert_eq!(lines(&run.join("history.csv")), 4);
    assert!(dir.join("runs/logs/2026-03-03-promote.log").exists());
    // The alerts: every step, the run's end and the promotion's result, each once and in order
    // (the evolve and promote steps send their own; the cycle sends the rest at its end).
    let sent = hooks.events();
    let seqs: Vec<i64> = sent.iter().map(|x| x.0).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{sent:?}");
    let events: Vec<&str> = sent.iter().map(|x| x.1.as_str()).collect();
    assert_eq!(
        events,
        ["cycle", "evolve", "cycle", "promote", "cycle", "cycle", "cycle", "cycle"],
        "{sent:?}"
    );

    // Again in the same period: nothing.
    let o = cycle(now + HOUR_MS).await.unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("already done"), "{}", text(&o));
    assert_eq!(rows(&db).len(), 6);

    // A live process's lock keeps the next period's cycle out.
    let runs = dir.join("runs");
    std::fs::write(runs.join(".organism.lock"), std::process::id().to_string()).unwrap();
    let next = now + DAY_MS;
    ex.set_now(next);
    let o = cycle(next).await.unwrap();
    assert!(!o.status.success());
    assert!(
        text(&o).contains(&format!(
            "another `organism cycle` (pid {}) is running",
            std::process::id()
        )),
        "{}",
        text(&o)
    );
    assert_eq!(rows(&db).len(), 6);

    // A dead process's lock is taken over; the fetch brings only the day's new bars.
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    let pid = dead.id();
    dead.wait().unwrap();
    std::fs::write(runs.join(".organism.lock"), pid.to_string()).unwrap();
    let o = cycle(next).await.unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(lines(&candles) - 1, fetched + 24, "{}", text(&o));
    assert_eq!(rows(&db).len(), 12);
    assert!(dir.join("runs/2026-03-04/front.csv").exists());

    // A step that fails stops the period with a non-zero exit; the next run carries on from it.
    let third = next + DAY_MS;
    ex.set_now(third);
    std::fs::write(dir.join("runs/2026-03-05"), "in the way").unwrap();
    let o = cycle(third).await.unwrap();
    assert!(!o.status.success(), "{}", text(&o));
    let r = rows(&db);
    assert_eq!(
        r[12..]
            .iter()
            .map(|x| (x.1.as_str(), x.2.as_str()))
            .collect::<Vec<_>>(),
        [("fetch", "ok"), ("evolve", "failed")],
        "{}",
        text(&o)
    );
    std::fs::remove_file(dir.join("runs/2026-03-05")).unwrap();
    let o = cycle(third + HOUR_MS).await.unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("done earlier"), "{}", text(&o));
    let r = rows(&db);
    assert_eq!(
        r[14..].iter().map(|x| x.1.as_str()).collect::<Vec<_>>(),
        ["evolve", "promote", "paper", "retire", "done"]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
