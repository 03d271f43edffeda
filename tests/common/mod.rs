//! Helpers shared by the end-to-end runner tests (`paper_run.rs`, `live.rs`): a runner process
//! driven against the local exchange's accelerated bars and killed with SIGKILL at random
//! instants.

#![allow(dead_code)]

use std::{
    path::Path,
    process::{Child, ExitStatus},
    time::Duration,
};

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Whether the journal in `reg` has a session of `account` (the warm-up is over).
pub fn started(reg: &Path, account: &str) -> bool {
    let Ok(c) =
        rusqlite::Connection::open_with_flags(reg, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return false;
    };
    c.query_row(
        "SELECT COUNT(*) FROM journal WHERE kind = 'session' AND account = ?1",
        [account],
        |r| r.get::<_, i64>(0),
    )
    .is_ok_and(|n| n > 0)
}

/// Waits up to `secs` for `child` to exit successfully (its stderr is in `log`).
pub async fn wait_exit(what: &str, child: &mut Child, secs: u64, log: &Path) {
    for _ in 0..secs * 20 {
        if let Some(st) = child.try_wait().unwrap() {
            assert!(
                st.success(),
                "{what} failed: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    panic!(
        "{what} did not finish: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// SIGKILL and wait.
pub fn kill(mut child: Child) -> Option<ExitStatus> {
    let _ = child.kill();
    child.wait().ok()
}

/// Drives a runner through `bars` accelerated bars, `step` apart, with `kills` SIGKILLs at
/// seeded random instants, each followed by `respawn()`: a sixth of them during start-up
/// (until `is_started()`), the rest between and inside bars. Returns the last runner.
#[allow(clippy::too_many_arguments)]
pub async fn drive(
    mut child: Child,
    rng: &mut ChaCha8Rng,
    kills: usize,
    bars: i64,
    step: Duration,
    is_started: impl Fn() -> bool,
    advance: impl Fn(),
    respawn: impl Fn() -> Child,
) -> Child {
    let mut killed = 0;
    // Kills during start-up and warm-up (the exchange's clock stands still until the session
    // has started, so every restart warms up on the same bars).
    while !is_started() {
        if killed < kills / 6 {
            tokio::time::sleep(Duration::from_millis(rng.gen_range(0..400))).await;
            kill(child);
            child = respawn();
            killed += 1;
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    for _ in 0..bars {
        advance();
        tokio::time::sleep(step).await;
        if killed < kills && rng.gen_bool(0.75) {
            let within = step.as_millis() as u64;
            tokio::time::sleep(Duration::from_millis(rng.gen_range(0..within.max(1)))).await;
            kill(child);
            child = respawn();
            killed += 1;
        }
    }
    while killed < kills {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..300))).await;
        if child.try_wait().unwrap().is_some() {
            break;
        }
        kill(child);
        child = respawn();
        killed += 1;
    }
    assert_eq!(killed, kills);
    child
}

/// The `organism` binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_organism")
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// An empty scratch folder `organism-<prefix>-<pid>-<name>` in the temp dir.
pub fn scratch(prefix: &str, name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("organism-{prefix}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `organism args`, asserts success and returns stdout.
pub fn run_ok(args: &[&str]) -> String {
    let o = std::process::Command::new(bin())
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "organism {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Writes `dir/<file>`: the planted-edge market, a small evolution into `dir/pop`, the registry
/// `dir/reg.db`, then `rest`; runs `evolve` and `promote` on it (the same strategies each time:
/// both are deterministic). Returns the config's path and text.
pub fn promoted(dir: &Path, file: &str, rest: &str) -> (std::path::PathBuf, String) {
    let cfg = dir.join(file);
    let text = format!(
        r#"
[synthetic]
seed = 10
bars = 26280
coins = ["BTC", "ETH"]
annual_vol = [0.5, 0.7]
start_price = [42000.0, 2300.0]
trend_edge = 0.25

[evolution]
seeds = ["ema_crossover", "donchian_breakout", "rsi_filter"]
population = 16
generations = 40
out = "{pop}"

[promotion]
nulls = 40
registry = "{reg}"
{rest}"#,
        pop = s(&dir.join("pop")),
        reg = s(&dir.join("reg.db")),
    );
    std::fs::write(&cfg, &text).unwrap();
    run_ok(&["evolve", "--config", s(&cfg), "-q"]);
    run_ok(&[
        "promote",
        "--config",
        s(&cfg),
        "--from",
        s(&dir.join("pop")),
    ]);
    (cfg, text)
}

/// The local exchange's market for a runner test: BTC and ETH, `warmup` bars of history before
/// `t0` (plus 20), and `bars` + 100 after.
pub fn exchange_params(
    t0: i64,
    warmup: i64,
    bars: i64,
) -> organism::market::synthetic::SyntheticParams {
    use organism::market::HOUR_MS;
    organism::market::synthetic::SyntheticParams {
        seed: 3,
        bars: (warmup + bars + 100) as usize,
        start_ms: t0 - (warmup + 20) * HOUR_MS,
        coins: vec!["BTC".into(), "ETH".into()],
        annual_vol: vec![0.9, 1.2],
        start_price: vec![42_000.0, 2_300.0],
        ..Default::default()
    }
}

/// The open of the bar two hours after the current one: ahead of the wall clock, so bars
/// close when the next one starts.
pub fn t0() -> i64 {
    use organism::clock::Clock as _;
    let now = organism::clock::WallClock.now_ms();
    let hour = organism::market::HOUR_MS;
    now.div_euclid(hour) * hour + 2 * hour
}
