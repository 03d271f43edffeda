//! `organism paper run` end to end against the local test exchange with accelerated bars:
//!
//! * an uninterrupted run journals exactly what the paper session computes in-process over
//!   the bars (and funding) the exchange served;
//! * a run killed with SIGKILL at 24 random instants (during warm-up, catch-up, between and
//!   inside bars) and restarted each time ends with the same journal, row for row;
//! * a run through dropped connections, malformed messages, bars the stream skipped and failed
//!   REST requests ends with the same journal too;
//! * the kill switch (`paper stop`) flattens everything and stops the runner; `paper status`
//!   reports it.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use std::sync::Arc;

use organism::{
    config::Config,
    exchange::local::{Faults, LocalExchange},
    market::{
        synthetic::{generate, SyntheticParams},
        Market, HOUR_MS,
    },
    promotion::registry::{Registry, Status},
    runner::history::Histories,
    runner::journal::{self, Entry, Kind},
    runner::paper::{book_specs, Session, SessionConfig},
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

mod common;

use common::{promoted, run_ok, s, t0, Proc};

fn scratch(name: &str) -> PathBuf {
    common::scratch("paperrun", name)
}

fn bin() -> &'static str {
    common::bin()
}

const WARMUP: i64 = 300;
/// Bars traded after the warm-up.
const BARS: i64 = 48;

/// A folder with a config and a registry holding the strategies a promotion admitted on the
/// planted-edge market (the same run each time: evolution and promotion are deterministic).
fn setup(dir: &Path) -> PathBuf {
    let rest = format!(
        r#"
[paper]
coins = ["BTC", "ETH"]
store = "{store}"
stop_file = "{stop}"
warmup_bars = {WARMUP}
bar_wait_secs = 600.0
# Tight enough that the session breaches on this market whatever the hour the test starts (t0
# follows the wall clock, so the UTC days the daily loss resets on fall differently among the
# bars; 0.01 / 0.03 breached nowhere when it started at 09:00 or 10:00 UTC): risk state must
# survive restarts.
daily_loss = 0.003
max_drawdown = 0.008

[exchange]
# The local test exchange has no rate limit; accelerated bars need more than Hyperliquid's.
weight_per_minute = 1000000.0
"#,
        store = s(&dir.join("store")),
        stop = s(&dir.join("STOP")),
    );
    promoted(dir, "paper.toml", &rest).0
}

/// The exchange's market: history ending half an hour into the bar that opens at `t0`.
fn exchange_params(t0: i64) -> SyntheticParams {
    common::exchange_params(t0, WARMUP, 2 * BARS)
}

/// The local exchange serving that market, its clock half an hour into the bar at `t0`.
async fn exchange(t0: i64) -> LocalExchange {
    LocalExchange::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        &exchange_params(t0),
        t0 + HOUR_MS / 2,
    )
    .await
    .unwrap()
}

fn spawn(cfg: &Path, url: &str, until: i64, log: &Path) -> Proc {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Proc::spawn(
        "paper run",
        Command::new(bin())
            .args([
                "paper",
                "run",
                "--config",
                s(cfg),
                "--api-url",
                url,
                "--until-ts",
                &until.to_string(),
                "--quiet",
            ])
            .stdout(Stdio::null())
            .stderr(file),
    )
    .log(log)
}

/// The session's journal, less its notices (a restart's, a stop's: about how the runner ran,
/// not about the bars).
fn journal_of(reg: &Path) -> Vec<Entry> {
    let r = Registry::open(reg).unwrap();
    let c = r.into_connection();
    journal::entries(&c, "paper")
        .unwrap()
        .into_iter()
        .map(|x| x.1)
        .filter(|e| e.kind() != Kind::Notice)
        .collect()
}

