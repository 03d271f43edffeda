//! `organism live run` end to end against the local test exchange (in process, 127.0.0.1) with
//! accelerated bars and the `organism` binary:
//!
//! * an uninterrupted run: every order the exchange placed came from a journaled intent, every
//!   exchange fill is booked in the journal, the exchange's positions equal the books';
//! * a run killed with SIGKILL at 24 random instants (start-up, between and inside bars) and
//!   restarted each time, with accept-then-time-out faults: no cloid placed twice, no fill
//!   lost, positions reconcile, and the strategies' raw decisions are the uninterrupted run's;
//! * the kill switch (`live stop`) cancels and flattens with reduce-only IOC orders;
//! * `--dry-run` prints signed requests the exchange's own check accepts as the account's;
//! * the private key appears in no log, output, config, journal or registry;
//! * the safety switches: no flag, no [live] section, a key file others can read;
//! * partial entries and exits (in process): engine, journal and exchange hold the same.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::Arc,
    time::Duration,
};

use organism::{
    exchange::{
        hyperliquid::{
            exchange::{ExchangeClient, MemoryNonces, PlacedStatus, SignedRequest},
            info::InfoClient,
            signing::{action_hash, phantom_agent_digest, recover, Signer},
            wire::{OrderTypeWire, OrderWire, Tif},
        },
        local::LocalExchange,
    },
    market::{synthetic::SyntheticParams, HOUR_MS},
    promotion::registry::{Registry, Status},
    runner::journal::{self, Entry, Kind},
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;

mod common;

use common::{bin, promoted, run_ok, s, t0, Proc};

fn scratch(name: &str) -> PathBuf {
    common::scratch("live", name)
}

const WARMUP: i64 = 300;
const BARS: i64 = 36;
/// The test account's key (the SDK's test key): never to be found in any output.
const KEY: &str = "0x0123456789012345678901234567890123456789012345678901234567890123";

fn account() -> String {
    Signer::from_hex(KEY).unwrap().address()
}

/// Config and registry: strategies promoted on the planted-edge market, then a `[live]`
/// section trading them (the key comes from the environment).
fn setup(dir: &Path, extra_live: &str) -> PathBuf {
    let rest = r#"
[paper]
coins = ["BTC", "ETH"]
bar_wait_secs = 600.0

[exchange]
weight_per_minute = 1000000.0
# Requests the exchange holds longer than this get no answer (the accept-then-time-out fault).
read_timeout_secs = 1.0
"#;
    let (cfg, base) = promoted(dir, "live.toml", rest);
    let reg = Registry::open(&dir.join("reg.db")).unwrap();
    let ids: Vec<String> = reg
        .list(Some(Status::Promoted))
        .unwrap()
        .into_iter()
        .map(|x| format!("\"{}\"", x.id))
        .collect();
    assert!(!ids.is_empty(), "the promotion admits strategies");
    std::fs::write(
        &cfg,
        format!(
            r#"{base}
[live]
capital = 20000.0
strategies = [{ids}]
require_paper_eligible = false
store = "{store}"
stop_file = "{stop}"
warmup_bars = {WARMUP}
max_order_notional = 1000000.0
order_expiry_secs = 2.0
reconcile_secs = 1.0
dead_man_secs = 60.0
{extra_live}
"#,
            ids = ids.join(", "),
            store = s(&dir.join("store")),
            stop = s(&dir.join("STOP")),
        ),
    )
    .unwrap();
    cfg
}

fn exchange_params(t0: i64) -> SyntheticParams {
    common::exchange_params(t0, WARMUP, 3 * BARS)
}

async fn exchange(t0: i64) -> LocalExchange {
    let ex = LocalExchange::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        &exchange_params(t0),
        t0 + HOUR_MS / 2,
    )
    .await
    .unwrap();
    ex.fund(&account(), Decimal::from(100_000));
    ex
}

fn spawn(cfg: &Path, url: &str, until: i64, log: &Path, extra: &[&str], out: Stdio) -> Proc {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Proc::spawn(
        "live run",
        Command::new(bin())
            .args(["live", "run", "--config", s(cfg), "--api-url", url])
            .args(["--until-ts", &until.to_string(), "--quiet"])
            .args(extra)
            .env("HYPERLIQUID_PRIVATE_KEY", KEY)
            .env("RUST_LOG", "info")
            .stdout(out)
            .stderr(file),
    )
    .log(log)
}

const REAL: &[&str] = &["--i-understand-this-trades-real-money"];

fn journal_of(reg: &Path) -> Vec<Entry> {
    let c = Registry::open(reg).unwrap().into_connection();
    journal::entries(&c, "live")
        .unwrap()
        .into_iter()
        .map(|x| x.1)
        .collect()
}

/// A live session against `ex` until `BARS` bars after `t0`, with `kills` SIGKILLs.
async fn session(ex: &LocalExchange, dir: &Path, cfg: &Path, t0: i64, kills: usize, seed: u64) {
    let url = ex.http_url();
    let until = t0 + (BARS - 1) * HOUR_MS;
    let reg = dir.join("reg.db");
    let log = dir.join("run.log");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let respawn = || spawn(cfg, &url, until, &log, REAL, Stdio::null());
    let child = common::drive(
        respawn(),
        &mut rng,
        kills,
        BARS,
        Duration::from_millis(150),
        || common::started(&reg, "live"),
        || ex.advance(),
        respawn,
    )
    .await;
    child.exit_ok(Duration::from_secs(180)).await;
    // Each start said it sends real orders, and where.
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(
        said.contains(&format!(
            "LIVE session: real orders sent to {url} (not Hyperliquid)"
        )),
        "{said}"
    );
}

