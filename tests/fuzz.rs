//! A fuzz test over what users hand organism: candle and funding CSVs, config TOML, genome TOML
//! (seeds and program text) and registry files. A fixed corpus of valid inputs is mutated by a
//! seeded generator (bytes cut, dropped, doubled, swapped, numbers replaced by extremes), and
//! every input must give a value whose numbers are finite or one error of one line: no panic,
//! no hang (the whole run has a deadline). Then the cases a reliability run found accepted
//! must be refused through the CLI with exit 1 and one line.

use std::{
    path::{Path, PathBuf},
    sync::{mpsc, Arc, Mutex},
    time::Duration,
};

use organism::{
    config::Config,
    market::csv::{load_candles, load_funding},
    promotion::registry::Registry,
    seeds::Genome,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod common;

/// Mutated inputs per corpus entry.
const CASES: usize = 300;

fn scratch(name: &str) -> PathBuf {
    common::scratch("fuzz", name)
}

/// Tokens a mutation may splice in: extremes, separators, syntax of each format.
const TOKENS: &[&str] = &[
    "1e308",
    "-1e308",
    "NaN",
    "inf",
    "-0",
    "0",
    "9223372036854775807",
    "-9223372036854775808",
    "1230768000000",
    "4102444800000",
    "1704067200001",
    ",",
    "\n",
    "\r\n",
    "\"",
    "'",
    "=",
    "[",
    "]",
    "(",
    ")",
    "((((((((((((((((",
    "))))",
    "#",
    "\u{feff}",
    "é",
    " ",
    "true",
    "[synthetic]",
    "[evolution]",
    "population",
    "(ema 0)",
    "(gt close (ema 9999999))",
    "(and",
];

/// `text` with a few random edits.
fn mutate(text: &str, rng: &mut ChaCha8Rng) -> String {
    let mut s: Vec<char> = text.chars().collect();
    for _ in 0..rng.gen_range(1..=4) {
        let n = s.len();
        let at = if n == 0 { 0 } else { rng.gen_range(0..=n) };
        match rng.gen_range(0..7) {
            // Cut the rest (a truncated file).
            0 => s.truncate(at),
            // Drop a stretch.
            1 if n > 0 => {
                let end = (at + rng.gen_range(1..20)).min(n);
                s.drain(at.min(n)..end);
            }
            // Double a stretch.
            2 if n > 0 => {
                let a = at.min(n - 1);
                let end = (a + rng.gen_range(1..40)).min(n);
                let copy: Vec<char> = s[a..end].to_vec();
                s.splice(a..a, copy);
            }
            // Splice in a token.
            3 | 4 => {
                let t = TOKENS[rng.gen_range(0..TOKENS.len())];
                s.splice(at..at, t.chars());
            }
            // Replace a digit run with a token.
            5 => {
                if let Some(start) = (at..n).find(|&i| s[i].is_ascii_digit()) {
                    let end = (start..n).find(|&i| !s[i].is_ascii_digit()).unwrap_or(n);
                    let t = TOKENS[rng.gen_range(0..9)];
                    s.splice(start..end, t.chars());
                }
            }
            // Swap two characters.
            _ if n > 1 => {
                let b = rng.gen_range(0..n);
                s.swap(at.min(n - 1), b);
            }
            _ => {}
        }
    }
    s.into_iter().collect()
}

/// An error is one line.
fn one_line(what: &str, input: &str, e: &str) {
    assert!(
        !e.trim().contains('\n') && !e.trim().is_empty(),
        "{what}: a multi-line or empty error {e:?} for {input:?}"
    );
}

fn candles_csv() -> String {
    let mut s = String::from("timestamp_ms,open,high,low,close,volume\n");
    let mut px = 100.0f64;
    for i in 0..40i64 {
        let close = px * (1.0 + 0.01 * ((i as f64) * 0.7).sin());
        s += &format!(
            "{},{px},{},{},{close},{}\n",
            1_704_067_200_000 + i * 3_600_000,
            px.max(close) * 1.002,
            px.min(close) * 0.998,
            10 + i
        );
        px = close;
    }
    s
}

fn funding_csv() -> String {
    let mut s = String::from("timestamp_ms,rate\n");
    for i in 0..40i64 {
        s += &format!("{},0.0000125\n", 1_704_067_200_000 + i * 3_600_000);
    }
    s
}

const CONFIG: &str =
    "[synthetic]\nbars = 500\ncoins = [\"BTC\", \"ETH\"]\nannual_vol = [0.5, 0.7]\n\
start_price = [42000.0, 2300.0]\n\n[evolution]\npopulation = 16\ngenerations = 3\n\
seeds = [\"ema_crossover\"]\n\n[costs]\ntaker_fee = 0.00045\n\n[paper]\ncoins = [\"BTC\"]\n\
interval = \"1h\"\n\n[regime]\nfear = \"0.5\"\n";

const GENOMES: &[&str] = &[
    "seed = \"ema_crossover\"\n\n[genes]\nfast = 12\nslow = 26\n",
    "seed = \"atr_stop_loss\"\n\n[genes]\ntrend_period = 50\nstop_mult = 2.0\ntake_mult = 4.0\n",
    "seed = \"program\"\nprogram = '(program (enter-long (gt close (ema 50))) (exit-long (lt \
     close (ema 50))))'\n\n[genes]\nstop_kind = \"atr\"\nstop_value = 2.0\ntake_kind = \"pct\"\n\
     take_value = 3.0\n",
];

/// Runs every corpus entry's mutations; `at` holds the input being tried (for a hang).
fn corpus(dir: &Path, at: &Mutex<String>) -> [(usize, usize); 5] {
    let mut rng = ChaCha8Rng::seed_from_u64(45);
    // Per kind (candles, funding, config, genomes, registries): (read, refused).
    let mut seen = [(0, 0); 5];
    let note = |s: &str| *at.lock().unwrap() = s.to_string();
    // Candle and funding files.
    for (name, seed_text) in [("c.csv", candles_csv()), ("f.csv", funding_csv())] {
        for k in 0..CASES {
            let text = mutate(&seed_text, &mut rng);
            note(&text);
            let file = dir.join(format!("{k}-{name}"));
            std::fs::write(&file, &text).unwrap();
            if name == "c.csv" {
                let r = load_candles(&file);
                if r.is_ok() {
                    seen[0].0 += 1;
                } else {
                    seen[0].1 += 1;
                }
                match r {
                    Ok(c) => {
                        for v in [&c.open, &c.high, &c.low, &c.close, &c.volume] {
                            assert!(v.iter().all(|x| x.is_finite()), "{text:?}");
                        }
                        assert!(c.ts.windows(2).all(|w| w[0] < w[1]), "{text:?}");
                    }
                    Err(e) => one_line("candles", &text, &e.to_string()),
                }
            } else {
                let r = load_funding(&file);
                if r.is_ok() {
                    seen[1].0 += 1;
                } else {
                    seen[1].1 += 1;
                }
                match r {
                    Ok(f) => assert!(
                        f.rate.iter().all(|r| r.is_finite() && r.abs() < 1.0),
                        "{text:?}"
                    ),
                    Err(e) => one_line("funding", &text, &e.to_string()),
                }
            }
            let _ = std::fs::remove_file(&file);
        }
    }
    // Config files: loaded, or one error naming the file.
    for _ in 0..CASES {
        let text = mutate(CONFIG, &mut rng);
        note(&text);
        match Config::from_layers(Some("fuzz.toml"), &text, &[]) {
            Ok(cfg) => {
                seen[2].0 += 1;
                let e = cfg.backtest_config();
                assert!(
                    [e.fee, e.slippage, e.cash, e.leverage]
                        .iter()
                        .all(|x| x.is_finite()),
                    "{text:?}"
                );
            }
            Err(e) => {
                seen[2].1 += 1;
                let e = e.to_string();
                one_line("config", &text, &e);
                assert!(e.starts_with("fuzz.toml") || e.contains("built in"), "{e}");
            }
        }
    }
    // Genomes, seeds and programs: read, or one error; what is read writes back the same.
    for seed_text in GENOMES {
        for _ in 0..CASES {
            let text = mutate(seed_text, &mut rng);
            note(&text);
            match Genome::from_toml(&text, "fuzz.toml") {
                Ok(g) => {
                    seen[3].0 += 1;
                    let back = g.to_toml().unwrap();
                    assert!(
                        !back.contains("NaN") && !back.contains("inf"),
                        "{text:?} -> {back:?}"
                    );
                    let again = Genome::from_toml(&back, "again").unwrap();
                    assert_eq!(again.to_toml().unwrap(), back, "{text:?}");
                }
                Err(e) => {
                    seen[3].1 += 1;
                    one_line("genome", &text, &e);
                }
            }
        }
    }
    // Registry files: a real one (release ba5d92a's) with bytes flipped or cut.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/store_ba5d92a");
    let good = std::fs::read(fixture.join("registry.db")).unwrap();
    for k in 0..60 {
        let mut bytes = good.clone();
        match k % 3 {
            0 => bytes.truncate(rng.gen_range(0..good.len())),
            _ => {
                for _ in 0..rng.gen_range(1..64) {
                    let i = rng.gen_range(0..bytes.len());
                    bytes[i] = rng.gen();
                }
            }
        }
        let file = dir.join(format!("reg{k}.db"));
        std::fs::write(&file, &bytes).unwrap();
        note(&format!("registry case {k}"));
        match Registry::open(&file).and_then(|r| r.list(None)) {
            Ok(_) => seen[4].0 += 1,
            Err(e) => {
                seen[4].1 += 1;
                one_line("registry", &format!("case {k}"), &e.to_string());
            }
        }
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.join(format!("reg{k}.db{ext}")));
        }
    }
    seen
}

