//! Evaluating [programs](crate::genome::program) over a prepared market.
//!
//! Evaluation is vectorized: each node is computed over the whole series at once, indicators
//! come from the market's shared cache ([`Prepared::get`]), and nothing is allocated per bar.
//! Every operator at bar `t` reads bars `≤ t` only (comparisons and crossings of values at `t`
//! and `t − 1`, causal indicators, seeds' signals, which read data up to `t`), so a program
//! cannot look ahead; a property test checks it on random programs.
//!
//! **From conditions to targets.** Flat, a program goes long when *enter long* fires and *enter
//! short* does not, and short the other way round; long, it goes flat when *exit long* fires;
//! short, when *exit short* fires; an exit and an entry on the same bar flatten, then enter.
//! An absent root never fires. The shared risk genes (`seeds/risk.toml`: size, direction,
//! stop-loss, take-profit) then apply exactly as for a seed.

use std::sync::{Arc, OnceLock};

use super::{apply_risk, parse_risk_genes, Key, Prepared, RISK_FILE};
use crate::{
    genome::{
        program::{Node, Op, Program},
        GenomeError, SeedSpec,
    },
    strategy::Targets,
};

/// The value of a node over every bar.
#[derive(Debug, Clone)]
pub enum Val {
    Series(Arc<Vec<f64>>),
    Cond(Vec<bool>),
}

/// The gene spec of a program's risk genes (the shared risk genes, under the name `program`).
///
/// # Errors
/// Only if the built-in `seeds/risk.toml` is broken.
pub fn risk_spec() -> Result<&'static SeedSpec, GenomeError> {
    static SPEC: OnceLock<SeedSpec> = OnceLock::new();
    if let Some(s) = SPEC.get() {
        return Ok(s);
    }
    let genes = parse_risk_genes(RISK_FILE.0, RISK_FILE.1)?;
    Ok(SPEC.get_or_init(|| SeedSpec {
        name: "program".into(),
        description: "a strategy program with the shared risk genes".into(),
        kind: crate::genome::SeedKind::Coin,
        genes,
    }))
}

fn series(v: Val) -> Arc<Vec<f64>> {
    match v {
        Val::Series(s) => s,
        // A condition where a series is expected cannot be built (the types forbid it); read
        // it as 1 / 0 rather than fail.
        Val::Cond(c) => Arc::new(c.iter().map(|&b| f64::from(u8::from(b))).collect()),
    }
}

fn cond(v: Val) -> Vec<bool> {
    match v {
        Val::Cond(c) => c,
        Val::Series(s) => s.iter().map(|&x| x != 0.0 && !x.is_nan()).collect(),
    }
}

fn period(n: &Node) -> usize {
    (n.value as usize).max(1)
}

