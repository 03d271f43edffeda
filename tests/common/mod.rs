//! Helpers shared by every test binary: scratch folders, the `organism` binary run with a
//! deadline, spawned children held in a guard that kills them on drop, and the runner tests'
//! driver (a runner process driven against the local exchange's accelerated bars and killed with
//! SIGKILL at random instants).
//!
//! No test waits on a child process without a deadline: [`output`] and [`Proc::wait`] kill the
//! child and fail with its stderr when it runs past one, and [`Proc::wait_for`] fails as soon as
//! the child exits before the awaited condition holds.

#![allow(dead_code)]
// Deadlines on real processes are wall time: the one thing these helpers must read a clock for.
#![allow(clippy::disallowed_methods)]

use std::{
    io::Read,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    sync::{Arc, Mutex},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// How long a one-shot `organism` command may run before the test fails (the slowest in the
/// suite takes well under a minute on 2 cores; this is for a hang, not for speed).
pub const DEADLINE: Duration = Duration::from_secs(600);

/// What a pipe has delivered so far, read on a thread so that a chatty child never blocks.
struct Drain {
    buf: Arc<Mutex<Vec<u8>>>,
    thread: Option<JoinHandle<()>>,
}

impl Drain {
    fn new(mut pipe: impl Read + Send + 'static) -> Self {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let thread = std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        Self {
            buf,
            thread: Some(thread),
        }
    }

    fn so_far(&self) -> Vec<u8> {
        self.buf.lock().unwrap().clone()
    }

    /// Everything, once the child has exited (the pipe then closes).
    fn finish(mut self) -> Vec<u8> {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.so_far()
    }
}

/// A spawned child, killed (SIGKILL) and reaped when dropped, so a failing assertion never
/// leaves an orphan behind. Its piped stdout and stderr are drained as it runs; a child whose
/// stderr goes to a file names that file with [`Proc::log`], and failures quote it.
pub struct Proc {
    what: String,
    child: Option<Child>,
    stdout: Option<Drain>,
    stderr: Option<Drain>,
    log: Option<PathBuf>,
}

impl Proc {
    /// Spawns `cmd` (named `what` in failures).
    pub fn spawn(what: &str, cmd: &mut Command) -> Self {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
        Self::new(what, child)
    }

    /// Holds an already spawned child; its remaining pipes are drained from here on.
    pub fn new(what: &str, mut child: Child) -> Self {
        let stdout = child.stdout.take().map(Drain::new);
        let stderr = child.stderr.take().map(Drain::new);
        Self {
            what: what.to_string(),
            child: Some(child),
            stdout,
            stderr,
            log: None,
        }
    }

    /// The file the child's stderr goes to.
    pub fn log(mut self, path: &Path) -> Self {
        self.log = Some(path.to_path_buf());
        self
    }

    pub fn id(&self) -> u32 {
        self.child.as_ref().expect("a live child").id()
    }

    /// Its stdout so far (piped).
    pub fn stdout(&self) -> String {
        self.stdout
            .as_ref()
            .map(|d| String::from_utf8_lossy(&d.so_far()).into_owned())
            .unwrap_or_default()
    }

    /// Its stderr so far (piped, or the log file's contents).
    pub fn stderr(&self) -> String {
        let mut text = self
            .stderr
            .as_ref()
            .map(|d| String::from_utf8_lossy(&d.so_far()).into_owned())
            .unwrap_or_default();
        if let Some(log) = &self.log {
            text.push_str(&std::fs::read_to_string(log).unwrap_or_default());
        }
        text
    }