/// Checks the invariants of a live journal against the exchange; returns the raw decisions.
fn check(ex: &LocalExchange, rows: &[Entry], what: &str) -> Vec<(String, i64, String)> {
    let me = account();
    // No order placed twice.
    let placed = ex.trading_seen().placed_cloids;
    let unique: BTreeSet<&String> = placed.iter().collect();
    assert_eq!(
        unique.len(),
        placed.len(),
        "{what}: a cloid was placed twice"
    );
    assert!(!placed.is_empty(), "{what}: orders were placed");
    // Every placed cloid was journaled as an intent first.
    let intents: BTreeSet<String> = rows
        .iter()
        .filter(|e| e.kind() == Kind::Intent)
        .map(|e| e.body()["cloid"].as_str().unwrap().to_string())
        .collect();
    for c in &placed {
        assert!(
            intents.contains(c),
            "{what}: cloid {c} placed without an intent"
        );
    }
    // No fill lost: every exchange fill's order is acknowledged in the journal with its size.
    let mut acked: BTreeMap<u64, Decimal> = BTreeMap::new();
    for e in rows.iter().filter(|e| e.kind() == Kind::Ack) {
        if let (Some(oid), Some(q)) = (e.body()["oid"].as_u64(), e.body()["qty"].as_str()) {
            acked.insert(oid, q.parse().unwrap());
        }
    }
    let mut by_oid: BTreeMap<u64, Decimal> = BTreeMap::new();
    for f in ex.fills(&me) {
        let q: Decimal = f["sz"].as_str().unwrap().parse().unwrap();
        *by_oid.entry(f["oid"].as_u64().unwrap()).or_default() += q;
    }
    for (oid, q) in &by_oid {
        assert_eq!(
            acked.get(oid),
            Some(q),
            "{what}: fill of order {oid} not booked"
        );
    }
    // Positions reconcile: the exchange's equal the books' in their last snapshots.
    let mut books: BTreeMap<String, f64> = BTreeMap::new();
    let mut last: BTreeMap<String, f64> = BTreeMap::new();
    for e in rows
        .iter()
        .filter(|e| e.kind() == Kind::Equity && e.book != "*")
    {
        let p: f64 = e.body()["position"].as_str().unwrap().parse().unwrap();
        last.insert(e.book.clone(), p);
    }
    for (book, p) in last {
        let coin = book.rsplit('/').next().unwrap().to_string();
        *books.entry(coin).or_default() += p;
    }
    for (coin, p) in &books {
        let on: f64 = ex.position(&me, coin).to_string().parse().unwrap();
        assert!(
            (on - p).abs() < 1e-6,
            "{what}: {coin}: exchange {on}, books {p}"
        );
    }
    // No reconciliation found a difference.
    for e in rows.iter().filter(|e| e.kind() == Kind::Reconcile) {
        assert_eq!(
            e.body()["halted"],
            serde_json::json!([]),
            "{what}: {}",
            e.body()
        );
        assert_eq!(
            e.body()["unknown_fills"],
            serde_json::json!([]),
            "{what}: {}",
            e.body()
        );
    }
    assert!(
        rows.iter().any(|e| e.kind() == Kind::Reconcile),
        "{what}: reconciled"
    );
    rows.iter()
        .filter(|e| e.kind() == Kind::Decision)
        .map(|e| (e.book.clone(), e.bar_ts, e.body()["raw"].to_string()))
        .collect()
}

/// Every file under `dir`, as bytes.
fn all_files(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            all_files(&p, out);
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
}

