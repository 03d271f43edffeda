//! `organism dashboard`: a read-only web UI over the run folders under a root, the registry and
//! the paper / live journals. Pages are rendered on the server as HTML with inline SVG charts
//! (every point carries its values as a tooltip), a little inline script for what reacts in the
//! browser (the front's linked points, a session page that reloads itself), no CDN and no
//! network: it works offline.
//!
//! It opens the database read-only ([`crate::store::open_read_only`], a connection per
//! request) and reads nothing that holds a key. Bound to anything but a loopback address it
//! requires a token (the CLI takes it from the environment): `?token=…` once (a cookie keeps
//! it), or `Authorization: Bearer …`.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::{Path, PathBuf},
    sync::Arc,
};

use axum::{
    extract::State,
    http::{header, HeaderMap, StatusCode, Uri},
    response::{IntoResponse, Response},
    Router,
};

use crate::{
    market::format_ts,
    promotion::{
        registry::{Registry, Status},
        svg::esc,
    },
    runner::journal::{self, BreachRow, EquityRow, Kind, Row, PORTFOLIO},
};

/// What the dashboard shows and who may see it.
#[derive(Debug, Clone)]
pub struct Site {
    /// Run folders and reports are found under it.
    pub root: PathBuf,
    /// The registry and journal.
    pub registry: PathBuf,
    /// Required of every request when set.
    pub token: Option<String>,
}

/// The dashboard's routes (one handler: every page checks the token the same way).
pub fn router(site: Arc<Site>) -> Router {
    Router::new().fallback(handle).with_state(site)
}

const TOKEN_COOKIE: &str = "organism_token";

fn query(uri: &Uri) -> BTreeMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (!k.is_empty()).then(|| (decode(k), decode(v)))
        })
        .collect()
}

/// `%XX` and `+` decoded.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `s` for a URL's query.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_./~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Whether the request carries the token (always, without one).
fn authorized(site: &Site, headers: &HeaderMap, q: &BTreeMap<String, String>) -> bool {
    let Some(token) = &site.token else {
        return true;
    };
    let same = |x: &str| {
        x.len() == token.len()
            && x.bytes()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let cookie = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| {
            c.split(';')
                .filter_map(|kv| kv.trim().split_once('='))
                .find(|(k, _)| *k == TOKEN_COOKIE)
                .map(|(_, v)| v.to_string())
        });
    q.get("token").is_some_and(|t| same(t))
        || bearer.is_some_and(same)
        || cookie.is_some_and(|c| same(&c))
}