    /// Its exit status, if it has exited.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .expect("a live child")
            .try_wait()
            .unwrap_or_else(|e| panic!("{}: {e}", self.what))
    }

    /// Kills the child and fails the test with `why` and its stderr.
    fn fail(&mut self, why: &str) -> ! {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        panic!("{} {why}; its stderr:\n{}", self.what, self.stderr());
    }

    /// Waits up to `deadline` for the child to exit; returns its status and output. Past the
    /// deadline the child is killed and the test fails with its stderr.
    pub fn wait(mut self, deadline: Duration) -> Output {
        let start = Instant::now();
        let status = loop {
            if let Some(st) = self.try_exit() {
                break st;
            }
            if start.elapsed() > deadline {
                self.fail(&format!("did not finish within {deadline:?}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        self.child = None;
        let stdout = self.stdout.take().map(Drain::finish).unwrap_or_default();
        let stderr = self.stderr.take().map(Drain::finish).unwrap_or_default();
        Output {
            status,
            stdout,
            stderr,
        }
    }

    /// Waits (async) up to `deadline` seconds for the child to exit successfully.
    pub async fn exit_ok(mut self, deadline: Duration) {
        let start = Instant::now();
        loop {
            if let Some(st) = self.try_exit() {
                if !st.success() {
                    self.fail(&format!("failed ({st})"));
                }
                self.child = None;
                return;
            }
            if start.elapsed() > deadline {
                self.fail(&format!("did not finish within {deadline:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls `ready` until it holds. Fails the test if the child exits first, or at the deadline.
    pub fn wait_for(&mut self, what: &str, deadline: Duration, mut ready: impl FnMut() -> bool) {
        let start = Instant::now();
        while !ready() {
            self.check_waiting(what, start, deadline);
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// [`Proc::wait_for`] inside an async test.
    pub async fn wait_for_async(
        &mut self,
        what: &str,
        deadline: Duration,
        mut ready: impl FnMut() -> bool,
    ) {
        let start = Instant::now();
        while !ready() {
            self.check_waiting(what, start, deadline);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn check_waiting(&mut self, what: &str, start: Instant, deadline: Duration) {
        if let Some(st) = self.try_exit() {
            self.fail(&format!("exited ({st}) before {what}"));
        }
        if start.elapsed() > deadline {
            self.fail(&format!("did not reach {what} within {deadline:?}"));
        }
    }

    /// SIGKILL and reap.
    pub fn kill(mut self) -> Option<ExitStatus> {
        let mut c = self.child.take()?;
        let _ = c.kill();
        c.wait().ok()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs `cmd` to its end (stdin closed, stdout and stderr captured) within [`DEADLINE`].
pub fn output(cmd: &mut Command) -> Output {
    let what = format!("{:?}", cmd.get_args().collect::<Vec<_>>());
    Proc::spawn(
        &what,
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .wait(DEADLINE)
}

/// `organism args` to its end within [`DEADLINE`].
pub fn organism(args: &[&str]) -> Output {
    output(Command::new(bin()).args(args))
}

/// `organism args` with `RAYON_NUM_THREADS` set when `threads` is.
pub fn organism_threads(args: &[&str], threads: Option<&str>) -> Output {
    let mut c = Command::new(bin());
    c.args(args);
    if let Some(t) = threads {
        c.env("RAYON_NUM_THREADS", t);
    }
    output(&mut c)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

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

/// How long a runner may take to start (load, warm up, write its session row).
pub const START: Duration = Duration::from_secs(180);

/// Drives a runner through `bars` accelerated bars, `step` apart, with `kills` SIGKILLs at
/// seeded random instants, each followed by `respawn()`: a sixth of them during start-up
/// (until `is_started()`), the rest between and inside bars. Returns the last runner. A runner
/// that exits on its own during start-up, or does not start within [`START`], fails the test.
#[allow(clippy::too_many_arguments)]
pub async fn drive(
    mut child: Proc,
    rng: &mut ChaCha8Rng,
    kills: usize,
    bars: i64,
    step: Duration,
    is_started: impl Fn() -> bool,
    advance: impl Fn(),
    respawn: impl Fn() -> Proc,
) -> Proc {
    let mut killed = 0;
    // Kills during start-up and warm-up (the exchange's clock stands still until the session
    // has started, so every restart warms up on the same bars).
    let start = Instant::now();
    while !is_started() {
        child.check_waiting("its session started", start, START);
        if killed < kills / 6 {
            tokio::time::sleep(Duration::from_millis(rng.gen_range(0..400))).await;
            child.kill();
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
            child.kill();
            child = respawn();
            killed += 1;
        }
    }
    while killed < kills {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..300))).await;
        if child.try_exit().is_some() {
            break;
        }
        child.kill();
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
pub fn scratch(prefix: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("organism-{prefix}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Asserts that a command succeeded (else shows its exit code and output) and returns stdout.
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}: {}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs `organism args`, asserts success and returns stdout.
pub fn run_ok(args: &[&str]) -> String {
    ok(&organism(args))
}

/// `data generate --coins` with `cfg` into `out`: what it printed (the planted factor's Sharpe).
pub fn generate_coins(cfg: &Path, out: &Path) -> String {
    run_ok(&[
        "data",
        "generate",
        "--config",
        s(cfg),
        "--coins",
        "--out",
        s(out),
    ])
}

/// The planted-edge market: three years of BTC and ETH hours with a trend to find (the
/// `[synthetic]` section of a config).
pub const PLANTED_MARKET: &str = r#"
[synthetic]
seed = 10
bars = 26280
coins = ["BTC", "ETH"]
annual_vol = [0.5, 0.7]
start_price = [42000.0, 2300.0]
trend_edge = 0.25
"#;

/// Writes `dir/<file>`: the planted-edge market, a small evolution into `dir/pop`, the registry
/// `dir/reg.db`, then `rest`; runs `evolve` and `promote` on it (the same strategies each time:
/// both are deterministic). Returns the config's path and text.
pub fn promoted(dir: &Path, file: &str, rest: &str) -> (PathBuf, String) {
    let cfg = dir.join(file);
    let text = format!(
        r#"{PLANTED_MARKET}
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

/// The equity of an equity CSV's last row (`ts,equity`).
pub fn last_equity(csv: &str) -> f64 {
    csv.lines()
        .last()
        .and_then(|l| l.split(',').nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no equity in the last row of: {csv}"))
}
pub mod hooks;