/// Runs a paper session against a fresh exchange (clock at `t0` + 30 min) until the bar
/// `BARS` hours after `t0` is processed; `kills` SIGKILLs at random instants, each followed by
/// a restart. Returns the journal.
async fn session(
    dir: &Path,
    cfg: &Path,
    t0: i64,
    kills: usize,
    faults: impl FnOnce(&mut Faults),
    seed: u64,
) -> Vec<Entry> {
    let ex = exchange(t0).await;
    ex.set_faults(faults);
    let url = ex.http_url();
    let until = t0 + (BARS - 1) * HOUR_MS;
    let reg = dir.join("reg.db");
    let log = dir.join("run.log");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let child = spawn(cfg, &url, until, &log);
    // Accelerated bars: one hour every 80 ms; kills at random instants in between.
    let child = common::drive(
        child,
        &mut rng,
        kills,
        BARS,
        Duration::from_millis(80),
        || common::started(&reg, "paper"),
        || ex.advance(),
        || spawn(cfg, &url, until, &log),
    )
    .await;
    child.exit_ok(Duration::from_secs(120)).await;
    journal_of(&reg)
}

/// The session computed in-process over the exchange's own bars and funding: the warm-up
/// bars before `t0`, then one bar at a time up to the last one the runner processed; with
/// `late`, that strategy joins once the bar opening at its time is processed.
fn expected(cfg: &Path, reg: &Path, t0: i64, late: Option<(&str, i64)>) -> Vec<Entry> {
    let config = Config::load(cfg).unwrap().run();
    let r = Registry::open(reg).unwrap();
    let mut strategies = r.list(Some(Status::Paper)).unwrap();
    strategies.sort_by(|a, b| a.id.cmp(&b.id));
    let (joining, strategies): (Vec<_>, Vec<_>) = strategies
        .into_iter()
        .partition(|s| late.is_some_and(|(id, _)| id == s.id));
    assert!(!strategies.is_empty());
    let (specs, reserve) = book_specs(&strategies, &config).unwrap();
    let u = generate(&exchange_params(t0));
    let span = |m: &Market, to: i64| m.between(t0 - WARMUP * HOUR_MS, to).unwrap();
    let warm: Histories = u
        .markets
        .iter()
        .map(|m| (m.coin.clone(), Arc::new(span(m, t0))))
        .collect();
    let mut conn = organism::store::open_in_memory().unwrap();
    let (mut session, rows) =
        Session::start("paper", SessionConfig::of(&config), specs, reserve, &warm);
    journal::append(&mut conn, "paper", &rows, 0).unwrap();
    for k in 0..BARS {
        let ts = t0 + k * HOUR_MS;
        if let Some((_, at)) = late.filter(|&(_, at)| session.last_ts() == Some(at)) {
            let processed: Histories = u
                .markets
                .iter()
                .map(|m| (m.coin.clone(), Arc::new(span(m, at + 1))))
                .collect();
            let (specs, _) = book_specs(&joining, &config).unwrap();
            let rows = session.adopt(specs, &processed);
            journal::append(&mut conn, "paper", &rows, 0).unwrap();
        }
        let h: Histories = u
            .markets
            .iter()
            .map(|m| (m.coin.clone(), Arc::new(span(m, ts + 1))))
            .collect();
        let rows = session.on_bar(ts, &h);
        journal::append(&mut conn, "paper", &rows, 0).unwrap();
    }
    journal::entries(&conn, "paper")
        .unwrap()
        .into_iter()
        .map(|x| x.1)
        .collect()
}