#[test]
fn mutated_inputs_give_finite_values_or_one_line_errors_never_a_panic_or_a_hang() {
    let dir = scratch("corpus");
    let at = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = mpsc::channel();
    let (d, a) = (dir.clone(), at.clone());
    let worker = std::thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| corpus(&d, &a)));
        let _ = tx.send(r.ok());
    });
    match rx.recv_timeout(Duration::from_secs(50)) {
        Ok(Some(seen)) => {
            eprintln!("(read, refused): candles, funding, config, genomes, registries: {seen:?}");
            // The mutations reach both sides of every reader.
            for (i, (read, refused)) in seen.iter().enumerate() {
                assert!(*read > 0 && *refused > 0, "kind {i}: {seen:?}");
            }
        }
        Ok(None) => {
            // The assertion's message is printed above; name the input too.
            panic!(
                "failed on {:?}",
                at.lock().map(|s| s.clone()).unwrap_or_default()
            );
        }
        Err(_) => panic!(
            "no answer within 50 s: hung on {:?}",
            at.lock().map(|s| s.clone()).unwrap_or_default()
        ),
    }
    worker.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The cases a reliability run found accepted (issue 45), through `backtest --data`: exit 1
/// and one line naming the file and the line.
#[test]
fn what_the_loader_must_refuse_is_one_line_through_the_cli() {
    let dir = scratch("refuse");
    let h = "timestamp_ms,open,high,low,close,volume\n";
    let t0 = 1_704_067_200_000i64;
    let bar = |t: i64| format!("{t},10,11,9,10.5,5\n");
    let cases = [
        (
            "cut.csv",
            format!("{h}{}{}", bar(t0), "1704070800000,10,11,9,10.5,1"),
            "cut.csv: line 3: the file ends inside this row",
        ),
        (
            "min.csv",
            format!("{h}{}", bar(i64::MIN)),
            "min.csv: line 2: timestamp_ms -9223372036854775808 is before 2009",
        ),
        (
            "old.csv",
            format!("{h}{}", bar(1_199_145_600_000)),
            "old.csv: line 2: timestamp_ms 1199145600000 is before 2009",
        ),
        (
            "grid.csv",
            format!("{h}{}{}", bar(t0), bar(t0 + 3_600_001)),
            "grid.csv: line 3: timestamp_ms 1704070800001 is 1 ms past a whole minute",
        ),
    ];
    for (name, text, want) in cases {
        let f = dir.join(name);
        std::fs::write(&f, text).unwrap();
        let o = common::organism(&["backtest", "--data", f.to_str().unwrap()]);
        let e = common::stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{name}: {e}");
        assert_eq!(e.trim().lines().count(), 1, "{name}: {e}");
        assert!(e.contains(want), "{name}: {e}");
    }
    // Funding dated 2058 beside candles of 2024.
    let data = dir.join("data");
    std::fs::create_dir_all(data.join("candles")).unwrap();
    std::fs::create_dir_all(data.join("funding")).unwrap();
    let candles: String = (0..60).map(|i| bar(t0 + i * 3_600_000)).collect();
    std::fs::write(data.join("candles/x_AAA_1h.csv"), format!("{h}{candles}")).unwrap();
    std::fs::write(
        data.join("funding/x_AAA.csv"),
        format!("timestamp_ms,rate\n{t0},0.0001\n2776032000000,0.0001\n"),
    )
    .unwrap();
    let o = common::organism(&[
        "backtest",
        "--data",
        data.join("candles/x_AAA_1h.csv").to_str().unwrap(),
    ]);
    let e = common::stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert!(
        e.contains("x_AAA.csv: line 3: timestamp_ms 2776032000000 is past what the candles"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
