//! `organism dashboard` in a real browser: headless Chromium loads every page of a dashboard
//! over a registry with a planted-edge run's promotions and a paper replay's journal, and the
//! test reads the DOM the browser built (the pages' scripts run: what they write is not in the
//! server's HTML). Without Chromium (CI installs Debian's) the test says so and skips. A
//! dashboard bound beyond loopback refuses to start without a token and asks for it after.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

mod common;

use common::{promoted, run_ok, s, Proc};

/// The DOM of `url` after Chromium ran its scripts, or `None` without Chromium.
fn dom(url: &str) -> Option<String> {
    let browser = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })?;
    let out = Proc::spawn(
        "chromium",
        Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--virtual-time-budget=3000",
                "--dump-dom",
                url,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .wait(Duration::from_secs(120));
    assert!(
        out.status.success(),
        "{url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Times `needle` occurs in `hay`.
fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

/// The text of the element with `id` (up to its first tag's end), for an assertion message.
fn element<'a>(dom: &'a str, id: &str) -> &'a str {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let start = dom[at..].find('>').map_or(at, |k| at + k + 1);
    let end = dom[start..].find('<').map_or(dom.len(), |k| start + k);
    &dom[start..end]
}

fn dashboard(reg: &Path, root: &Path, extra: &[&str], token: Option<&str>) -> Proc {
    let mut cmd = Command::new(common::bin());
    cmd.args([
        "dashboard",
        "--registry",
        s(reg),
        "--root",
        s(root),
        "--port",
        "0",
    ])
    .args(extra)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    match token {
        Some(t) => cmd.env("ORGANISM_DASHBOARD_TOKEN", t),
        None => cmd.env_remove("ORGANISM_DASHBOARD_TOKEN"),
    };
    Proc::spawn("dashboard", &mut cmd)
}