fn assert_no_key(dir: &Path) {
    let hex = KEY.trim_start_matches("0x");
    let mut files = Vec::new();
    all_files(dir, &mut files);
    assert!(files.len() > 5);
    for (p, bytes) in files {
        let text = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
        assert!(!text.contains(hex), "the private key is in {}", p.display());
        // Nor its bytes.
        let raw: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        assert!(
            !bytes.windows(32).any(|w| w == raw.as_slice()),
            "key bytes in {}",
            p.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_run_places_each_order_once_and_reconciles_through_kill_9() {
    let t0 = t0();
    let a = scratch("a");
    let cfg_a = setup(&a, "");
    let ex_a = exchange(t0).await;
    session(&ex_a, &a, &cfg_a, t0, 0, 1).await;
    let ja = journal_of(&a.join("reg.db"));
    let da = check(&ex_a, &ja, "uninterrupted");
    let fills = ja.iter().filter(|e| e.kind() == Kind::Fill).count();
    assert!(fills >= 4, "the strategies trade: {fills} fills");

    // Someone else trades the account: an order organism did not send, and a fill that
    // changes the ETH position. The next start reconciles: ETH is halted, both are reported.
    let me = account();
    let info = Arc::new(InfoClient::new(&ex_a.http_url()).unwrap());
    let other = ExchangeClient::new(
        info,
        Signer::from_hex(KEY).unwrap(),
        None,
        None,
        false,
        Box::new(MemoryNonces::default()),
    );
    let mids = other.info().all_mids().await.unwrap();
    let eth = mids["ETH"];
    let order = |px: Decimal, sz: &str, tif: Tif| OrderWire {
        a: 1,
        b: true,
        p: px.round_dp(0).to_string(),
        s: sz.into(),
        r: false,
        t: OrderTypeWire::limit(tif),
        c: None,
    };
    let rest = other
        .place(vec![order(eth / Decimal::TWO, "0.02", Tif::Gtc)])
        .await
        .unwrap();
    assert!(matches!(rest[0], PlacedStatus::Resting { .. }), "{rest:?}");
    let took = other
        .place(vec![order(eth * Decimal::new(102, 2), "0.05", Tif::Ioc)])
        .await
        .unwrap();
    assert!(matches!(took[0], PlacedStatus::Filled { .. }), "{took:?}");
    let before = journal_of(&a.join("reg.db")).len();
    let log = a.join("reconcile.log");
    let child = spawn(
        &cfg_a,
        &ex_a.http_url(),
        t0 + (BARS - 1) * HOUR_MS,
        &log,
        REAL,
        Stdio::null(),
    );
    child.exit_ok(Duration::from_secs(60)).await;
    let ja = journal_of(&a.join("reg.db"));
    let rec = ja[before..]
        .iter()
        .find(|e| e.kind() == Kind::Reconcile)
        .expect("reconciled at start");
    assert_eq!(
        rec.body()["halted"],
        serde_json::json!(["ETH"]),
        "{}",
        rec.body()
    );
    assert_eq!(
        rec.body()["unknown_orders"].as_array().unwrap().len(),
        1,
        "{}",
        rec.body()
    );
    assert_eq!(
        rec.body()["unknown_fills"].as_array().unwrap().len(),
        1,
        "{}",
        rec.body()
    );
    let halts: Vec<&Entry> = ja[before..]
        .iter()
        .filter(|e| e.kind() == Kind::Pause && e.book.ends_with("/ETH"))
        .collect();
    assert!(!halts.is_empty());
    assert!(
        halts
            .iter()
            .all(|e| e.body().to_string().contains("the exchange holds")),
        "{:?}",
        halts
    );
    assert!(!ja[before..]
        .iter()
        .any(|e| e.kind() == Kind::Pause && e.book.ends_with("/BTC")));

    // The kill switch: filed while no runner is up, acted on at the next start. It cancels the
    // stray order and closes the stray position too.
    run_ok(&["live", "stop", "--config", s(&cfg_a), "--reason", "test"]);
    let log = a.join("stop.log");
    let child = spawn(
        &cfg_a,
        &ex_a.http_url(),
        t0 + 1000 * HOUR_MS,
        &log,
        REAL,
        Stdio::null(),
    );
    child.exit_ok(Duration::from_secs(60)).await;
    for coin in ["BTC", "ETH"] {
        assert_eq!(
            ex_a.position(&me, coin),
            Decimal::ZERO,
            "{coin} flat after the kill switch"
        );
    }
    assert!(
        other.open_orders().await.unwrap().is_empty(),
        "orders cancelled"
    );
    let ja = journal_of(&a.join("reg.db"));
    assert!(ja.iter().any(|e| e.kind() == Kind::Kill));
    let status = run_ok(&["live", "status", "--config", s(&cfg_a), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(v["killed"], true, "{status}");

    // 24 SIGKILLs, with requests that are acted on but never answered in time.
    let b = scratch("b");
    let cfg_b = setup(&b, "");
    let ex_b = exchange(t0).await;
    ex_b.set_trading_faults(|f| {
        f.hang_next = 3;
        f.hang = Duration::from_secs(3);
        f.partial_next = 2;
    });
    session(&ex_b, &b, &cfg_b, t0, 24, 7).await;
    let jb = journal_of(&b.join("reg.db"));
    let db = check(&ex_b, &jb, "killed 24 times");
    assert_eq!(db, da, "the raw decisions are the uninterrupted run's");

    assert_no_key(&a);
    assert_no_key(&b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_prints_what_the_exchange_would_accept_and_safety_switches_hold() {
    let t0 = t0();
    let d = scratch("dry");
    let cfg = setup(&d, "");
    let ex = exchange(t0).await;
    // No flag.
    let o = common::output(
        Command::new(bin())
            .args([
                "live",
                "run",
                "--config",
                s(&cfg),
                "--api-url",
                &ex.http_url(),
            ])
            .env("HYPERLIQUID_PRIVATE_KEY", KEY),
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--i-understand-this-trades-real-money"));
    // No [live] section.
    let bare = d.join("bare.toml");
    std::fs::write(
        &bare,
        format!("[promotion]\nregistry = \"{}\"\n", s(&d.join("reg.db"))),
    )
    .unwrap();
    let o = common::output(
        Command::new(bin())
            .args([
                "live",
                "run",
                "--config",
                s(&bare),
                "--api-url",
                &ex.http_url(),
            ])
            .args(REAL)
            .env("HYPERLIQUID_PRIVATE_KEY", KEY),
    );
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no [live] section"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // A key file others can read.
    let key_file = d.join("key");
    std::fs::write(&key_file, KEY).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let with_file = d.join("file.toml");
        let text =
            std::fs::read_to_string(&cfg).unwrap() + &format!("key_file = \"{}\"\n", s(&key_file));
        std::fs::write(&with_file, text).unwrap();
        let o = common::output(
            Command::new(bin())
                .args([
                    "live",
                    "run",
                    "--config",
                    s(&with_file),
                    "--api-url",
                    &ex.http_url(),
                ])
                .args(REAL)
                .env_remove("HYPERLIQUID_PRIVATE_KEY"),
        );
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("readable by others"), "{err}");
        assert!(!err.contains(KEY.trim_start_matches("0x")));
    }
    std::fs::remove_file(&key_file).unwrap();

    // The dry run: signed requests on stdout, nothing sent.
    let out_file = d.join("dry.jsonl");
    let log = d.join("dry.log");
    let until = t0 + 12 * HOUR_MS;
    let mut child = spawn(
        &cfg,
        &ex.http_url(),
        until,
        &log,
        &["--dry-run"],
        Stdio::from(std::fs::File::create(&out_file).unwrap()),
    );
    child
        .wait_for_async("its session started", common::START, || {
            common::started(&d.join("reg.db"), "live-dry-run")
        })
        .await;
    for _ in 0..13 {
        ex.advance();
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    child.exit_ok(Duration::from_secs(60)).await;
    assert_eq!(
        ex.trading_seen().requests.len(),
        0,
        "a dry run sends nothing"
    );
    let text = std::fs::read_to_string(&out_file).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with('{')).collect();
    assert!(!lines.is_empty(), "orders were signed: {text}");
    for l in &lines {
        let req: SignedRequest = serde_json::from_str(l).unwrap();
        let h = action_hash(
            &req.action,
            req.vault_address.as_deref(),
            req.nonce,
            req.expires_after,
        )
        .unwrap();
        let sig = req.signature.parse().unwrap();
        assert_eq!(
            recover(&phantom_agent_digest(&h, false), &sig).unwrap(),
            account()
        );
        assert!(req.expires_after.is_some());
    }
    // `live status` points at the dry run's session; `--dry-run` shows it, marked.
    let plain = run_ok(&["live", "status", "--config", s(&cfg)]);
    assert!(
        plain.contains("no live session in account `live` yet")
            && plain.contains("a dry run's session is in account `live-dry-run`"),
        "{plain}"
    );
    let dry = run_ok(&["live", "status", "--config", s(&cfg), "--dry-run"]);
    assert!(
        dry.starts_with(&format!(
            "live DRY RUN account `live-dry-run` on {}: last bar",
            ex.http_url()
        )),
        "{dry}"
    );
    let v: serde_json::Value = serde_json::from_str(
        run_ok(&["live", "status", "--config", s(&cfg), "--dry-run", "--json"]).trim(),
    )
    .unwrap();
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["account"], "live-dry-run");
    assert!(!v["books"].as_array().unwrap().is_empty());
    // The banner said what was about to happen, and nothing of it reached stdout.
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(
        said.contains("live DRY RUN (orders signed and printed on stdout, never sent")
            && said.contains(&format!("venue: {}", ex.http_url())),
        "{said}"
    );
    assert!(!text.contains("DRY RUN"));
    assert_no_key(&d);
}

/// The in-process live rig of the tests below: the local exchange serving `params` (its clock
/// at `now`), the test account funded, and a live executor journaling into `db` (nonces kept
/// there, as `live run` keeps them).
mod rig {
    use super::*;
    use organism::{
        clock::WallClock,
        exchange::hyperliquid::{
            adapter::{stream_fills, DbNonces, ExecLimits, LiveExecutor},
            info::{RetryPolicy, Timeouts},
        },
        execution::types::VenueRules,
        runner::live::JournalLog,
    };

    pub async fn exchange(params: &SyntheticParams, now: i64) -> LocalExchange {
        let ex = LocalExchange::start(SocketAddr::from(([127, 0, 0, 1], 0)), params, now)
            .await
            .unwrap();
        ex.fund(&account(), Decimal::from(100_000));
        ex
    }

    /// The test account's exchange client (nonces kept in `db`) and the exchange's assets.
    pub async fn client(
        ex: &LocalExchange,
        db: &Path,
    ) -> (
        Arc<InfoClient>,
        Arc<ExchangeClient>,
        BTreeMap<String, (u32, VenueRules)>,
    ) {
        // No request budget: the local exchange has no limit.
        let info = Arc::new(
            InfoClient::with_timeouts(
                &ex.http_url(),
                RetryPolicy::default(),
                1e7,
                Timeouts::default(),
            )
            .unwrap(),
        );
        let meta = info.meta().await.unwrap();
        let assets: BTreeMap<String, (u32, VenueRules)> = meta
            .universe
            .iter()
            .enumerate()
            .map(|(i, a)| {
                (
                    a.name.clone(),
                    (i as u32, VenueRules::hyperliquid_perp(a.sz_decimals)),
                )
            })
            .collect();
        let client = Arc::new(ExchangeClient::new(
            info.clone(),
            Signer::from_hex(KEY).unwrap(),
            None,
            None,
            false,
            Box::new(DbNonces::open(db, &account()).unwrap()),
        ));
        (info, client, assets)
    }

    /// With `streamed`, orders' fills come back on the account's WebSocket stream.
    pub async fn executor(ex: &LocalExchange, db: &Path, streamed: bool) -> Arc<LiveExecutor> {
        let (info, client, assets) = client(ex, db).await;
        let account = client.account().to_string();
        let executor = LiveExecutor::new(
            client,
            tokio::runtime::Handle::current(),
            Arc::new(JournalLog::open(db, "live", Arc::new(WallClock)).unwrap()),
            assets,
            ExecLimits {
                max_order_notional: 1e9,
                max_slippage: 0.01,
                expiry_ms: 15_000,
                attempts: 3,
                backoff: Duration::from_millis(50),
            },
            Arc::new(WallClock),
            None,
        );
        if !streamed {
            return Arc::new(executor);
        }
        let connections = ex.seen().ws_connections;
        let events = stream_fills(&ex.http_url(), info, &account, Arc::new(WallClock));
        // Subscribed once the exchange has seen the connection (and a moment to subscribe).
        for _ in 0..100 {
            if ex.seen().ws_connections > connections {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        Arc::new(executor.with_fill_events(events))
    }
}

/// The settings and the one book of the in-process live tests: `genome` on BTC with 10,000.
fn one_book(
    genome: organism::seeds::Genome,
) -> (
    organism::runner::paper::SessionConfig,
    Vec<organism::runner::paper::BookSpec>,
) {
    use organism::runner::paper::{BookSpec, Lifecycle, Limits, SessionConfig};
    let cfg = SessionConfig {
        engine: organism::execution::EngineConfig::default(),
        book_limits: Limits::NONE,
        portfolio_limits: Limits::NONE,
        interval_ms: HOUR_MS,
        gap_pause_bars: 2,
        lifecycle: Lifecycle::NONE,
    };
    let spec = BookSpec {
        strategy: "s".into(),
        coin: "BTC".into(),
        genome,
        regime: None,
        cash: 10_000.0,
        validation_sharpe: None,
    };
    (cfg, vec![spec])
}

/// `seed` with `genes` set.
fn genome(seed: &str, genes: &[(&str, &str)]) -> organism::seeds::Genome {
    let e = organism::seeds::find(seed).unwrap();
    let mut g = e.spec.default_genome();
    for (k, v) in genes {
        e.spec.set(&mut g, k, v).unwrap();
    }
    organism::seeds::Genome::seed(e, g)
}

/// One synthetic BTC market of `bars` hourly bars.
fn btc(seed: u64, bars: usize) -> (SyntheticParams, organism::market::Market) {
    let params = SyntheticParams {
        seed,
        bars,
        start_ms: 1_767_225_600_000,
        coins: vec!["BTC".into()],
        annual_vol: vec![0.9],
        start_price: vec![42_000.0],
        ..Default::default()
    };
    let market = organism::market::synthetic::generate(&params).markets[0].clone();
    (params, market)
}

fn upto(market: &organism::market::Market, t: usize) -> organism::runner::history::Histories {
    [("BTC".to_string(), Arc::new(market.slice(0..t + 1)))]
        .into_iter()
        .collect()
}

/// A live book whose every order the exchange fills only in part (half, then the executor's
/// two top-ups half of what is left: 7/8 of it, in three fills that come back as events and
/// are journaled one by one): after each bar the engine's position, the journal's fills and
/// the exchange's position are the same, through a partial entry and a partial exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_entries_and_exits_leave_engine_journal_and_exchange_in_agreement() {
    use organism::{
        execution::OrderSide,
        runner::{journal::Row, paper::Session},
    };
    let dir = scratch("partial");
    let db = dir.join("reg.db");
    let warmup = 50usize;
    let (params, market) = btc(11, 400);
    let ex = rig::exchange(&params, market.candles.ts[warmup]).await;
    let (cfg, specs) = one_book(genome("ema_crossover", &[("fast", "2"), ("slow", "5")]));
    let upto = |t: usize| upto(&market, t);
    let (mut session, rows) = Session::start("live", cfg, specs, 0.0, &upto(warmup - 1));
    let mut conn = organism::store::open(&db).unwrap();
    journal::append(&mut conn, "live", &rows, 0).unwrap();
    session.link(rig::executor(&ex, &db, false).await);
    let lot = 1e-5;
    let (mut partial_entry, mut partial_exit) = (false, false);
    let mut journal_held = 0.0;
    for t in warmup..warmup + 200 {
        let ts = market.candles.ts[t];
        ex.set_now(ts + HOUR_MS);
        // Every order of this bar fills in part: 3 taker fills at half of what is asked.
        ex.set_trading_faults(|f| f.partial_next = 3);
        let rows = session.on_bar(ts, &upto(t));
        journal::append(&mut conn, "live", &rows, 0).unwrap();
        let mut held = journal_held;
        // Order id (in the order sent) → side, size asked, fills (size each).
        let mut ordered: BTreeMap<u64, (OrderSide, f64, Vec<f64>)> = BTreeMap::new();
        for r in &rows {
            match &r.row {
                Row::Order(o) => {
                    ordered.insert(o.id, (o.side, o.qty.0, Vec::new()));
                }
                Row::Fill(f) => {
                    let (side, _, fills) = ordered.get_mut(&f.id).expect("a fill of an order");
                    assert_eq!(*side, f.side);
                    fills.push(f.qty.0);
                    journal_held += f.side.sign() * f.qty.0;
                }
                _ => {}
            }
        }
        for (side, asked, fills) in ordered.values() {
            // 1/2, 1/4 and 1/8 of the order, each rounded to the lot, each a fill of its own.
            assert_eq!(fills.len(), 3, "bar {t}: fills {fills:?} of {asked}");
            for (k, x) in fills.iter().enumerate() {
                let part = asked / f64::from(2u32 << k);
                assert!(
                    (x - part).abs() <= 2.0 * lot,
                    "bar {t}: fills {fills:?} of {asked}"
                );
            }
            let before = held;
            held += side.sign() * fills.iter().sum::<f64>();
            let after = held;
            if before.abs() < lot / 2.0 {
                partial_entry = true;
            } else if after.abs() > lot / 2.0 && after.signum() == before.signum() {
                partial_exit = true;
            }
        }
        let engine = session.net_positions().get("BTC").copied().unwrap_or(0.0);
        let exchange: f64 = ex.position(&account(), "BTC").to_string().parse().unwrap();
        assert!(
            (engine - exchange).abs() < lot / 2.0 && (journal_held - exchange).abs() < lot / 2.0,
            "bar {t}: engine {engine}, journal {journal_held}, exchange {exchange}"
        );
        if partial_entry && partial_exit {
            break;
        }
    }
    assert!(partial_entry, "a partial entry happened");
    assert!(partial_exit, "a partial exit happened");
    let _ = std::fs::remove_dir_all(&dir);
}

/// One live session of the EMA crossover on BTC over bars `warmup..warmup + bars` against the
/// local exchange, the exchange refusing one order and filling the next in part (from bar
/// `warmup + 10`), and with `planted` (extra slippage, latency) from the start; the lifecycle
/// retires past 10 bps of fill drift after 5 orders. Returns the journal's database.
async fn drift_session(
    dir: &Path,
    planted: Option<(&str, u64)>,
    warmup: usize,
    bars: usize,
) -> (PathBuf, Vec<(String, String)>) {
    use organism::runner::paper::{Lifecycle, Session};
    let db = dir.join("reg.db");
    let (params, market) = btc(11, warmup + bars + 1);
    let ex = rig::exchange(&params, market.candles.ts[warmup]).await;
    if let Some((slip, ms)) = planted {
        ex.set_trading_faults(|f| {
            f.extra_slippage = slip.parse().unwrap();
            f.latency = Duration::from_millis(ms);
        });
    }
    let (mut cfg, specs) = one_book(genome("ema_crossover", &[("fast", "2"), ("slow", "5")]));
    cfg.lifecycle = Lifecycle {
        max_fill_drift_bps: 10.0,
        min_drift_orders: 5,
        ..Lifecycle::NONE
    };
    let upto = |t: usize| upto(&market, t);
    let (mut session, rows) = Session::start("live", cfg, specs, 0.0, &upto(warmup - 1));
    let mut conn = organism::store::open(&db).unwrap();
    journal::append(&mut conn, "live", &rows, 0).unwrap();
    session.link(rig::executor(&ex, &db, false).await);
    for t in warmup..warmup + bars {
        let ts = market.candles.ts[t];
        ex.set_now(ts + HOUR_MS);
        if t == warmup + 10 {
            ex.set_trading_faults(|f| {
                f.reject_next
                    .push_back("Insufficient margin to place order.".into());
                f.partial_next = 1;
            });
        }
        let rows = session.on_bar(ts, &upto(t));
        journal::append(&mut conn, "live", &rows, 0).unwrap();
    }
    // The exchange's funding payments, as the live rig reads them at each reconciliation.
    let (_, client, _) = rig::client(&ex, &db).await;
    let coins = ["BTC".to_string()].into_iter().collect();
    let paid = organism::runner::live::venue_funding(&client, &conn, "live", &coins)
        .await
        .unwrap();
    assert!(!paid.is_empty());
    journal::append(&mut conn, "live", &paid, 0).unwrap();
    // Read again: nothing new.
    let again = organism::runner::live::venue_funding(&client, &conn, "live", &coins)
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
    (db, session.retired())
}

/// The drift ledger measures a drift the local exchange plants. The same bars are traded twice,
/// once as the exchange is and once with 20 bps of extra adverse slippage on every taker fill
/// and 150 ms before every order's answer: order by order (the same bar and side in both), the
/// ledger's slippage grows by 20 bps within 0.5 bp, the slippage setting that would have matched
/// by 0.0020 within 0.00005, fees do not move, and the decision-to-answer latency grows by at
/// least 150 ms. Both ledgers count the refused order as missed and the half fill as partial.
/// The exchange's funding payments agree with what the books booked. The lifecycle retires the
/// strategy whose fills drift (10 bps allowed), not the other; and `organism drift --json`
/// prints the ledger's figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drift_ledger_measures_a_planted_drift_and_the_lifecycle_retires_on_it() {
    use organism::runner::drift::{self, Outcome};
    let dir = scratch("drift");
    let (clean_dir, planted_dir) = (dir.join("clean"), dir.join("planted"));
    std::fs::create_dir_all(&clean_dir).unwrap();
    std::fs::create_dir_all(&planted_dir).unwrap();
    let (warmup, bars) = (50, 100);
    let (clean_db, clean_retired) = drift_session(&clean_dir, None, warmup, bars).await;
    let (planted_db, planted_retired) =
        drift_session(&planted_dir, Some(("0.002", 150)), warmup, bars).await;
    let ledger = |db: &Path| drift::ledger(&organism::store::open(db).unwrap(), "live").unwrap();
    let (clean, planted) = (ledger(&clean_db), ledger(&planted_db));
    // The local exchange pays each hour's rate on the position at the bar's open, the model's
    // rule: what it booked and what the books booked agree to its rounding (a millionth of a
    // dollar per payment).
    for l in [&clean, &planted] {
        let (booked, venue) = l.funding();
        let venue = venue.expect("live: the exchange's funding is journaled");
        assert!(booked.abs() > 1.0, "{booked}");
        assert!((venue - booked).abs() < 1e-3, "{venue} vs {booked}");
    }
    for l in [&clean, &planted] {
        assert!(l.orders.len() >= 10, "{} orders", l.orders.len());
        let count = |o: Outcome| l.requests.iter().filter(|r| r.outcome == o).count();
        assert_eq!(count(Outcome::Rejected), 1, "{:?}", l.requests);
        assert_eq!(count(Outcome::Partial), 1, "{:?}", l.requests);
        assert_eq!(
            l.days.iter().map(|d| d.missed).sum::<usize>(),
            1,
            "{:?}",
            l.days
        );
    }
    // The exchange as the model assumes it: a 1 bp half spread (the model's slippage), the
    // taker fee of 4.5 bps.
    let clean_excess = clean.total().bps().unwrap();
    assert!(clean_excess.abs() < 1.0, "clean excess {clean_excess} bps");
    // Order by order.
    let key = |o: &drift::OrderDrift| (o.bar_ts, o.side.sign() as i64);
    let before: BTreeMap<(i64, i64), &drift::OrderDrift> =
        clean.orders.iter().map(|o| (key(o), o)).collect();
    let mut pairs = 0;
    for o in &planted.orders {
        let Some(c) = before.get(&key(o)) else {
            continue;
        };
        pairs += 1;
        let grew = o.slippage_bps - c.slippage_bps;
        assert!((grew - 20.0).abs() < 0.5, "bar {}: {grew} bps", o.bar_ts);
        assert!((o.fee_bps - c.fee_bps).abs() < 0.01, "bar {}", o.bar_ts);
    }
    assert!(pairs >= 5, "{pairs} orders on the same bar and side");
    let planted_excess = planted.total().bps().unwrap();
    assert!(
        (planted_excess - clean_excess - 20.0).abs() < 0.5,
        "{planted_excess} − {clean_excess}"
    );
    let matching = planted.matching_slippage().unwrap() - clean.matching_slippage().unwrap();
    assert!((matching - 0.002).abs() < 0.00005, "{matching}");
    let latency = |l: &drift::Ledger| l.distributions()["latency_ms"].median;
    assert!(
        latency(&planted) - latency(&clean) >= 150.0,
        "{} vs {}",
        latency(&planted),
        latency(&clean)
    );
    // Retired for its fills, at a day's end; the clean run trades on.
    assert!(clean_retired.is_empty(), "{clean_retired:?}");
    assert_eq!(planted_retired.len(), 1, "{planted_retired:?}");
    assert!(
        planted_retired[0].1.contains("beyond the model's"),
        "{planted_retired:?}"
    );
    // The command prints the ledger.
    let json = run_ok(&[
        "drift",
        "--registry",
        s(&planted_db),
        "--account",
        "live",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["excess_slippage_bps"].as_f64(), Some(planted_excess));
    assert_eq!(v["orders"].as_array().unwrap().len(), planted.orders.len());
    let text = run_ok(&["drift", "--registry", s(&planted_db), "--account", "live"]);
    assert!(text.contains("costs.slippage = 0.00"), "{text}");
    assert!(text.contains("1 rejected"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The genome of the stop tests: ATR stop-loss and take-profit close enough to be hit.
fn atr_stops() -> organism::seeds::Genome {
    genome(
        "atr_stop_loss",
        &[
            ("trend_period", "20"),
            ("stop_mult", "1.0"),
            ("take_mult", "2.5"),
        ],
    )
}

/// The trades among `rows`.
fn trades(rows: &[Entry]) -> Vec<organism::runner::journal::TradeRow> {
    rows.iter()
        .filter_map(|e| match &e.row {
            organism::runner::journal::Row::Trade(t) => Some(t.clone()),
            _ => None,
        })
        .collect()
}

/// What the backtest's engine books for [`atr_stops`]: a paper session over bars
/// `warmup..warmup + bars` of `market`.
fn paper_trades(
    market: &organism::market::Market,
    warmup: usize,
    bars: usize,
) -> Vec<organism::runner::journal::TradeRow> {
    let (cfg, specs) = one_book(atr_stops());
    let (mut paper, _) = organism::runner::paper::Session::start(
        "paper",
        cfg,
        specs,
        0.0,
        &upto(market, warmup - 1),
    );
    (warmup..warmup + bars)
        .flat_map(|t| trades(&paper.on_bar(market.candles.ts[t], &upto(market, t))))
        .collect()
}

/// Live stops rest on the exchange as trigger orders placed with the entry: an intrabar stop
/// fills on the bar the paper session (the backtest's engine) books it, at the trigger price
/// met at the exchange's touch; a crash after the stops were sent but before the bar was
/// journaled, and a later restart while they rest, neither lose nor duplicate them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stops_rest_on_the_exchange_and_fill_on_the_backtests_bar_through_restarts() {
    use organism::{
        execution::{ExitReason, Side},
        runner::{
            journal::{Row, TradeRow},
            paper::Session,
        },
    };
    let dir = scratch("stops");
    let db = dir.join("reg.db");
    let warmup = 100usize;
    let bars = 260usize;
    let (params, market) = btc(5, warmup + bars + 50);
    let expected = paper_trades(&market, warmup, bars);
    let stops = expected
        .iter()
        .filter(|t| t.exit_reason == ExitReason::StopLoss)
        .count();
    assert!(
        stops >= 3,
        "the market stops the strategy out: {expected:?}"
    );

    // Live, against the local exchange.
    let ex = rig::exchange(&params, market.candles.ts[warmup]).await;
    let mut conn = organism::store::open(&db).unwrap();
    let (cfg, specs) = one_book(atr_stops());
    let (mut live, rows) = Session::start("live", cfg, specs, 0.0, &upto(&market, warmup - 1));
    journal::append(&mut conn, "live", &rows, 0).unwrap();
    live.link(rig::executor(&ex, &db, false).await);
    let restore = |conn: &rusqlite::Connection, t: usize| {
        let (cfg, specs) = one_book(atr_stops());
        Session::restore(conn, "live", cfg, specs, &upto(&market, t))
            .unwrap()
            .expect("a session in the journal")
    };
    let mut got: Vec<TradeRow> = Vec::new();
    // Each stop-loss exit: its bar, its trigger level (the order's reference) and its fill.
    let mut stopped: Vec<(usize, f64, TradeRow)> = Vec::new();
    let (mut crashed, mut restarted) = (false, false);
    for t in warmup..warmup + bars {
        let ts = market.candles.ts[t];
        ex.set_now(ts + HOUR_MS);
        let mut rows = live.on_bar(ts, &upto(&market, t));
        let entered =
            rows.iter().any(|e| e.kind() == Kind::Fill) && live.net_positions()["BTC"] != 0.0;
        if entered && !crashed {
            // Killed after the entry and its stops were sent, before the bar was journaled:
            // the session restarts from the last bar and steps this one again.
            crashed = true;
            drop(live);
            live = restore(&conn, t - 1);
            live.link(rig::executor(&ex, &db, false).await);
            rows = live.on_bar(ts, &upto(&market, t));
        }
        journal::append(&mut conn, "live", &rows, 0).unwrap();
        let mut levels = BTreeMap::new();
        let mut fills = Vec::new();
        for e in &rows {
            match &e.row {
                Row::Order(o) => {
                    levels.insert(o.id, o.reference_price.0);
                }
                Row::Fill(f) => fills.push((f.id, f.price.0)),
                _ => {}
            }
        }
        for tr in trades(&rows) {
            if tr.exit_reason == ExitReason::StopLoss {
                let (id, _) = fills.iter().find(|f| f.1 == tr.exit_price.0).unwrap();
                stopped.push((t, levels[id], tr.clone()));
            }
            got.push(tr);
        }
        if crashed && !restarted && live.net_positions()["BTC"] != 0.0 && got.len() >= 2 {
            // A clean restart while a position's stops rest.
            restarted = true;
            drop(live);
            live = restore(&conn, t);
            live.link(rig::executor(&ex, &db, false).await);
        }
    }
    assert!(crashed && restarted);
    // The same trades, exits on the same bars for the same reasons.
    let key = |t: &TradeRow| (t.side, t.entry_bar, t.exit_bar, t.exit_reason);
    assert_eq!(
        got.iter().map(key).collect::<Vec<_>>(),
        expected.iter().map(key).collect::<Vec<_>>()
    );
    // A stop-loss fills at its trigger (tick-rounded: 5 significant figures, whole dollars
    // here), or the bar's open had it opened beyond it, met at the touch 0.01 % away.
    for (t, level, tr) in &stopped {
        assert_eq!(tr.exit_bar, *t);
        let open = market.candles.open[*t];
        let trigger = level.round();
        let at = match tr.side {
            Side::Long => trigger.min(open),
            Side::Short => trigger.max(open),
        };
        let touch = match tr.side {
            Side::Long => at * 0.9999,
            Side::Short => at * 1.0001,
        };
        assert!(
            (tr.exit_price.0 - touch.round()).abs() < 1e-9,
            "{tr:?}: level {level}, open {open}"
        );
    }
    // The backtest's engine fills the same stop at its level with its slippage (0.01 %):
    // the same price but for the exchange's tick.
    for ((_, _, live), paper) in stopped.iter().zip(
        expected
            .iter()
            .filter(|t| t.exit_reason == ExitReason::StopLoss),
    ) {
        assert!(
            (live.exit_price.0 - paper.exit_price.0).abs() <= 1.5,
            "{live:?} vs {paper:?}"
        );
    }
    let checked = stopped.len();
    assert!(checked >= 3, "{checked}");
    // Each resting order was placed once, through the crash and the restart.
    let placed = ex.trading_seen().placed_cloids;
    let unique: BTreeSet<&String> = placed.iter().collect();
    assert_eq!(unique.len(), placed.len(), "a cloid placed twice");
    // And the exchange holds what the books hold.
    let engine = live.net_positions()["BTC"];
    let exchange: f64 = ex.position(&account(), "BTC").to_string().parse().unwrap();
    assert!((engine - exchange).abs() < 1e-6, "{engine} vs {exchange}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// With the account's fill stream, orders' fills come back as events: the journal books the
/// exchange's own prices and fees without asking for the account's fills after any order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fills_come_back_as_events_on_the_accounts_stream() {
    use organism::runner::{journal::Row, paper::Session};
    let dir = scratch("streamed");
    let db = dir.join("reg.db");
    let warmup = 50usize;
    let (params, market) = btc(11, 200);
    let ex = rig::exchange(&params, market.candles.ts[warmup]).await;
    let (cfg, specs) = one_book(genome("ema_crossover", &[("fast", "2"), ("slow", "5")]));
    let (mut session, _) = Session::start("live", cfg, specs, 0.0, &upto(&market, warmup - 1));
    session.link(rig::executor(&ex, &db, true).await);
    let asked_before = ex.seen().info_requests.len();
    let (mut fees, mut fills) = (0.0, 0);
    for t in warmup..warmup + 60 {
        ex.set_now(market.candles.ts[t] + HOUR_MS);
        for e in session.on_bar(market.candles.ts[t], &upto(&market, t)) {
            if let Row::Fill(f) = &e.row {
                fees += f.fee.0;
                fills += 1;
            }
        }
    }
    assert!(fills >= 6, "{fills}");
    let asked: Vec<String> = ex.seen().info_requests[asked_before..]
        .iter()
        .map(|r| r["type"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        !asked.iter().any(|t| t == "userFills"),
        "no fill list asked for: {asked:?}"
    );
    // The exchange's fees, each its own (taker, 0.045 % of the notional).
    let on_exchange: f64 = ex
        .fills(&account())
        .iter()
        .map(|f| f["fee"].as_str().unwrap().parse::<f64>().unwrap())
        .sum();
    assert!(on_exchange > 0.0);
    assert!((fees - on_exchange).abs() < 1e-6, "{fees} vs {on_exchange}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Resting stops cancelled behind the session's back (by hand, or by the dead-man's switch
/// while the runner was down): the book notices at the next close and watches each bar's
/// range for them again, so its exits still fall on the paper session's bars; the next entry
/// rests new ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stops_cancelled_behind_the_sessions_back_are_watched_by_the_session() {
    use organism::runner::{journal::TradeRow, paper::Session};
    let dir = scratch("stops-gone");
    let db = dir.join("reg.db");
    let warmup = 100usize;
    let bars = 200usize;
    let (params, market) = btc(5, warmup + bars + 50);
    let expected = paper_trades(&market, warmup, bars);
    let ex = rig::exchange(&params, market.candles.ts[warmup]).await;
    let (cfg, specs) = one_book(atr_stops());
    let (mut live, _) = Session::start("live", cfg, specs, 0.0, &upto(&market, warmup - 1));
    live.link(rig::executor(&ex, &db, false).await);
    let other = ExchangeClient::new(
        Arc::new(InfoClient::new(&ex.http_url()).unwrap()),
        Signer::from_hex(KEY).unwrap(),
        None,
        None,
        false,
        Box::new(MemoryNonces::default()),
    );
    let (mut got, mut cancelled, mut rested_again) = (Vec::new(), 0, false);
    for t in warmup..warmup + bars {
        ex.set_now(market.candles.ts[t] + HOUR_MS);
        got.extend(trades(
            &live.on_bar(market.candles.ts[t], &upto(&market, t)),
        ));
        let open = other.open_orders().await.unwrap();
        if cancelled == 0 && !open.is_empty() {
            // Someone cancels the position's stop-loss and take-profit.
            for o in &open {
                other.cancel(0, o.oid).await.unwrap();
            }
            cancelled = open.len();
        } else if cancelled > 0 && got.len() >= 2 && open.len() == 2 {
            rested_again = true;
            break;
        }
    }
    assert_eq!(cancelled, 2, "the stop-loss and the take-profit rested");
    assert!(rested_again, "a later entry rests new stops");
    let key = |t: &TradeRow| (t.side, t.entry_bar, t.exit_bar, t.exit_reason);
    assert_eq!(
        got.iter().map(key).collect::<Vec<_>>(),
        expected[..got.len()].iter().map(key).collect::<Vec<_>>()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