/// Evaluates one node over every bar of `data`.
pub fn eval(node: &Node, data: &Prepared) -> Val {
    let c = &data.market.candles;
    let n = c.len();
    let arg = |i: usize| eval(&node.args[i], data);
    let p = |i: usize| period(&node.args[i]);
    let s = Val::Series;
    match node.op {
        Op::True => Val::Cond(vec![true; n]),
        Op::False => Val::Cond(vec![false; n]),
        Op::Const => s(Arc::new(vec![node.value; n])),
        Op::Close => s(data.get(Key::Close)),
        Op::Ema => s(data.get(Key::Ema(p(0)))),
        Op::Sma => s(data.get(Key::Sma(p(0)))),
        Op::Vwap => s(data.get(Key::Vwap(p(0)))),
        Op::DonchianUpper => s(data.get(Key::DonchianUpper(p(0)))),
        Op::DonchianLower => s(data.get(Key::DonchianLower(p(0)))),
        Op::Midpoint => s(data.get(Key::Midpoint(p(0)))),
        Op::Rsi => s(data.get(Key::Rsi(p(0)))),
        Op::StochK => s(data.get(Key::StochK(p(0), p(1)))),
        Op::StochD => s(data.get(Key::StochD(p(0), p(1)))),
        Op::Zscore => s(data.get(Key::Zscore(p(0)))),
        Op::Ret => s(data.get(Key::Ret(p(0)))),
        Op::Funding => s(data.get(Key::Funding)),
        Op::FearGreed => s(data.get(Key::FearGreed)),
        Op::FundingSma => s(data.get(Key::FundingSma(p(0)))),
        Op::Add | Op::Sub => {
            let (a, b) = (series(arg(0)), series(arg(1)));
            let sign = if node.op == Op::Add { 1.0 } else { -1.0 };
            s(Arc::new(
                a.iter().zip(b.iter()).map(|(x, y)| x + sign * y).collect(),
            ))
        }
        Op::If => {
            let k = cond(arg(0));
            match (arg(1), arg(2)) {
                (Val::Cond(a), Val::Cond(b)) => {
                    Val::Cond((0..n).map(|t| if k[t] { a[t] } else { b[t] }).collect())
                }
                (a, b) => {
                    let (a, b) = (series(a), series(b));
                    s(Arc::new(
                        (0..n).map(|t| if k[t] { a[t] } else { b[t] }).collect(),
                    ))
                }
            }
        }
        Op::Not => Val::Cond(cond(arg(0)).into_iter().map(|b| !b).collect()),
        Op::And | Op::Or => {
            let (a, b) = (cond(arg(0)), cond(arg(1)));
            let and = node.op == Op::And;
            Val::Cond(
                a.iter()
                    .zip(&b)
                    .map(|(&x, &y)| if and { x && y } else { x || y })
                    .collect(),
            )
        }
        // NaN compares false: no condition holds before an indicator is defined.
        Op::Gt | Op::Lt => {
            let (a, b) = (series(arg(0)), series(arg(1)));
            let gt = node.op == Op::Gt;
            Val::Cond(
                a.iter()
                    .zip(b.iter())
                    .map(|(x, y)| if gt { x > y } else { x < y })
                    .collect(),
            )
        }
        Op::CrossAbove | Op::CrossBelow => {
            let (a, b) = (series(arg(0)), series(arg(1)));
            let above = node.op == Op::CrossAbove;
            Val::Cond(
                (0..n)
                    .map(|t| {
                        t >= 1
                            && if above {
                                a[t] > b[t] && a[t - 1] <= b[t - 1]
                            } else {
                                a[t] < b[t] && a[t - 1] >= b[t - 1]
                            }
                    })
                    .collect(),
            )
        }
        Op::Seed => {
            let Some(call) = &node.seed else {
                return Val::Cond(vec![false; n]);
            };
            let Ok(entry) = super::find(&call.seed) else {
                return Val::Cond(vec![false; n]);
            };
            let sides = data.seed_sides(entry, &call.genes);
            let want = if call.long { 1 } else { -1 };
            Val::Cond(sides.iter().map(|&x| x == want).collect())
        }
    }
}

/// The program's raw positions (+1 / −1 / 0) per bar, before the risk genes (see the module
/// documentation).
pub fn signals(p: &Program, data: &Prepared, out: &mut Targets) {
    let n = data.market.candles.len();
    let roots: Vec<Option<Vec<bool>>> = p
        .roots
        .iter()
        .map(|r| r.as_ref().map(|r| cond(eval(r, data))))
        .collect();
    let fires = |k: usize, t: usize| roots[k].as_ref().is_some_and(|c| c[t]);
    let mut pos = 0.0_f64;
    for t in 0..n {
        if (pos > 0.0 && fires(1, t)) || (pos < 0.0 && fires(3, t)) {
            pos = 0.0;
        }
        if pos == 0.0 {
            match (fires(0, t), fires(2, t)) {
                (true, false) => pos = 1.0,
                (false, true) => pos = -1.0,
                _ => {}
            }
        }
        out.position[t] = pos;
    }
}