/// Its address, once it prints it.
fn address(p: &mut Proc) -> String {
    #[allow(clippy::disallowed_methods)] // a deadline is wall time
    let start = std::time::Instant::now();
    while !p.stdout().contains("dashboard: http://") {
        assert!(
            p.try_exit().is_none(),
            "the dashboard exited: {}",
            p.stderr()
        );
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no address printed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = p.stdout();
    let at = out.find("http://").unwrap();
    let url = out[at..].split_whitespace().next().unwrap();
    url.trim_end_matches("?token=…")
        .trim_end_matches('/')
        .to_string()
}

#[test]
fn every_page_renders_in_a_real_browser_and_a_token_guards_the_network() {
    let d = common::scratch("dashboard", "pages");
    let (cfg, _) = promoted(&d, "dash.toml", "");
    let reg = d.join("reg.db");
    // A paper replay's journal, kept in the registry's database.
    let list = run_ok(&["strategies", "list", "--config", s(&cfg), "--json"]);
    let list: serde_json::Value = serde_json::from_str(list.trim()).unwrap();
    let id = list[0]["id"].as_str().unwrap().to_string();
    let replay = run_ok(&[
        "paper",
        "replay",
        "--config",
        s(&cfg),
        "--strategy",
        &id,
        "--journal",
        s(&reg),
        "--json",
    ]);
    let replay: serde_json::Value = serde_json::from_str(replay.trim()).unwrap();
    let account = replay["account"].as_str().unwrap().to_string();
    let bars = replay["bars"].as_u64().unwrap() as usize;
    let before = std::fs::read(&reg).unwrap();

    let mut server = dashboard(&reg, &d, &[], None);
    let base = address(&mut server);
    let Some(index) = dom(&format!("{base}/")) else {
        // CI installs Debian's Chromium and sets ORGANISM_REQUIRE_CHROMIUM: there it must run.
        assert!(
            std::env::var_os("ORGANISM_REQUIRE_CHROMIUM").is_none(),
            "ORGANISM_REQUIRE_CHROMIUM is set but no Chromium is on PATH"
        );
        eprintln!("SKIPPED: no Chromium (chromium, chromium-browser or google-chrome) on PATH; CI installs Debian's");
        return;
    };
    assert!(index.contains(r#"id="index""#), "{index}");

    // Runs: the planted run's folder, its history chart and its front.
    let runs = dom(&format!("{base}/runs")).unwrap();
    assert_eq!(count(&runs, r#"<tr class="run">"#), 1, "{runs}");
    assert!(runs.contains(r#"href="/run?path=pop""#), "{runs}");
    let run = dom(&format!("{base}/run?path=pop")).unwrap();
    let history = std::fs::read_to_string(d.join("pop/history.csv")).unwrap();
    let generations = history.lines().count() - 1;
    // Two series, a point per generation each (41 ≤ 150 points: none thinned).
    assert_eq!(
        count(&run, r#"<circle class="pt""#),
        2 * generations,
        "{run}"
    );
    let front = std::fs::read_to_string(d.join("pop/front.csv")).unwrap();
    let members = front.lines().count() - 1;
    assert!(members >= 1);
    assert_eq!(count(&run, r#"<circle class="train""#), members);
    assert_eq!(count(&run, r#"<circle class="validation""#), members);
    assert_eq!(count(&run, r#"<line class="link""#), members);
    assert_eq!(count(&run, r#"<tr class="member""#), members);
    // Written by the page's script in the browser, not by the server.
    let summary = element(&run, "front-summary");
    assert!(
        summary.starts_with(&format!("{members} members on the first front; ")),
        "{summary}"
    );
    // Hover values: each point's tooltip.
    assert!(run.contains("training: Sharpe "), "{run}");

    // Strategies: every promoted one, its gauntlet grid and lifecycle.
    let strategies = dom(&format!("{base}/strategies")).unwrap();
    assert_eq!(
        count(&strategies, r#"<tr class="strategy""#),
        list.as_array().unwrap().len()
    );
    let one = dom(&format!("{base}/strategy?id={id}")).unwrap();
    assert!(count(&one, r#"<tr class="stage pass""#) >= 5, "{one}");
    assert_eq!(count(&one, r#"<tr class="stage fail""#), 0, "{one}");
    assert!(count(&one, r#"<tr class="change""#) >= 1, "{one}");
    assert!(count(&one, r#"<tr class="segment""#) >= 2, "{one}");

    // Sessions: the replay's, its equity (a point per bar), positions and events.
    let sessions = dom(&format!("{base}/sessions")).unwrap();
    assert!(sessions.contains(&format!(">{account}</a>")), "{sessions}");
    let session = dom(&format!("{base}/session?account={account}")).unwrap();
    let chart = &session[session.find(r#"id="equity-chart""#).unwrap()..];
    let chart = &chart[..chart.find("</svg>").unwrap()];
    // The start's mark and one per bar, thinned to every `step`-th (and the last) so that at
    // most 150 circles are drawn.
    let marks = bars + 1;
    let step = marks.div_ceil(150);
    let drawn = (0..marks)
        .filter(|i| i % step == 0 || i + 1 == marks)
        .count();
    assert_eq!(count(chart, r#"<circle class="pt""#), drawn);
    assert!(drawn <= 151);
    assert_eq!(count(&session, r#"<tr class="book">"#), 1, "{session}");
    assert!(count(&session, r#"<tr class="event">"#) >= 1);
    assert!(session.contains(r#"id="limits""#));
    let refresh = element(&session, "refresh");
    assert!(
        refresh.starts_with("refreshing every 10 s; loaded "),
        "{refresh}"
    );

    let reports = dom(&format!("{base}/reports")).unwrap();
    assert!(reports.contains(r#"id="reports""#));
    drop(server);
    // Read-only: the database is as it was.
    assert!(
        std::fs::read(&reg).unwrap() == before,
        "the dashboard wrote to the database"
    );

    // Beyond loopback: no token, no start; with one, asked for.
    let refused = dashboard(&reg, &d, &["--bind", "0.0.0.0"], None).wait(Duration::from_secs(30));
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("ORGANISM_DASHBOARD_TOKEN"));
    let mut guarded = dashboard(&reg, &d, &["--bind", "0.0.0.0"], Some("t0ken"));
    let base = address(&mut guarded).replace("0.0.0.0", "127.0.0.1");
    let denied = dom(&format!("{base}/runs")).unwrap();
    assert!(denied.contains("a token is required"), "{denied}");
    let allowed = dom(&format!("{base}/runs?token=t0ken")).unwrap();
    assert!(allowed.contains(r#"id="runs""#), "{allowed}");
    let _ = std::fs::remove_dir_all(&d);
}