async fn handle(State(site): State<Arc<Site>>, uri: Uri, headers: HeaderMap) -> Response {
    let q = query(&uri);
    if !authorized(&site, &headers, &q) {
        return (
            StatusCode::UNAUTHORIZED,
            "a token is required: open the dashboard's address with ?token=… once",
        )
            .into_response();
    }
    let page = match uri.path() {
        "/" => Ok(index(&site)),
        "/runs" => Ok(runs(&site)),
        "/run" => run(&site, q.get("path").map_or("", String::as_str)),
        "/strategies" => strategies(&site),
        "/strategy" => strategy(&site, q.get("id").map_or("", String::as_str)),
        "/sessions" => sessions(&site),
        "/session" => session(&site, q.get("account").map_or("", String::as_str)),
        "/reports" => Ok(reports(&site)),
        "/report" => {
            return report(&site, q.get("path").map_or("", String::as_str));
        }
        _ => Err((StatusCode::NOT_FOUND, "no such page".to_string())),
    };
    let mut resp = match page {
        Ok(html) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response(),
        Err((status, message)) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            shell("error", &format!(r#"<p id="error">{}</p>"#, esc(&message))),
        )
            .into_response(),
    };
    if let (Some(t), Some(_)) = (&site.token, q.get("token")) {
        if let Ok(v) = format!("{TOKEN_COOKIE}={t}; HttpOnly; SameSite=Strict; Path=/").parse() {
            resp.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    resp
}

type Page = Result<String, (StatusCode, String)>;

fn bad(message: impl Into<String>) -> (StatusCode, String) {
    (StatusCode::NOT_FOUND, message.into())
}

fn server(e: impl std::fmt::Display) -> (StatusCode, String) {
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:1.5em;color:#1f2328}\
nav a{margin-right:1em}table{border-collapse:collapse;margin:.5em 0}\
td,th{border-bottom:1px solid #d0d7de;padding:3px 8px;text-align:left}\
th{background:#f6f8fa}.num{text-align:right;font-variant-numeric:tabular-nums}\
svg{background:#fff;border:1px solid #d0d7de;margin:.5em 0}.hl{background:#fff8c5}\
circle.hl{stroke:#000;stroke-width:2}.pass{color:#1a7f37}.fail{color:#cf222e}";

/// A whole page: the navigation, `body`, and the script every page shares (hovering a member
/// anywhere highlights it everywhere).
fn shell(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>{t} · organism</title><style>{STYLE}</style></head><body>
<nav><a href="/">organism</a><a href="/runs">runs</a><a href="/strategies">strategies</a><a href="/sessions">sessions</a><a href="/reports">reports</a></nav>
<h1>{t}</h1>
{body}
<script>
document.querySelectorAll('[data-member]').forEach(function (el) {{
  el.addEventListener('mouseenter', function () {{
    document.querySelectorAll('[data-member="' + el.dataset.member + '"]').forEach(function (x) {{ x.classList.add('hl'); }});
  }});
  el.addEventListener('mouseleave', function () {{
    document.querySelectorAll('.hl').forEach(function (x) {{ x.classList.remove('hl'); }});
  }});
}});
</script></body></html>"#,
        t = esc(title)
    )
}

fn index(site: &Site) -> String {
    let body = format!(
        r#"<ul id="index"><li><a href="/runs">runs</a> under <code>{}</code></li>
<li><a href="/strategies">strategies</a>, <a href="/sessions">paper and live sessions</a> in <code>{}</code> (read-only)</li>
<li><a href="/reports">reports</a></li></ul>"#,
        esc(&site.root.display().to_string()),
        esc(&site.registry.display().to_string())
    );
    shell("dashboard", &body)
}

/// Folders under `root` (at most 4 deep, hidden ones and `target` left out) for which `keep`
/// says yes, relative to it.
fn walk(root: &Path, keep: &dyn Fn(&Path) -> bool, files: bool) -> Vec<PathBuf> {
    fn go(
        dir: &Path,
        root: &Path,
        depth: usize,
        keep: &dyn Fn(&Path) -> bool,
        files: bool,
        out: &mut Vec<PathBuf>,
    ) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            if name
                .as_deref()
                .is_none_or(|n| n.starts_with('.') || n == "target")
            {
                continue;
            }
            if p.is_dir() {
                if !files && keep(&p) {
                    out.push(p.strip_prefix(root).unwrap_or(&p).to_path_buf());
                }
                if depth < 4 {
                    go(&p, root, depth + 1, keep, files, out);
                }
            } else if files && keep(&p) {
                out.push(p.strip_prefix(root).unwrap_or(&p).to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    if !files && keep(root) {
        out.push(PathBuf::from("."));
    }
    go(root, root, 1, keep, files, &mut out);
    out
}

/// A CSV line's fields (double quotes around a field that holds commas).
fn fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// A CSV file as rows of named fields.
fn csv_rows(path: &Path) -> Vec<BTreeMap<String, String>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut lines = text.lines();
    let Some(head) = lines.next() else {
        return Vec::new();
    };
    let names = fields(head);
    lines
        .map(|l| names.iter().cloned().zip(fields(l)).collect())
        .collect()
}

fn num(r: &BTreeMap<String, String>, k: &str) -> f64 {
    r.get(k)
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(f64::NAN)
}

fn runs(site: &Site) -> String {
    let found = walk(&site.root, &|p| p.join("history.csv").is_file(), false);
    let mut body = String::from(
        r#"<table id="runs"><tr><th>run folder</th><th class="num">generations</th><th class="num">first front</th><th class="num">best validation Sharpe</th></tr>"#,
    );
    for rel in &found {
        let dir = site.root.join(rel);
        let gens = csv_rows(&dir.join("history.csv")).len();
        let front = csv_rows(&dir.join("front.csv"));
        let best = front
            .iter()
            .map(|r| num(r, "validation_sharpe"))
            .filter(|x| x.is_finite())
            .fold(f64::NAN, f64::max);
        let rel = rel.display().to_string();
        let _ = write!(
            body,
            r#"<tr class="run"><td><a href="/run?path={}">{}</a></td><td class="num">{gens}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
            encode(&rel),
            esc(&rel),
            front.len(),
            fmt2(best)
        );
    }
    body.push_str("</table>");
    if found.is_empty() {
        body.push_str("<p>No run folders (with a history.csv) under the root.</p>");
    }
    shell("runs", &body)
}

fn fmt2(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2}")
    } else {
        "–".into()
    }
}

/// A folder or file under the root named by a page's `path`, refused when it leaves the root.
fn under(site: &Site, rel: &str) -> Result<PathBuf, (StatusCode, String)> {
    let p = Path::new(rel);
    if rel.is_empty()
        || p.is_absolute()
        || p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(bad(format!("`{rel}` is not a path under the root")));
    }
    Ok(site.root.join(p))
}

/// A chart's series: its name, colour and points.
type Series<'a> = (String, &'a str, Vec<(f64, f64)>);

/// A line chart as `<svg id=…>`: each series a polyline, and up to 150 of its points as circles
/// whose tooltip gives the values.
fn line_chart(id: &str, title: &str, series: &[Series<'_>], time: bool) -> String {
    let (w, h, l, r, t, b) = (820.0, 260.0, 60.0, 20.0, 28.0, 30.0);
    let pts = series
        .iter()
        .flat_map(|s| s.2.iter())
        .filter(|p| p.0.is_finite() && p.1.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for p in pts {
        x0 = x0.min(p.0);
        x1 = x1.max(p.0);
        y0 = y0.min(p.1);
        y1 = y1.max(p.1);
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x1 == x0 {
        x1 = x0 + 1.0;
    }
    if y1 == y0 {
        y1 = y0 + 1.0;
    }
    let px = |x: f64| l + (x - x0) / (x1 - x0) * (w - l - r);
    let py = |y: f64| h - b - (y - y0) / (y1 - y0) * (h - t - b);
    let label = |x: f64| {
        if time {
            format_ts(x as i64)
        } else {
            format!("{x}")
        }
    };
    let mut s = format!(
        r##"<svg id="{id}" class="chart" width="{w}" height="{h}" viewBox="0 0 {w} {h}" xmlns="http://www.w3.org/2000/svg"><text x="{l}" y="18" font-weight="bold">{}</text><line x1="{l}" y1="{}" x2="{}" y2="{}" stroke="#888"/><line x1="{l}" y1="{t}" x2="{l}" y2="{}" stroke="#888"/><text x="4" y="{}" font-size="11">{}</text><text x="4" y="{}" font-size="11">{}</text><text x="{l}" y="{}" font-size="11">{}</text><text x="{}" y="{}" font-size="11" text-anchor="end">{}</text>"##,
        esc(title),
        h - b,
        w - r,
        h - b,
        h - b,
        t + 10.0,
        fmt2(y1),
        h - b,
        fmt2(y0),
        h - 8.0,
        esc(&label(x0)),
        w - r,
        h - 8.0,
        esc(&label(x1)),
    );
    for (k, (name, color, p)) in series.iter().enumerate() {
        let line: Vec<String> = p
            .iter()
            .filter(|q| q.0.is_finite() && q.1.is_finite())
            .map(|q| format!("{:.1},{:.1}", px(q.0), py(q.1)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline class="series" data-series="{}" fill="none" stroke="{color}" stroke-width="1.3" points="{}"/><text x="{}" y="18" fill="{color}" font-size="12">{}</text>"#,
            esc(name),
            line.join(" "),
            w - r - 160.0 * (series.len() - k) as f64 + 20.0,
            esc(name)
        );
        let step = p.len().div_ceil(150).max(1);
        for (i, q) in p.iter().enumerate() {
            if (i % step != 0 && i + 1 != p.len()) || !q.0.is_finite() || !q.1.is_finite() {
                continue;
            }
            let _ = write!(
                s,
                r#"<circle class="pt" cx="{:.1}" cy="{:.1}" r="2.5" fill="{color}" data-x="{}" data-y="{}"><title>{}: {} at {}</title></circle>"#,
                px(q.0),
                py(q.1),
                q.0,
                q.1,
                esc(name),
                q.1,
                esc(&label(q.0))
            );
        }
    }
    s.push_str("</svg>");
    s
}

fn run(site: &Site, rel: &str) -> Page {
    let dir = under(site, rel)?;
    let history = csv_rows(&dir.join("history.csv"));
    if history.is_empty() {
        return Err(bad(format!("{rel}: no history.csv")));
    }
    let front = csv_rows(&dir.join("front.csv"));
    let series = |k: &str| -> Vec<(f64, f64)> {
        history
            .iter()
            .map(|r| (num(r, "generation"), num(r, k)))
            .collect()
    };
    let mut body = line_chart(
        "history-chart",
        "best training Sharpe and hypervolume by generation",
        &[
            ("best Sharpe".into(), "#0969da", series("best_sharpe")),
            ("hypervolume".into(), "#8250df", series("hypervolume")),
        ],
        false,
    );
    // The front: each member's training point (filled) and validation point (hollow), joined.
    let (w, h, l, r, t, b) = (820.0, 360.0, 60.0, 20.0, 28.0, 36.0);
    let xs: Vec<f64> = front
        .iter()
        .flat_map(|m| [num(m, "train_sharpe"), num(m, "validation_sharpe")])
        .filter(|x| x.is_finite())
        .collect();
    let ys: Vec<f64> = front
        .iter()
        .flat_map(|m| {
            [
                num(m, "train_max_drawdown"),
                num(m, "validation_max_drawdown"),
            ]
        })
        .filter(|x| x.is_finite())
        .collect();
    let span = |v: &[f64]| {
        let lo = v.iter().copied().fold(f64::MAX, f64::min);
        let hi = v.iter().copied().fold(f64::MIN, f64::max);
        if lo > hi {
            (0.0, 1.0)
        } else if hi == lo {
            (lo - 0.5, hi + 0.5)
        } else {
            (lo, hi)
        }
    };
    let ((x0, x1), (y0, y1)) = (span(&xs), span(&ys));
    let px = |x: f64| l + (x - x0) / (x1 - x0) * (w - l - r);
    let py = |y: f64| h - b - (y - y0) / (y1 - y0) * (h - t - b);
    let _ = write!(
        body,
        r##"<p id="front-summary"></p><svg id="front-scatter" class="chart" width="{w}" height="{h}" viewBox="0 0 {w} {h}" xmlns="http://www.w3.org/2000/svg"><text x="{l}" y="18" font-weight="bold">first front: Sharpe (x) and max drawdown (y), training ● and validation ○</text><text x="{l}" y="{}" font-size="11">Sharpe {} … {}</text><text x="4" y="{}" font-size="11">drawdown {} … {}</text>"##,
        h - 8.0,
        fmt2(x0),
        fmt2(x1),
        t + 10.0,
        fmt2(y0),
        fmt2(y1)
    );
    let mut data = Vec::new();
    for m in &front {
        let id = m.get("id").cloned().unwrap_or_default();
        let (tx, ty) = (num(m, "train_sharpe"), num(m, "train_max_drawdown"));
        let (vx, vy) = (
            num(m, "validation_sharpe"),
            num(m, "validation_max_drawdown"),
        );
        data.push(serde_json::json!({"id": id, "t": tx, "v": vx}));
        if ![tx, ty, vx, vy].iter().all(|x| x.is_finite()) {
            continue;
        }
        let e = esc(&id);
        let _ = write!(
            body,
            r##"<line class="link" data-member="{e}" x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#afb8c1"/><circle class="train" data-member="{e}" cx="{:.1}" cy="{:.1}" r="4" fill="#0969da"><title>{e} training: Sharpe {tx:.3}, max drawdown {ty:.3}</title></circle><circle class="validation" data-member="{e}" cx="{:.1}" cy="{:.1}" r="4" fill="#fff" stroke="#0969da"><title>{e} validation: Sharpe {vx:.3}, max drawdown {vy:.3}</title></circle><text class="label" x="{:.1}" y="{:.1}" font-size="10">{e}</text>"##,
            px(tx),
            py(ty),
            px(vx),
            py(vy),
            px(tx),
            py(ty),
            px(vx),
            py(vy),
            px(vx) + 5.0,
            py(vy) - 5.0
        );
    }
    body.push_str("</svg>");
    let _ = write!(
        body,
        r#"<script type="application/json" id="front-data">{}</script>
<script>
var front = JSON.parse(document.getElementById('front-data').textContent);
var better = front.filter(function (m) {{ return m.v > m.t; }}).length;
document.getElementById('front-summary').textContent = front.length + ' members on the first front; ' + better + ' did better on validation than on training.';
</script>"#,
        serde_json::Value::Array(data)
            .to_string()
            .replace("</", "<\\/")
    );
    body.push_str(r#"<table id="ranked"><tr><th>rank</th><th>member</th><th>seed</th><th>genes / program</th><th class="num">train Sharpe</th><th class="num">validation Sharpe</th><th class="num">validation drawdown</th><th class="num">validation trades</th></tr>"#);
    for (k, m) in front.iter().enumerate() {
        let id = m.get("id").cloned().unwrap_or_default();
        let what = m
            .get("program")
            .filter(|p| !p.is_empty())
            .or(m.get("genes"))
            .cloned()
            .unwrap_or_default();
        let _ = write!(
            body,
            r#"<tr class="member" data-member="{e}" id="member-{e}"><td class="num">{}</td><td>{e}</td><td>{}</td><td><code>{}</code></td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
            k + 1,
            esc(m.get("seed").map_or("", String::as_str)),
            esc(&what),
            fmt2(num(m, "train_sharpe")),
            fmt2(num(m, "validation_sharpe")),
            fmt2(num(m, "validation_max_drawdown")),
            m.get("validation_trades").map_or("", String::as_str),
            e = esc(&id)
        );
    }
    body.push_str("</table><p>Training Sharpe is not evidence: the validation points are the ones to read, and the holdout stays sealed until `organism promote`.</p>");
    Ok(shell(&format!("run {rel}"), &body))
}

fn registry(site: &Site) -> Result<Registry, (StatusCode, String)> {
    Registry::open_read_only(&site.registry).map_err(server)
}

fn strategies(site: &Site) -> Page {
    let reg = registry(site)?;
    let mut all = reg.list(None).map_err(server)?;
    all.sort_by(|a, b| a.id.cmp(&b.id));
    let mut body = String::from(
        r#"<table id="strategies"><tr><th>strategy</th><th>status</th><th>verdict</th><th class="num">weight</th><th class="num">validation Sharpe</th><th class="num">holdout Sharpe</th></tr>"#,
    );
    for s in &all {
        let _ = write!(
            body,
            r#"<tr class="strategy" data-status="{st}"><td><a href="/strategy?id={}">{}</a></td><td>{st}</td><td>{}</td><td class="num">{:.3}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
            encode(&s.id),
            esc(&s.id),
            esc(&s.verdict),
            s.weight,
            fmt2(s.figures.validation.as_ref().map_or(f64::NAN, |f| f.sharpe)),
            fmt2(s.figures.holdout.as_ref().map_or(f64::NAN, |f| f.sharpe)),
            st = s.status.as_str()
        );
    }
    body.push_str("</table>");
    Ok(shell("strategies", &body))
}

fn strategy(site: &Site, id: &str) -> Page {
    let reg = registry(site)?;
    let s = reg
        .get(id)
        .map_err(|e| bad(format!("strategy `{id}`: {e}")))?;
    let mut body = format!(
        r#"<p id="status">status <b>{}</b>, verdict {}, weight {:.3}, from run <code>{}</code> (generation {})</p>"#,
        s.status.as_str(),
        esc(&s.verdict),
        s.weight,
        esc(&s.run),
        s.generation
    );
    body.push_str(r#"<h2>promotion figures</h2><table id="figures"><tr><th>segment</th><th class="num">Sharpe</th><th class="num">consistency</th><th class="num">max drawdown</th><th class="num">total return</th><th class="num">trades</th></tr>"#);
    for (name, f) in [
        ("training", &s.figures.train),
        ("validation", &s.figures.validation),
        ("holdout", &s.figures.holdout),
    ] {
        if let Some(f) = f {
            let _ = write!(
                body,
                r#"<tr class="segment"><td>{name}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
                fmt2(f.sharpe),
                fmt2(f.consistency),
                fmt2(f.max_drawdown),
                fmt2(f.total_return),
                f.trades
            );
        }
    }
    body.push_str(r#"</table><h2>the gauntlet</h2><table id="gauntlet"><tr><th>stage</th><th>result</th><th>rule</th><th>found</th></tr>"#);
    for o in &s.figures.stages {
        let _ = write!(
            body,
            r#"<tr class="stage {}"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            if o.passed { "pass" } else { "fail" },
            esc(o.stage.as_str()),
            if o.passed { "passed" } else { "stopped" },
            esc(&o.rule),
            esc(&o.reason)
        );
    }
    body.push_str(r#"</table><h2>lifecycle</h2><table id="lifecycle"><tr><th>when (UTC)</th><th>from</th><th>to</th><th>why</th></tr>"#);
    for c in reg.history(id).map_err(server)? {
        let _ = write!(
            body,
            r#"<tr class="change"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            format_ts(c.at_ms),
            c.from.map_or("", Status::as_str),
            c.to.as_str(),
            esc(&c.reason)
        );
    }
    let _ = write!(
        body,
        r#"</table><h2>genome</h2><pre id="genome">{}</pre>"#,
        esc(&s.genome)
    );
    Ok(shell(&format!("strategy {id}"), &body))
}

fn sessions(site: &Site) -> Page {
    let conn = crate::store::open_read_only(&site.registry).map_err(server)?;
    let accounts: Vec<String> = {
        let mut st = conn
            .prepare("SELECT DISTINCT account FROM journal WHERE kind = 'session' ORDER BY account")
            .map_err(server)?;
        let rows = st.query_map([], |r| r.get(0)).map_err(server)?;
        rows.flatten().collect()
    };
    let mut body = String::from(
        r#"<table id="sessions"><tr><th>account</th><th>last bar (UTC)</th><th class="num">equity</th><th class="num">books</th><th>state</th></tr>"#,
    );
    for a in &accounts {
        let last = journal::latest(&conn, a, PORTFOLIO, Kind::Equity).map_err(server)?;
        let books = match journal::latest(&conn, a, PORTFOLIO, Kind::Session).map_err(server)? {
            Some(journal::Entry {
                row: Row::Session(s),
                ..
            }) => s.books.len(),
            _ => 0,
        };
        let (bar, equity, killed) = match &last {
            Some(e) => match &e.row {
                Row::Equity(EquityRow::Portfolio(p)) => (format_ts(e.bar_ts), p.equity.0, p.killed),
                _ => (String::new(), f64::NAN, false),
            },
            None => (String::new(), f64::NAN, false),
        };
        let _ = write!(
            body,
            r#"<tr class="session"><td><a href="/session?account={}">{}</a></td><td>{bar}</td><td class="num">{}</td><td class="num">{books}</td><td>{}</td></tr>"#,
            encode(a),
            esc(a),
            fmt2(equity),
            if killed { "stopped (kill switch)" } else { "" }
        );
    }
    body.push_str("</table>");
    Ok(shell("sessions", &body))
}

fn session(site: &Site, account: &str) -> Page {
    let conn = crate::store::open_read_only(&site.registry).map_err(server)?;
    let rows = journal::entries(&conn, account).map_err(server)?;
    if !rows.iter().any(|(_, e)| e.kind() == Kind::Session) {
        return Err(bad(format!("no session in account `{account}`")));
    }
    let mut portfolio = Vec::new();
    let mut books: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let mut last_book: BTreeMap<String, journal::BookEquity> = BTreeMap::new();
    let mut decisions: BTreeMap<String, journal::DecisionRow> = BTreeMap::new();
    let mut breaches = Vec::new();
    let mut limits = None;
    for (_, e) in &rows {
        match &e.row {
            Row::Equity(EquityRow::Portfolio(p)) => portfolio.push((e.bar_ts as f64, p.equity.0)),
            Row::Equity(EquityRow::Book(b)) => {
                books
                    .entry(e.book.clone())
                    .or_default()
                    .push((e.bar_ts as f64, b.equity.0));
                last_book.insert(e.book.clone(), (**b).clone());
            }
            Row::Decision(d) => {
                decisions.insert(e.book.clone(), d.clone());
            }
            Row::Breach(BreachRow::Book { reason, .. } | BreachRow::Portfolio { reason, .. }) => {
                breaches.push((e.bar_ts, e.book.clone(), reason.clone()));
            }
            Row::Session(s) => limits = Some((s.book_limits, s.portfolio_limits)),
            _ => {}
        }
    }
    let mut body = String::from(
        r#"<p id="refresh"></p><script>
var every = 10;
document.getElementById('refresh').textContent = 'refreshing every ' + every + ' s; loaded ' + new Date().toISOString().slice(11, 19) + ' UTC';
setTimeout(function () { location.reload(); }, every * 1000);
</script>"#,
    );
    body.push_str(&line_chart(
        "equity-chart",
        "portfolio equity",
        &[("portfolio".into(), "#0969da", portfolio)],
        true,
    ));
    let palette = [
        "#1a7f37", "#cf222e", "#8250df", "#bf8700", "#0969da", "#57606a",
    ];
    let series: Vec<Series<'_>> = books
        .into_iter()
        .enumerate()
        .map(|(i, (k, v))| (k, palette[i % palette.len()], v))
        .collect();
    body.push_str(&line_chart("book-chart", "equity per book", &series, true));
    body.push_str(r#"<h2>positions</h2><table id="positions"><tr><th>book</th><th class="num">position</th><th class="num">close</th><th class="num">equity</th><th>volatility</th><th>sentiment</th><th class="num">target</th><th>paused</th></tr>"#);
    for (k, b) in &last_book {
        let d = decisions.get(k);
        let _ = write!(
            body,
            r#"<tr class="book"><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td>{}</td><td>{}</td><td class="num">{}</td><td>{}</td></tr>"#,
            esc(k),
            b.position.0,
            b.close.0,
            fmt2(b.equity.0),
            esc(d.and_then(|d| d.volatility.as_deref()).unwrap_or("")),
            esc(d.and_then(|d| d.sentiment.as_deref()).unwrap_or("")),
            d.map_or(String::new(), |d| format!("{}", d.target.position)),
            esc(b.paused.as_deref().unwrap_or(""))
        );
    }
    body.push_str("</table>");
    if let Some((book, port)) = limits {
        let lim = |l: journal::LimitsRow| {
            format!(
                "daily loss {}, drawdown {}, gross leverage {}",
                l.daily_loss
                    .map_or("none".into(), |x| format!("{:.1} %", 100.0 * x)),
                l.max_drawdown
                    .map_or("none".into(), |x| format!("{:.1} %", 100.0 * x)),
                l.max_gross_leverage
                    .map_or("none".into(), |x| format!("{x}"))
            )
        };
        let _ = write!(
            body,
            r#"<h2>risk limits</h2><ul id="limits"><li>each book: {}</li><li>the portfolio: {}</li></ul>"#,
            lim(book),
            lim(port)
        );
    }
    body.push_str(r#"<h2>breaches</h2><table id="breaches"><tr><th>bar (UTC)</th><th>book</th><th>why</th></tr>"#);
    for (ts, book, reason) in &breaches {
        let _ = write!(
            body,
            r#"<tr class="breach"><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            format_ts(*ts),
            esc(book),
            esc(reason)
        );
    }
    body.push_str(r#"</table><h2>latest events</h2><table id="events"><tr><th>seq</th><th>bar (UTC)</th><th>kind</th><th>what</th></tr>"#);
    let events: Vec<&(i64, journal::Entry)> = rows
        .iter()
        .filter(|(_, e)| !matches!(e.kind(), Kind::Bar | Kind::Equity | Kind::Decision))
        .collect();
    for (seq, e) in events.iter().rev().take(30) {
        let what = super::alerts::describe(account, e)
            .map(|x| x.1)
            .unwrap_or_else(|| format!("{} {}", e.kind().as_str(), e.book));
        let _ = write!(
            body,
            r#"<tr class="event"><td class="num">{seq}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            format_ts(e.bar_ts),
            e.kind().as_str(),
            esc(&what)
        );
    }
    body.push_str("</table>");
    Ok(shell(&format!("session {account}"), &body))
}

fn reports(site: &Site) -> String {
    let found = walk(
        &site.root,
        &|p| p.extension().is_some_and(|x| x == "html"),
        true,
    );
    let mut body = String::from(r#"<ul id="reports">"#);
    for rel in &found {
        let rel = rel.display().to_string();
        let _ = write!(
            body,
            r#"<li class="report"><a href="/report?path={}">{}</a></li>"#,
            encode(&rel),
            esc(&rel)
        );
    }
    body.push_str("</ul>");
    if found.is_empty() {
        body.push_str("<p>No HTML reports under the root (`evolve --report`, `promote --report`, `backtest --report` write them).</p>");
    }
    shell("reports", &body)
}

fn report(site: &Site, rel: &str) -> Response {
    let file = match under(site, rel) {
        Ok(f) if f.extension().is_some_and(|x| x == "html") => f,
        _ => return (StatusCode::NOT_FOUND, "no such report").into_response(),
    };
    match std::fs::read(&file) {
        Ok(bytes) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], bytes).into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "no such report").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_and_paths_stay_under_the_root() {
        assert_eq!(decode("a%2Fb+c"), "a/b c");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(encode("pop/run 1"), "pop/run%201");
        let site = Site {
            root: PathBuf::from("/srv"),
            registry: PathBuf::from("r.db"),
            token: None,
        };
        assert!(under(&site, "../etc/passwd").is_err());
        assert!(under(&site, "/etc/passwd").is_err());
        assert_eq!(under(&site, "pop").unwrap(), PathBuf::from("/srv/pop"));
        assert_eq!(fields(r#"a,"b,c",d"#), ["a", "b,c", "d"]);
    }

    #[test]
    fn a_token_is_asked_for_when_set() {
        let site = Site {
            root: PathBuf::from("."),
            registry: PathBuf::from("r.db"),
            token: Some("s3cret".into()),
        };
        let mut h = HeaderMap::new();
        let q = |t: &str| BTreeMap::from([("token".to_string(), t.to_string())]);
        assert!(!authorized(&site, &h, &BTreeMap::new()));
        assert!(!authorized(&site, &h, &q("s3creT")));
        assert!(authorized(&site, &h, &q("s3cret")));
        h.insert(
            header::COOKIE,
            "a=1; organism_token=s3cret".parse().unwrap(),
        );
        assert!(authorized(&site, &h, &BTreeMap::new()));
        let mut b = HeaderMap::new();
        b.insert(header::AUTHORIZATION, "Bearer s3cret".parse().unwrap());
        assert!(authorized(&site, &b, &BTreeMap::new()));
    }
}
