//! Universes of many coins: point-in-time membership that no data after *t* changes (a
//! property test), and the real universes of `../shared/universe` loading whole, where a coin
//! too young or a doubted bar once stopped everything.

use std::path::{Path, PathBuf};

use organism::market::{
    csv::{load_candles, load_candles_lenient},
    membership::{Membership, MembershipRule},
    panel::Panel,
    synthetic::{generate, SyntheticParams},
    universe::{load_panel, load_universe, CoinPick, DataSelection, PanelSelection},
    Market,
};
use proptest::prelude::*;

mod common;

/// Six synthetic coins of unequal histories (listed at different bars, two delisted early).
fn markets() -> Vec<Market> {
    let u = generate(&SyntheticParams {
        seed: 5,
        bars: 1_200,
        coins: ["A", "B", "C", "D", "E", "F"].map(String::from).to_vec(),
        annual_vol: vec![0.5, 0.7, 0.9, 1.1, 0.8, 0.6],
        start_price: vec![100.0, 10.0, 1.0, 50.0, 5.0, 0.5],
        ..SyntheticParams::default()
    });
    let spans = [
        (0, 1200),
        (100, 1200),
        (250, 900),
        (0, 700),
        (400, 1200),
        (30, 1100),
    ];
    u.markets
        .into_iter()
        .zip(spans)
        .map(|(m, (a, b))| m.slice(a..b))
        .collect()
}