fn assert_same(what: &str, got: &[Entry], want: &[Entry]) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g, w, "{what}: row {i} differs");
    }
    assert_eq!(got.len(), want.len(), "{what}: row counts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paper_run_survives_kill_9_and_faults_and_journals_what_the_bars_imply() {
    let t0 = t0();
    // Uninterrupted.
    let a = scratch("a");
    let cfg_a = setup(&a);
    let ja = session(&a, &cfg_a, t0, 0, |_| {}, 1).await;
    let want = expected(&cfg_a, &a.join("reg.db"), t0, None);
    assert_same("uninterrupted run vs in-process session", &ja, &want);
    let count = |k: Kind| ja.iter().filter(|e| e.kind() == k).count();
    assert_eq!(count(Kind::Bar), 2 * BARS as usize);
    assert!(count(Kind::Fill) >= 4, "{}", count(Kind::Fill));
    assert!(count(Kind::Funding) > 0);
    assert!(
        count(Kind::Breach) >= 1,
        "the limits should bind on this market"
    );
    // Killed 24 times.
    let b = scratch("b");
    let cfg_b = setup(&b);
    // Slow answers make the warm-up long enough that kills land inside it.
    let jb = session(
        &b,
        &cfg_b,
        t0,
        24,
        |f| f.delay = Duration::from_millis(25),
        2,
    )
    .await;
    assert_same("killed 24 times vs uninterrupted", &jb, &ja);
    // Faults: dropped connections, malformed messages, skipped bars, failing REST requests.
    let c = scratch("c");
    let cfg_c = setup(&c);
    let jc = session(
        &c,
        &cfg_c,
        t0,
        0,
        |f| {
            f.ws_drop_after = Some(9);
            f.ws_drops = 3;
            f.ws_malformed_every = Some(4);
            f.ws_skip_bars = [t0 + 5 * HOUR_MS, t0 + 6 * HOUR_MS, t0 + 20 * HOUR_MS].into();
            f.fail_next = [500, 429, 502].into();
            f.retry_after = Some(0);
        },
        3,
    )
    .await;
    assert_same("through faults vs uninterrupted", &jc, &ja);
    for d in [a, b, c] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// A strategy promoted while `paper run` runs joins the session at its next bar, without a
/// restart: the journal is row for row what the in-process session computes when it adopts
/// the strategy at that bar (fresh books after the bars processed, funded as new paper capital:
/// the reserve is empty), and the registry has it on paper.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strategy_promoted_while_paper_runs_joins_at_its_next_bar() {
    let t0 = t0();
    let d = scratch("adopt");
    let cfg = setup(&d);
    let reg_path = d.join("reg.db");
    // The last strategy leaves the registry, to be promoted again while the session runs.
    let mut reg = Registry::open(&reg_path).unwrap();
    let mut all = reg.list(Some(Status::Promoted)).unwrap();
    all.sort_by(|a, b| a.id.cmp(&b.id));
    assert!(all.len() >= 2, "{} promoted", all.len());
    let late = all.pop().unwrap();
    for sql in [
        "DELETE FROM status_changes WHERE strategy_id = ?1",
        "DELETE FROM holdout_reads WHERE strategy_id = ?1",
        "DELETE FROM strategies WHERE id = ?1",
    ] {
        reg.connection().execute(sql, [&late.id]).unwrap();
    }
    let ex = exchange(t0).await;
    let until = t0 + (BARS - 1) * HOUR_MS;
    let log = d.join("run.log");
    let mut child = spawn(&cfg, &ex.http_url(), until, &log);
    child
        .wait_for_async("its session started", common::START, || {
            common::started(&reg_path, "paper")
        })
        .await;
    for k in 0..BARS {
        ex.advance();
        tokio::time::sleep(Duration::from_millis(80)).await;
        if k == BARS / 3 {
            reg.record(&late, true, 0).unwrap();
        }
    }
    child.exit_ok(Duration::from_secs(120)).await;
    let got = journal_of(&reg_path);
    let sessions: Vec<&Entry> = got.iter().filter(|e| e.kind() == Kind::Session).collect();
    assert_eq!(
        sessions.len(),
        2,
        "the start and the new strategy's joining"
    );
    let joined = sessions[1].bar_ts;
    assert!(joined > t0 && joined < until, "joined after bar {joined}");
    let books = |e: &Entry| e.body()["books"].as_array().unwrap().len();
    assert_eq!(books(sessions[1]), books(sessions[0]) + 2);
    // Its books decide from the bar after it joined.
    let first = got
        .iter()
        .find(|e| e.kind() == Kind::Decision && e.book.starts_with(&format!("{}/", late.id)))
        .expect("the new strategy decides");
    assert_eq!(first.bar_ts, joined + HOUR_MS);
    let want = expected(&cfg, &reg_path, t0, Some((&late.id, joined)));
    assert_same("adopted mid-session vs in-process adoption", &got, &want);
    assert_eq!(reg.get(&late.id).unwrap().status, Status::Paper);
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kill_switch_flattens_and_stops_and_status_says_so() {
    let t0 = t0();
    let d = scratch("stop");
    let cfg = setup(&d);
    // Alerts go to a local webhook.
    let hooks = common::hooks::Hooks::start().await;
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!(
        "\n[alerts]\nwebhook_url = \"{}/hook\"\nmax_per_minute = 600\n",
        hooks.url
    ));
    std::fs::write(&cfg, text).unwrap();
    let ex = exchange(t0).await;
    let reg = d.join("reg.db");
    let log = d.join("run.log");
    // No --until-ts: only the kill switch ends it.
    // Held in a guard: a failing assertion below kills it instead of leaving it to run forever.
    let mut child = spawn(&cfg, &ex.http_url(), i64::MAX, &log);
    child
        .wait_for_async("its session started", common::START, || {
            common::started(&reg, "paper")
        })
        .await;
    for _ in 0..30 {
        ex.advance();
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    let out = run_ok(&[
        "paper",
        "stop",
        "--config",
        s(&cfg),
        "--reason",
        "test stop",
    ]);
    assert!(out.contains("kill switch filed"), "{out}");
    child.exit_ok(Duration::from_secs(60)).await;
    let j = journal_of(&reg);
    let kill = j
        .iter()
        .position(|e| e.kind() == Kind::Kill)
        .expect("a kill row");
    assert_eq!(j[kill].body()["reason"], "test stop");
    // Every book flat afterwards.
    for e in j[kill..]
        .iter()
        .filter(|e| e.kind() == Kind::Equity && e.book != journal::PORTFOLIO)
    {
        assert_eq!(e.body()["position"], "0", "{}", e.book);
    }
    let status = run_ok(&["paper", "status", "--config", s(&cfg), "--json"]);
    let v: serde_json::Value = serde_json::from_str(status.trim()).unwrap();
    assert_eq!(v["killed"], true);
    assert_eq!(v["books"].as_array().unwrap().len(), 4);
    for b in v["books"].as_array().unwrap() {
        assert_eq!(b["position"], "0");
        assert!(b["paused"]
            .as_str()
            .unwrap()
            .starts_with("kill switch: test stop"));
    }
    assert!(v["pending_requests"].as_array().unwrap().is_empty());
    // Resume is filed, and a stop file works as well as the command.
    run_ok(&["paper", "resume", "--config", s(&cfg)]);
    std::fs::write(d.join("STOP"), "").unwrap();
    let child = spawn(&cfg, &ex.http_url(), i64::MAX, &log);
    child.exit_ok(Duration::from_secs(60)).await;
    assert!(
        !d.join("STOP").exists(),
        "the stop file is removed once acted on"
    );
    let j = journal_of(&reg);
    let kinds: Vec<Kind> = j.iter().map(|e| e.kind()).collect();
    let resume = kinds.iter().rposition(|k| *k == Kind::Resume).unwrap();
    let second_kill = kinds.iter().rposition(|k| *k == Kind::Kill).unwrap();
    assert!(resume < second_kill && second_kill > kill);
    assert!(j[second_kill].body()["reason"]
        .as_str()
        .unwrap()
        .starts_with("stop file "));
    // Ctrl-C: the session ends after the bar under way and says what stays open and how to go
    // on; the banner said what it was about to trade.
    run_ok(&["paper", "resume", "--config", s(&cfg)]);
    let resumes = || {
        journal_of(&reg)
            .iter()
            .filter(|e| e.kind() == Kind::Resume)
            .count()
    };
    let before = resumes();
    let sigint_log = d.join("sigint.log");
    let mut child = spawn(&cfg, &ex.http_url(), i64::MAX, &sigint_log);
    child
        .wait_for_async("the resume applied", common::START, || resumes() > before)
        .await;
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    child.exit_ok(Duration::from_secs(60)).await;
    let said = std::fs::read_to_string(&sigint_log).unwrap();
    assert!(
        said.contains("paper session (simulated fills, no orders sent)")
            && said.contains(&format!("venue: {}", ex.http_url()))
            && said.contains("journal: account `paper` in "),
        "{said}"
    );
    assert!(
        said.contains(
            "interrupted (Ctrl-C): every processed bar is in the journal; the positions \
             stay as they are until `organism paper run` continues the session"
        ),
        "{said}"
    );
    // The alerts of the three runs: each journal row once, in order; the session's start, its
    // fills, both kills and the three stops (none after a crash: there was none), and the two
    // resumptions.
    let sent = hooks.events();
    assert!(sent.windows(2).all(|w| w[0].0 < w[1].0), "{sent:?}");
    let count = |ev: &str| sent.iter().filter(|x| x.1 == ev).count();
    assert_eq!(count("kill"), 2, "{sent:?}");
    assert_eq!(count("stop"), 3, "{sent:?}");
    assert_eq!(count("restart"), 0, "{sent:?}");
    assert!(count("fill") >= 2, "{sent:?}");
    let texts = |ev: &str| -> Vec<&str> {
        sent.iter()
            .filter(|x| x.1 == ev)
            .map(|x| x.2.as_str())
            .collect()
    };
    assert!(texts("session")[0].starts_with("[paper] session of 4 books"));
    assert_eq!(
        texts("session")
            .iter()
            .filter(|t| t.contains("the paper session resumed"))
            .count(),
        2
    );
    assert!(texts("stop")[2].ends_with("the paper session stopped: interrupted (Ctrl-C)"));
    // `paper replay --strategy` reads the registry's genome and books what `backtest` books
    // with that genome (the config's built-in planted market).
    let list = run_ok(&["strategies", "list", "--config", s(&cfg), "--json"]);
    let list: serde_json::Value = serde_json::from_str(list.trim()).unwrap();
    let id = list
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["status"] == "paper")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let show = run_ok(&["strategies", "show", &id, "--config", s(&cfg), "--json"]);
    let show: serde_json::Value = serde_json::from_str(show.trim()).unwrap();
    let g = d.join("g.toml");
    std::fs::write(&g, show["strategy"]["genome"].as_str().unwrap()).unwrap();
    let (bt, pt) = (d.join("bt.csv"), d.join("pt.csv"));
    run_ok(&[
        "backtest",
        "--config",
        s(&cfg),
        "--genome",
        s(&g),
        "--coin",
        "ETH",
        "--timerange",
        "20240601-20240801",
        "--trades",
        s(&bt),
        "-q",
    ]);
    run_ok(&[
        "paper",
        "replay",
        "--config",
        s(&cfg),
        "--strategy",
        &id,
        "--coin",
        "ETH",
        "--from",
        "20240601",
        "--to",
        "20240801",
        "--trades",
        s(&pt),
    ]);
    let trades = std::fs::read_to_string(&bt).unwrap();
    assert!(trades.lines().count() > 3, "{trades}");
    assert_eq!(trades, std::fs::read_to_string(&pt).unwrap());

    // The journal and the candles belong to the venue: status names it, the candles are in
    // the venue's own folder, and another venue cannot continue the session.
    assert_eq!(v["venue"], ex.http_url());
    let port = ex.http_url().rsplit(':').next().unwrap().to_string();
    let own = d.join("store").join(format!("127.0.0.1-{port}"));
    let candles = own.join("candles").join("store_BTC_1h.csv");
    assert!(candles.is_file(), "{}", candles.display());
    let other = LocalExchange::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        &exchange_params(t0),
        t0 + HOUR_MS / 2,
    )
    .await
    .unwrap();
    let refused = |url: &str| {
        let until = (t0 + HOUR_MS).to_string();
        let o = common::organism(&[
            "paper",
            "run",
            "--config",
            s(&cfg),
            "--api-url",
            url,
            "--until-ts",
            &until,
        ]);
        assert_eq!(o.status.code(), Some(1), "{}", common::stderr(&o));
        common::stderr(&o)
    };
    let e = refused(&other.http_url());
    assert!(
        e.contains(&format!(
            "account `paper` has a session on {}",
            ex.http_url()
        )) && e.contains(&format!("this run is against {}", other.http_url())),
        "{e}"
    );
    // A venue whose clock is behind the store (here the same exchange set back two days) is
    // refused before anything is fetched into the store or journaled.
    let before = std::fs::read(&candles).unwrap();
    let rows = journal_of(&reg).len();
    ex.clock().store(
        t0 - 48 * HOUR_MS + HOUR_MS / 2,
        std::sync::atomic::Ordering::SeqCst,
    );
    let e = refused(&ex.http_url());
    assert!(
        e.contains("store_") && e.contains("is ahead of the venue's clock"),
        "{e}"
    );
    assert_eq!(std::fs::read(&candles).unwrap(), before);
    assert_eq!(journal_of(&reg).len(), rows);
    let _ = std::fs::remove_dir_all(d);
}