/// Per-bar targets of a program with its risk genes (`risk`, a genome of [`risk_spec`]).
///
/// # Panics
/// If the built-in risk spec is broken (a test checks it is not).
pub fn targets(p: &Program, risk: &[f64], data: &Prepared) -> Targets {
    let n = data.market.candles.len();
    let mut out = Targets::flat(n);
    signals(p, data, &mut out);
    let spec = risk_spec().unwrap_or_else(|e| panic!("built-in risk genes: {e}"));
    apply_risk(spec.view(risk), data, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::{
        genome::program::{parse, Generator},
        market::{synthetic, Candles, FundingSeries, Market},
    };

    fn lookup(name: &str) -> Option<SeedSpec> {
        super::super::find(name).ok().map(|e| e.spec.clone())
    }

    fn market(close: &[f64]) -> Market {
        let mut c = Candles::default();
        for (i, &x) in close.iter().enumerate() {
            c.push(i as i64 * 3_600_000, x, x + 0.5, x - 0.5, x, 1.0);
        }
        Market::new("T", c, FundingSeries::default())
    }

    #[test]
    fn a_hand_written_program_gives_hand_computed_targets() {
        // SMA(3) of 10 11 12 11 10 9 10 12: -, -, 11, 11.33, 11, 10, 9.67, 10.33.
        // Enter long when close > SMA(3), exit when close < SMA(3):
        // t2 12 > 11 enter; t3 11 < 11.33 exit; t4 10 < 11; t5 9 < 10; t6 10 > 9.67 enter;
        // t7 12 > 10.33 hold.
        let p = parse(
            "(program (enter-long (gt close (sma 3))) (exit-long (lt close (sma 3))))",
            &lookup,
        )
        .unwrap();
        let data = Prepared::new(market(&[10.0, 11.0, 12.0, 11.0, 10.0, 9.0, 10.0, 12.0]));
        let risk = risk_spec().unwrap();
        let mut genes = risk.default_genome();
        risk.set(&mut genes, "size", "0.5").unwrap();
        let t = targets(&p, &genes, &data);
        assert_eq!(t.position, [0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.5, 0.5]);
        // Shorts: enter short when close crosses below SMA(3) (t3: 11 < 11.33 after 12 >= 11),
        // exit when it crosses above (t6). Direction `long` removes them.
        let p = parse(
            "(program (enter-short (cross-below close (sma 3))) (exit-short (cross-above close (sma 3))))",
            &lookup,
        )
        .unwrap();
        let t = targets(&p, &risk.default_genome(), &data);
        assert_eq!(t.position, [0.0, 0.0, 0.0, -1.0, -1.0, -1.0, 0.0, 0.0]);
        let mut long_only = risk.default_genome();
        risk.set(&mut long_only, "direction", "long").unwrap();
        assert_eq!(targets(&p, &long_only, &data).position, [0.0; 8]);
    }

    #[test]
    fn a_seed_terminal_is_that_seed_s_side() {
        let data = Prepared::new(
            synthetic::generate(&synthetic::SyntheticParams {
                bars: 800,
                ..Default::default()
            })
            .markets
            .remove(0),
        );
        let p = parse(
            "(program (enter-long (seed ema_crossover long fast=5 slow=20)) (exit-long (not (seed ema_crossover long fast=5 slow=20))) (enter-short (seed ema_crossover short fast=5 slow=20)) (exit-short (not (seed ema_crossover short fast=5 slow=20))))",
            &lookup,
        )
        .unwrap();
        let risk = risk_spec().unwrap();
        let got = targets(&p, &risk.default_genome(), &data);
        let entry = super::super::find("ema_crossover").unwrap();
        let mut g = entry.spec.default_genome();
        entry.spec.set(&mut g, "fast", "5").unwrap();
        entry.spec.set(&mut g, "slow", "20").unwrap();
        let want = entry.targets(&g, &data);
        let side = |x: f64| if x.is_nan() { 0.0 } else { x.signum() };
        let a: Vec<f64> = got.position.iter().map(|&x| side(x)).collect();
        let b: Vec<f64> = want.position.iter().map(|&x| side(x)).collect();
        assert_eq!(a, b);
        assert!(a.iter().any(|&x| x > 0.0) && a.iter().any(|&x| x < 0.0));
    }

    /// The market with every bar after `t` changed (prices scaled, funding flipped).
    fn changed_after(m: &Market, t: usize) -> Market {
        let mut c = m.candles.clone();
        for i in t + 1..c.len() {
            let f = 1.0 + 0.3 * ((i * 7919 % 13) as f64 / 13.0 - 0.5);
            c.open[i] *= f;
            c.high[i] *= f * 1.01;
            c.low[i] *= f * 0.99;
            c.close[i] *= f;
            c.volume[i] *= 2.0;
        }
        let mut fund = m.funding.clone();
        let cut = c.ts[t];
        for (ts, r) in fund.ts.iter().zip(fund.rate.iter_mut()) {
            if *ts > cut {
                *r = -*r * 3.0;
            }
        }
        let mut out = Market::new(m.coin.clone(), c, fund);
        // The Fear & Greed values usable after `t` change too.
        out.fear_greed = m.fear_greed.as_ref().map(|v| {
            v.iter()
                .enumerate()
                .map(|(i, &x)| if i > t { 100.0 - x } else { x })
                .collect()
        });
        out
    }

    /// Every seed but the two ML ones (which need longer windows than these tests' markets).
    fn rule_seed_specs() -> Vec<SeedSpec> {
        super::super::registry()
            .unwrap()
            .iter()
            .filter(|e| !e.is_ml())
            .map(|e| e.spec.clone())
            .collect()
    }

    #[test]
    fn a_program_and_its_canonical_form_trade_alike() {
        // The fitness cache keys programs by canonical text: it must never merge two programs
        // that trade differently.
        let m = synthetic::generate(&synthetic::SyntheticParams {
            bars: 400,
            ..Default::default()
        })
        .markets
        .remove(0);
        let data = Prepared::new(m);
        let g = Generator::new(rule_seed_specs(), 5);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let risk = risk_spec().unwrap().default_genome();
        let mut changed = 0;
        for _ in 0..400 {
            let p = g.program(&mut rng);
            let c = crate::genome::program::canonical_program(&p, &lookup);
            let text = crate::genome::program::print(&c, &lookup);
            changed += usize::from(c != p);
            let (a, b) = (targets(&p, &risk, &data), targets(&c, &risk, &data));
            assert_eq!(a.position, b.position, "{text}");
        }
        assert!(
            changed > 100,
            "only {changed} of 400 canonical forms differ"
        );
    }

    #[test]
    fn random_programs_never_look_ahead() {
        let m = synthetic::generate(&synthetic::SyntheticParams {
            bars: 600,
            ..Default::default()
        })
        .markets
        .remove(1);
        // A daily Fear & Greed index over the span, so programs can read it.
        let first_day = m.candles.ts[0].div_euclid(86_400_000);
        let fg = crate::market::csv::FearGreed {
            day: (first_day - 1..first_day + 30).collect(),
            value: (0..31).map(|i| ((i * 37) % 101) as u8).collect(),
        };
        let m = m.with_fear_greed(&fg);
        let g = Generator::new(rule_seed_specs(), 6).with_sentiment(true);
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let full = Prepared::new(m.clone());
        let risk = risk_spec().unwrap().default_genome();
        let cuts = [150, 320, 480];
        let changed: Vec<Prepared> = cuts
            .iter()
            .map(|&t| Prepared::new(changed_after(&m, t)))
            .collect();
        let (mut traded, mut sentiment) = (0, 0);
        for _ in 0..1500 {
            let p = g.program(&mut rng);
            let base = targets(&p, &risk, &full);
            traded += usize::from(base.position.iter().any(|&x| x != 0.0));
            sentiment += usize::from(p.roots.iter().flatten().any(|r| r.uses_sentiment()));
            for (&t, data) in cuts.iter().zip(&changed) {
                let other = targets(&p, &risk, data);
                assert_eq!(
                    base.position[..=t],
                    other.position[..=t],
                    "looks ahead at bar {t}: {}",
                    crate::genome::program::print(&p, &lookup)
                );
            }
        }
        // The test is not vacuous: most random programs trade.
        assert!(traded > 500, "{traded} of 1500 traded");
        assert!(sentiment > 50, "{sentiment} of 1500 read fear-greed");
    }
}