/// Everything membership says at grid bars `0..=t`.
fn decisions(panel: &Panel, rule: &MembershipRule, t: usize) -> Vec<(Vec<usize>, Vec<u64>)> {
    let m = Membership::new(panel);
    (0..=t)
        .map(|u| {
            let vols = (0..panel.coins.len())
                .map(|i| {
                    m.trailing_volume(panel, i, u, rule.volume_days)
                        .map_or(u64::MAX, f64::to_bits)
                })
                .collect();
            (m.members(panel, rule, u), vols)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// Changing every coin's bars after grid bar t (prices, volumes, doubted bars, and ending
    /// some coins there) changes no membership decision and no trailing volume up to t.
    #[test]
    fn membership_up_to_t_ignores_everything_after_t(
        t in 0usize..1_150,
        scale in prop::collection::vec(0.2f64..5.0, 6),
        cut in prop::collection::vec(any::<bool>(), 6),
        top in prop::option::of(1usize..5),
    ) {
        let rule = MembershipRule {
            min_history: 48,
            min_volume_usd: 50_000.0,
            volume_days: 7,
            top,
        };
        let base = markets();
        let mut panel = Panel::new(base.clone());
        panel.coins[1].doubted = vec![300];
        let before = decisions(&panel, &rule, t);
        let t_ms = panel.ts[t];
        let changed: Vec<Market> = base
            .into_iter()
            .enumerate()
            .map(|(i, mut m)| {
                let k = m.candles.ts.partition_point(|&x| x <= t_ms);
                if cut[i] {
                    return m.slice(0..k.max(1));
                }
                for j in k..m.candles.len() {
                    let c = &mut m.candles;
                    c.open[j] *= scale[i];
                    c.high[j] *= scale[i];
                    c.low[j] *= scale[i];
                    c.close[j] *= scale[i];
                    c.volume[j] *= scale[(i + 1) % 6];
                }
                m
            })
            .collect();
        let mut after = Panel::new(changed);
        after.coins[1].doubted = vec![300];
        // A doubted bar after t, in every coin long enough.
        for c in &mut after.coins {
            let k = c.market.candles.ts.partition_point(|&x| x <= t_ms);
            if k + 1 < c.market.candles.len() {
                c.doubted.push(k + 1);
                c.doubted.sort_unstable();
                c.doubted.dedup();
            }
        }
        prop_assert_eq!(&after.ts[..=t], &panel.ts[..=t]);
        prop_assert_eq!(decisions(&after, &rule, t), before);
    }
}

fn universe() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/universe");
    if p.join("candles").is_dir() {
        Some(p)
    } else {
        eprintln!("skipped: {} is absent", p.display());
        None
    }
}

fn pick(path: &Path, source: &str, interval: &str) -> PanelSelection {
    PanelSelection {
        path: path.to_path_buf(),
        source: source.into(),
        interval: interval.into(),
        pick: CoinPick::All,
        exclude: Vec::new(),
        timerange: None,
        keep_not_crypto: false,
    }
}

/// Hyperliquid 1d once stopped at `CYBER: 13 bars are too few`, Binance spot 4h at APT's
/// listing-day candle: both load whole now, APT with one note and its doubted bar kept; metals
/// and stablecoins are left out; a coin named alone is as strict as ever.
#[test]
fn the_real_universes_load_whole_and_a_coin_named_alone_stays_strict() {
    let Some(dir) = universe() else { return };
    let mut calls = 0;
    let hl = load_panel(&pick(&dir, "hyperliquid", "1d"), &mut |_, _| calls += 1).unwrap();
    assert!(calls > 100, "{calls}");
    let names = hl.panel.names();
    assert!(names.contains(&"CYBER") && names.contains(&"BTC"));
    assert!(!names.contains(&"PAXG"), "PAXG is not crypto");
    assert!(hl.panel.coins.len() >= 180, "{}", hl.panel.coins.len());
    let cyber = &hl.panel.coins[names.iter().position(|c| *c == "CYBER").unwrap()];
    assert!(cyber.market.candles.len() < 20);
    // Too young for the default rule at any bar: never a member, never an error.
    let m = Membership::new(&hl.panel);
    let rule = MembershipRule::default();
    let ci = names.iter().position(|c| *c == "CYBER").unwrap();
    assert!((0..hl.panel.len()).all(|t| !m.members(&hl.panel, &rule, t).contains(&ci)));

    let spot = load_panel(&pick(&dir, "binancespot", "4h"), &mut |_, _| {}).unwrap();
    let names = spot.panel.names();
    assert!(names.contains(&"APT"));
    assert!(!names.contains(&"USD1") && !names.contains(&"PAXG"));
    let apt = &spot.panel.coins[names.iter().position(|c| *c == "APT").unwrap()];
    assert!(!apt.doubted.is_empty());
    let note: Vec<&String> = spot
        .notes
        .iter()
        .filter(|n| n.starts_with("APT:"))
        .collect();
    assert_eq!(note.len(), 1, "{:?}", spot.notes);
    assert!(note[0].contains("line 2: implausible bar"), "{}", note[0]);
    // Named alone, APT's file is refused as before.
    let file = dir.join("candles/binancespot_APT_4h.csv");
    let e = load_candles(&file).unwrap_err().to_string();
    assert!(
        e.contains("binancespot_APT_4h.csv: line 2: implausible bar"),
        "{e}"
    );
    let e = load_universe(&DataSelection {
        path: Some(dir.clone()),
        interval: "4h".into(),
        source: "binancespot".into(),
        coins: vec!["APT".into()],
        timerange: None,
        synthetic: SyntheticParams::default(),
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("line 2: implausible bar"), "{e}");
}

/// The lenient loader keeps a doubted bar and says where it is; the strict one refuses it.
#[test]
fn a_doubted_bar_is_kept_and_located_or_refused() {
    let d = common::scratch("universe", "doubt");
    let f = d.join("x_AAA_1h.csv");
    std::fs::write(
        &f,
        "timestamp_ms,open,high,low,close,volume\n\
         0,10,11,9,10,1\n\
         3600000,10,150,9,10,1\n\
         7200000,10,11,9,10,1\n\
         10800000,200,210,190,200,1\n",
    )
    .unwrap();
    let (c, doubts) = load_candles_lenient(&f).unwrap();
    assert_eq!(c.len(), 4);
    let at: Vec<(usize, usize)> = doubts.iter().map(|x| (x.bar, x.line)).collect();
    assert_eq!(at, vec![(1, 3), (3, 5)]);
    assert!(
        doubts[0].message.contains("the high is 15x"),
        "{:?}",
        doubts[0]
    );
    assert!(
        doubts[1].message.contains("open 200 is 20x"),
        "{:?}",
        doubts[1]
    );
    let e = load_candles(&f).unwrap_err().to_string();
    assert!(
        e.ends_with(
            "line 3: implausible bar: the high is 15x away from the body (open 10, close 10)"
        ),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(d);
}

/// `data coverage` on a folder made here: a gap, a doubted bar, funding over half the span,
/// and the median daily volume, all worked by hand.
#[test]
fn data_coverage_reports_each_coin_by_hand() {
    let d = common::scratch("universe", "coverage");
    std::fs::create_dir_all(d.join("candles")).unwrap();
    std::fs::create_dir_all(d.join("funding")).unwrap();
    let h = 3_600_000i64;
    let t0 = 1_704_067_200_000i64; // 2024-01-01 00:00 UTC
    let header = "timestamp_ms,open,high,low,close,volume\n";
    // X: 48 hours less hours 10 and 11; $1,000 a bar: day 0 $22,000, day 1 $24,000.
    let mut x = header.to_string();
    for i in (0..48).filter(|i| *i != 10 && *i != 11) {
        x += &format!("{},10,10,10,10,100\n", t0 + i * h);
    }
    std::fs::write(d.join("candles/t_X_1h.csv"), x).unwrap();
    // Funding for X over the first day only: half the span.
    let mut f = "timestamp_ms,rate\n".to_string();
    for i in 0..24 {
        f += &format!("{},0.0001\n", t0 + i * h);
    }
    std::fs::write(d.join("funding/t_X.csv"), f).unwrap();
    // Y: 72 hours at $10 a bar ($240 a day), a 100x wick at hour 30.
    let mut y = header.to_string();
    for i in 0..72 {
        let high = if i == 30 { 100 } else { 1 };
        y += &format!("{},1,{high},1,1,10\n", t0 + i * h);
    }
    std::fs::write(d.join("candles/t_Y_1h.csv"), y).unwrap();
    // A stablecoin is listed too, and an unreadable file is a note.
    std::fs::write(
        d.join("candles/t_USDC_1h.csv"),
        format!("{header}{t0},1,1,1,1,5\n"),
    )
    .unwrap();
    std::fs::write(d.join("candles/t_BAD_1h.csv"), "nonsense\n").unwrap();
    let out = common::run_ok(&["data", "coverage", common::s(&d), "--source", "t", "--json"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let coins = v["coins"].as_array().unwrap();
    let names: Vec<&str> = coins.iter().map(|c| c["coin"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["USDC", "X", "Y"]);
    let x = &coins[1];
    assert_eq!(x["bars"], 46);
    assert_eq!(x["gaps"], 1);
    assert_eq!(x["missing_bars"], 2);
    assert_eq!(x["funding_events"], 24);
    assert_eq!(x["funding_coverage"], 0.5);
    assert_eq!(x["median_daily_volume"], 23000.0);
    assert_eq!(x["doubted"], 0);
    let y = &coins[2];
    assert_eq!(y["bars"], 72);
    assert_eq!(y["doubted"], 1);
    assert_eq!(y["median_daily_volume"], 240.0);
    assert_eq!(y["funding_coverage"], 0.0);
    assert_eq!(y["first_ms"], t0);
    assert_eq!(y["last_ms"], t0 + 71 * h);
    let notes = v["notes"].to_string();
    assert!(
        notes.contains("BAD: left out:") && notes.contains("t_BAD_1h.csv: line 1"),
        "{notes}"
    );
    // The table says the same.
    let table = common::run_ok(&["data", "coverage", common::s(&d), "--source", "t"]);
    assert!(table.contains("3 coins from"), "{table}");
    let _ = std::fs::remove_dir_all(d);
}
