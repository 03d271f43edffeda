//! The crate's layering (DESIGN.md): each stage imports only the stages before it. This reads
//! every `crate::` path of the library's non-test code and fails on one that points forward.

use std::path::Path;

/// The stages in DESIGN.md's order; a module may use the ones before it. `config` layers the
/// settings at the CLI edge and may use any stage, but no stage may use it.
const ORDER: &[&str] = &[
    "clock",
    "settings",
    "store",
    "market",
    "indicators",
    "genome",
    "strategy",
    "seeds",
    "execution",
    "backtest",
    "fitness",
    "bench",
    "evolution",
    "promotion",
    "exchange",
    "runner",
    "serve",
    "config",
];

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("src is readable") {
        let p = e.expect("a directory entry").path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `(from, to)` for every `crate::to` in the non-test code of stage `from`.
fn imports() -> Vec<(String, String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut out = Vec::new();
    for f in all {
        let rel = f.strip_prefix(&src).expect("under src");
        let first = rel.components().next().expect("a path").as_os_str();
        let from = first.to_string_lossy().trim_end_matches(".rs").to_string();
        if ["cli", "main", "lib"].contains(&from.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("readable");
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let lines: Vec<&str> = code.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            let mut rest = *line;
            while let Some(i) = rest.find("crate::") {
                rest = &rest[i + 7..];
                let mut found: Vec<String> = Vec::new();
                if rest.starts_with('{') {
                    // `use crate::{a::…, b, …};`, possibly over several lines: each top-level
                    // item's first segment.
                    let mut group = String::new();
                    let mut depth = 0usize;
                    'lines: for l in std::iter::once(rest).chain(lines[n + 1..].iter().copied()) {
                        for c in l.chars() {
                            match c {
                                '{' => depth += 1,
                                '}' => {
                                    depth -= 1;
                                    if depth == 0 {
                                        break 'lines;
                                    }
                                }
                                _ => {}
                            }
                            if depth == 1 && c != '{' {
                                group.push(c);
                            } else if depth > 1 {
                                group.push(' ');
                            }
                        }
                        group.push(' ');
                    }
                    for item in group.split(',') {
                        let name: String = item
                            .trim()
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect();
                        found.push(name);
                    }
                } else {
                    found.push(
                        rest.chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect(),
                    );
                }
                for to in found {
                    if !to.is_empty() && to != from && to != "self" {
                        out.push((from.clone(), to, format!("{}:{}", rel.display(), n + 1)));
                    }
                }
            }
        }
    }
    out
}

#[test]
fn no_stage_imports_a_later_one() {
    let rank = |m: &str| ORDER.iter().position(|x| *x == m);
    let found = imports();
    assert!(found.len() > 50, "the scan sees the crate's imports");
    let mut bad = Vec::new();
    for (from, to, at) in &found {
        let (Some(a), Some(b)) = (rank(from), rank(to)) else {
            bad.push(format!(
                "{at}: {from} -> {to}: a module not in DESIGN.md's order"
            ));
            continue;
        };
        let forward = b >= a || (to == "config" && from != "config");
        if forward {
            bad.push(format!("{at}: {from} imports {to}, a later stage"));
        }
    }
    assert!(
        bad.is_empty(),
        "imports against the layering:\n{}",
        bad.join("\n")
    );
}

/// One opener: nothing but `src/store/` opens an SQLite connection (tests may).
#[test]
fn only_the_store_opens_the_database() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut found = Vec::new();
    for f in all {
        if f.starts_with(src.join("store")) {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("readable");
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for (n, line) in code.lines().enumerate() {
            if line.contains("Connection::open") {
                found.push(format!("{}:{}", f.display(), n + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "SQLite opened outside src/store: {found:?}"
    );
}
