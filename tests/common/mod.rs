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
