//! Evaluating [programs](crate::genome::program) over a prepared market.
//!
//! Evaluation is column-wise: each node is computed over the whole series at once, indicators
//! come from the market's shared cache ([`Prepared::get`]), conditions are [`Bits`], one bit
//! per bar, combined a 64-bar word at a time, and constants stay scalars. A compound node's
//! value is kept in the market's node cache under its canonical key ([`node_key`]), so a
//! subtree that several programs of a generation share (or one program twice, as in an entry
//! and its negated exit) is computed once per market. Every operator at bar `t` reads bars
//! `≤ t` only (comparisons and crossings of values at `t` and `t − 1`, causal indicators,
//! seeds' signals, which read data up to `t`), so a program cannot look ahead; a property test
//! checks it on random programs.
//!
//! **From conditions to targets.** Flat, a program goes long when *enter long* fires and *enter
//! short* does not, and short the other way round; long, it goes flat when *exit long* fires;
//! short, when *exit short* fires; an exit and an entry on the same bar flatten, then enter.
//! An absent root never fires. The shared risk genes (`seeds/risk.toml`: size, direction,
//! stop-loss, take-profit) then apply exactly as for a seed.

use std::sync::{Arc, OnceLock};

use super::{apply_risk, bits::Bits, parse_risk_genes, Key, Prepared, RISK_FILE};
use crate::{
    genome::{
        program::{Node, Op, Program},
        Genes, GenomeError, SeedSpec,
    },
    indicators::Line,
    strategy::Targets,
};

/// The value of a node over every bar.
#[derive(Debug, Clone)]
pub enum Val {
    Series(Arc<Vec<f64>>),
    /// The same number at every bar (a constant, or arithmetic on constants).
    Scalar(f64),
    Cond(Arc<Bits>),
}

impl Val {
    /// Bytes held (for the node cache's budget).
    pub fn bytes(&self) -> usize {
        match self {
            Val::Series(s) => 8 * s.len(),
            Val::Scalar(_) => 0,
            Val::Cond(c) => c.bytes(),
        }
    }
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

/// A number per bar, or one number for every bar.
enum Num {
    Series(Arc<Vec<f64>>),
    Scalar(f64),
}

impl Num {
    fn at(&self, t: usize) -> f64 {
        match self {
            Num::Series(s) => s[t],
            Num::Scalar(k) => *k,
        }
    }
}

fn num(v: Val) -> Num {
    match v {
        Val::Series(s) => Num::Series(s),
        Val::Scalar(k) => Num::Scalar(k),
        // A condition where a series is expected cannot be built (the types forbid it); read
        // it as 1 / 0 rather than fail.
        Val::Cond(c) => Num::Series(Arc::new(c.to_f64())),
    }
}

/// A number read as a condition: true where it is neither 0 nor NaN.
fn truthy(x: f64) -> bool {
    x != 0.0 && !x.is_nan()
}

fn cond(v: Val, n: usize) -> Arc<Bits> {
    match v {
        Val::Cond(c) => c,
        Val::Series(s) => Arc::new(Bits::pack1(&s, truthy)),
        Val::Scalar(k) => Arc::new(Bits::splat(n, truthy(k))),
    }
}

/// `f(a[t], b[t])` at every bar. NaN compares false: no condition holds before an indicator
/// is defined.
fn compare(a: &Num, b: &Num, n: usize, f: impl Fn(f64, f64) -> bool) -> Bits {
    match (a, b) {
        (Num::Series(a), Num::Series(b)) => Bits::pack2(a, b, f),
        (Num::Series(a), Num::Scalar(k)) => Bits::pack1(a, |x| f(x, *k)),
        (Num::Scalar(k), Num::Series(b)) => Bits::pack1(b, |y| f(*k, y)),
        (Num::Scalar(x), Num::Scalar(y)) => Bits::splat(n, f(*x, *y)),
    }
}

/// `now(a[t], b[t])` and `before(a[t − 1], b[t − 1])` at every bar but the first.
fn crossing(
    a: &Num,
    b: &Num,
    n: usize,
    now: impl Fn(f64, f64) -> bool,
    before: impl Fn(f64, f64) -> bool,
) -> Bits {
    match (a, b) {
        (Num::Series(a), Num::Series(b)) => Bits::crossing2(a, b, now, before),
        (Num::Series(a), Num::Scalar(k)) => Bits::crossing1(a, |x| now(x, *k), |x| before(x, *k)),
        (Num::Scalar(k), Num::Series(b)) => Bits::crossing1(b, |y| now(*k, y), |y| before(*k, y)),
        (Num::Scalar(x), Num::Scalar(y)) => {
            Bits::splat(n, now(*x, *y)).and(&Bits::splat(n, before(*x, *y)).shifted_up())
        }
    }
}

/// `a[t] + sign · b[t]` at every bar.
fn arith(a: &Num, b: &Num, sign: f64) -> Val {
    let s = |v: Vec<f64>| Val::Series(Arc::new(v));
    match (a, b) {
        (Num::Series(a), Num::Series(b)) => {
            s(a.iter().zip(b.iter()).map(|(x, y)| x + sign * y).collect())
        }
        (Num::Series(a), Num::Scalar(y)) => s(a.iter().map(|x| x + sign * y).collect()),
        (Num::Scalar(x), Num::Series(b)) => s(b.iter().map(|y| x + sign * y).collect()),
        (Num::Scalar(x), Num::Scalar(y)) => Val::Scalar(x + sign * y),
    }
}

fn period(n: &Node) -> usize {
    (n.value as usize).max(1)
}

/// The cached series a leaf reads (`close`, an indicator with its periods, funding, Fear &
/// Greed). Only called on such leaves; any other node reads the close.
fn series_key(node: &Node) -> Key {
    let p = |i: usize| node.args.get(i).map_or(1, period);
    match node.op {
        Op::Ema => Key::Ema(p(0)),
        Op::Sma => Key::Sma(p(0)),
        Op::Vwap => Key::Vwap(p(0)),
        Op::DonchianUpper => Key::DonchianUpper(p(0)),
        Op::DonchianLower => Key::DonchianLower(p(0)),
        Op::Midpoint => Key::Midpoint(p(0)),
        Op::Rsi => Key::Rsi(p(0)),
        Op::StochK => Key::StochK(p(0), p(1)),
        Op::StochD => Key::StochD(p(0), p(1)),
        Op::Zscore => Key::Zscore(p(0)),
        Op::Ret => Key::Ret(p(0)),
        Op::Funding => Key::Funding,
        Op::FearGreed => Key::FearGreed,
        Op::FundingSma => Key::FundingSma(p(0)),
        _ => Key::Close,
    }
}

/// The first word of a node's key: its operator and number of arguments.
fn header(op: Op, arity: usize) -> u64 {
    op as u64 | (arity as u64) << 8 | 1 << 16
}

/// A node with its key and its arguments' (see [`node_key`]).
struct Keyed<'a> {
    node: &'a Node,
    key: Vec<u64>,
    args: Vec<Keyed<'a>>,
}

fn keyed(node: &Node) -> Keyed<'_> {
    let args: Vec<Keyed<'_>> = node.args.iter().map(keyed).collect();
    let mut op = node.op;
    let mut order: Vec<&[u64]> = args.iter().map(|a| &a.key[..]).collect();
    if op == Op::Gt {
        op = Op::Lt;
        order.reverse();
    }
    if matches!(op, Op::And | Op::Or | Op::Add) {
        order.sort_unstable();
    }
    let mut key = vec![header(op, args.len())];
    match (node.op, &node.seed) {
        (Op::Const, _) => key.push(node.value.to_bits()),
        (Op::Seed, Some(call)) => {
            key.push(call.seed.len() as u64);
            key.extend(call.seed.bytes().map(u64::from));
            key.push(u64::from(call.long));
            key.push(call.genes.len() as u64);
            key.extend(call.genes.iter().map(|g| g.to_bits()));
        }
        _ => {}
    }
    for k in order {
        key.extend_from_slice(k);
    }
    Keyed { node, key, args }
}

/// A node's key in the node cache: its operator, constant or seed call, and its arguments'
/// keys, in preorder; two subtrees with one key have the same value at every bar. The key
/// applies the canonical form's exact rules only: `(gt a b)` is `(lt b a)`, and the arguments
/// of `and`, `or` and `add` are in key order.
pub fn node_key(node: &Node) -> Vec<u64> {
    keyed(node).key
}

/// Evaluates one node over every bar of `data`.
pub fn eval(node: &Node, data: &Prepared) -> Val {
    eval_keyed(&keyed(node), data)
}

fn eval_keyed(k: &Keyed<'_>, data: &Prepared) -> Val {
    let cached = matches!(
        k.node.op,
        Op::And
            | Op::Or
            | Op::Not
            | Op::If
            | Op::Gt
            | Op::Lt
            | Op::CrossAbove
            | Op::CrossBelow
            | Op::Add
            | Op::Sub
            | Op::Seed
    );
    if cached {
        if let Some(v) = data.node(&k.key) {
            return v;
        }
    }
    let v = compute(k, data);
    if cached {
        data.keep_node(&k.key, &v);
    }
    v
}

fn compute(k: &Keyed<'_>, data: &Prepared) -> Val {
    let node = k.node;
    let n = data.market.candles.len();
    let arg = |i: usize| eval_keyed(&k.args[i], data);
    let s = Val::Series;
    let c = |b: Bits| Val::Cond(Arc::new(b));
    match node.op {
        Op::True => c(Bits::splat(n, true)),
        Op::False => c(Bits::splat(n, false)),
        Op::Const => Val::Scalar(node.value),
        Op::Close
        | Op::Ema
        | Op::Sma
        | Op::Vwap
        | Op::DonchianUpper
        | Op::DonchianLower
        | Op::Midpoint
        | Op::Rsi
        | Op::StochK
        | Op::StochD
        | Op::Zscore
        | Op::Ret
        | Op::Funding
        | Op::FearGreed
        | Op::FundingSma => s(data.get(series_key(node))),
        Op::Add | Op::Sub => {
            let sign = if node.op == Op::Add { 1.0 } else { -1.0 };
            arith(&num(arg(0)), &num(arg(1)), sign)
        }
        Op::If => {
            let when = cond(arg(0), n);
            match (arg(1), arg(2)) {
                (Val::Cond(a), Val::Cond(b)) => c(when.select(&a, &b)),
                (a, b) => {
                    let (a, b) = (num(a), num(b));
                    s(Arc::new(
                        (0..n)
                            .map(|t| if when.get(t) { a.at(t) } else { b.at(t) })
                            .collect(),
                    ))
                }
            }
        }
        Op::Not => c(cond(arg(0), n).not()),
        Op::And => c(cond(arg(0), n).and(&cond(arg(1), n))),
        Op::Or => c(cond(arg(0), n).or(&cond(arg(1), n))),
        Op::Gt => c(compare(&num(arg(0)), &num(arg(1)), n, |x, y| x > y)),
        Op::Lt => c(compare(&num(arg(0)), &num(arg(1)), n, |x, y| x < y)),
        // Above now and at or below one bar earlier (never at the first bar).
        Op::CrossAbove => c(crossing(
            &num(arg(0)),
            &num(arg(1)),
            n,
            |x, y| x > y,
            |x, y| x <= y,
        )),
        Op::CrossBelow => c(crossing(
            &num(arg(0)),
            &num(arg(1)),
            n,
            |x, y| x < y,
            |x, y| x >= y,
        )),
        Op::Seed => {
            let found = node
                .seed
                .as_ref()
                .and_then(|call| Some((call, super::find(&call.seed).ok()?)));
            let Some((call, entry)) = found else {
                return c(Bits::splat(n, false));
            };
            let sides = data.seed_sides(entry, &call.genes);
            c(Bits::sides(&sides, if call.long { 1 } else { -1 }))
        }
    }
}

/// Computes the program's EMA and SMA lines that the market does not keep yet two at a time
/// ([`Prepared::prefetch_pair`]): two recurrences in one pass take about the time of one.
fn prefetch(p: &Program, data: &Prepared) {
    fn lines(n: &Node, out: &mut Vec<Line>) {
        match n.op {
            Op::Ema => out.push(Line::Ema(period(&n.args[0]))),
            Op::Sma => out.push(Line::Sma(period(&n.args[0]))),
            _ => n.args.iter().for_each(|a| lines(a, out)),
        }
    }
    let mut all = Vec::new();
    for r in p.roots.iter().flatten() {
        lines(r, &mut all);
    }
    let mut missing: Vec<Line> = Vec::with_capacity(all.len());
    for l in all {
        if !missing.contains(&l) && !data.has(l.into()) {
            missing.push(l);
        }
    }
    for two in missing.chunks_exact(2) {
        data.prefetch_pair([two[0], two[1]]);
    }
}

/// The program's raw positions (+1 / −1 / 0) per bar, before the risk genes (see the module
/// documentation).
pub fn signals(p: &Program, data: &Prepared, out: &mut Targets) {
    let n = data.market.candles.len();
    prefetch(p, data);
    let root = |k: usize| match &p.roots[k] {
        Some(r) => cond(eval(r, data), n),
        None => Arc::new(Bits::splat(n, false)),
    };
    let (enter_long, exit_long, enter_short, exit_short) = (root(0), root(1), root(2), root(3));
    // Flat, a program enters where exactly one entry fires.
    let enter = enter_long.xor(&enter_short);
    // The first bar at or after `t` where `b` fires (`n` if none).
    let next = |b: &Bits, t: usize| Some(b.next_set(t)).filter(|&s| s < b.len()).unwrap_or(n);
    let (mut t, mut side) = (0, 0.0_f64);
    while t < n {
        // The side holds until the bar where it may change: an entry when flat, its exit when
        // in a position.
        let stop = if side > 0.0 {
            next(&exit_long, t)
        } else if side < 0.0 {
            next(&exit_short, t)
        } else {
            next(&enter, t)
        };
        out.position[t..stop].fill(side);
        if stop == n {
            break;
        }
        // At `stop` the position is flat (an exit, or flat already), then takes an entry.
        side = match (enter.get(stop), enter_long.get(stop)) {
            (false, _) => 0.0,
            (true, true) => 1.0,
            (true, false) => -1.0,
        };
        out.position[stop] = side;
        t = stop + 1;
    }
}

/// Per-bar targets of a program with its risk genes (`risk`, a genome of [`risk_spec`]).
///
/// # Panics
/// If the built-in risk spec is broken (a test checks it is not).
pub fn targets(p: &Program, risk: &[f64], data: &Prepared) -> Targets {
    let mut out = raw_signals(p, data);
    apply_risk(risk_view(risk), data, &mut out);
    out
}

/// The program's raw signals at every bar, before the risk genes.
pub fn raw_signals(p: &Program, data: &Prepared) -> Targets {
    let mut out = Targets::flat(data.market.candles.len());
    signals(p, data, &mut out);
    out
}

/// The risk genes `risk` of a program, as genes.
pub(crate) fn risk_view(risk: &[f64]) -> Genes<'_> {
    risk_spec()
        .unwrap_or_else(|e| panic!("built-in risk genes: {e}"))
        .view(risk)
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

    /// `m` with a daily Fear & Greed index of `days` days from the day before its first bar
    /// (value `i · step mod 101` on day `i`), so programs can read it.
    fn with_daily_fear_greed(m: Market, days: i64, step: i64) -> Market {
        let first_day = m.candles.ts[0].div_euclid(86_400_000);
        let fg = crate::market::csv::FearGreed {
            day: (first_day - 1..first_day - 1 + days).collect(),
            value: (0..days).map(|i| ((i * step) % 101) as u8).collect(),
        };
        m.with_fear_greed(&fg)
    }

    #[test]
    fn random_programs_never_look_ahead() {
        let m = synthetic::generate(&synthetic::SyntheticParams {
            bars: 600,
            ..Default::default()
        })
        .markets
        .remove(1);
        let m = with_daily_fear_greed(m, 31, 37);
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

    /// Programs as they were evaluated before conditions became bits and values were cached:
    /// one `Vec<bool>` or `Vec<f64>` per node, bar by bar, nothing shared. The column-wise
    /// evaluator must give the same value for every node.
    mod reference {
        use super::*;

        pub enum Old {
            Series(Vec<f64>),
            Cond(Vec<bool>),
        }

        fn series(v: Old) -> Vec<f64> {
            match v {
                Old::Series(s) => s,
                Old::Cond(c) => c.iter().map(|&b| f64::from(u8::from(b))).collect(),
            }
        }

        pub fn cond(v: Old) -> Vec<bool> {
            match v {
                Old::Cond(c) => c,
                Old::Series(s) => s.iter().map(|&x| x != 0.0 && !x.is_nan()).collect(),
            }
        }

        pub fn eval(node: &Node, data: &Prepared) -> Old {
            let n = data.market.candles.len();
            let arg = |i: usize| eval(&node.args[i], data);
            let s = |v: Arc<Vec<f64>>| Old::Series(v.to_vec());
            match node.op {
                Op::True => Old::Cond(vec![true; n]),
                Op::False => Old::Cond(vec![false; n]),
                Op::Const => Old::Series(vec![node.value; n]),
                Op::Add | Op::Sub => {
                    let (a, b) = (series(arg(0)), series(arg(1)));
                    let sign = if node.op == Op::Add { 1.0 } else { -1.0 };
                    Old::Series(a.iter().zip(&b).map(|(x, y)| x + sign * y).collect())
                }
                Op::If => {
                    let k = cond(arg(0));
                    match (arg(1), arg(2)) {
                        (Old::Cond(a), Old::Cond(b)) => {
                            Old::Cond((0..n).map(|t| if k[t] { a[t] } else { b[t] }).collect())
                        }
                        (a, b) => {
                            let (a, b) = (series(a), series(b));
                            Old::Series((0..n).map(|t| if k[t] { a[t] } else { b[t] }).collect())
                        }
                    }
                }
                Op::Not => Old::Cond(cond(arg(0)).into_iter().map(|b| !b).collect()),
                Op::And | Op::Or => {
                    let (a, b) = (cond(arg(0)), cond(arg(1)));
                    let and = node.op == Op::And;
                    Old::Cond(
                        a.iter()
                            .zip(&b)
                            .map(|(&x, &y)| if and { x && y } else { x || y })
                            .collect(),
                    )
                }
                Op::Gt | Op::Lt => {
                    let (a, b) = (series(arg(0)), series(arg(1)));
                    let gt = node.op == Op::Gt;
                    Old::Cond(
                        a.iter()
                            .zip(&b)
                            .map(|(x, y)| if gt { x > y } else { x < y })
                            .collect(),
                    )
                }
                Op::CrossAbove | Op::CrossBelow => {
                    let (a, b) = (series(arg(0)), series(arg(1)));
                    let above = node.op == Op::CrossAbove;
                    Old::Cond(
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
                        return Old::Cond(vec![false; n]);
                    };
                    let Ok(entry) = super::super::super::find(&call.seed) else {
                        return Old::Cond(vec![false; n]);
                    };
                    let sides = data.seed_sides(entry, &call.genes);
                    let want = if call.long { 1 } else { -1 };
                    Old::Cond(sides.iter().map(|&x| x == want).collect())
                }
                // The leaves that read a cached series.
                _ => s(data.get(series_key(node))),
            }
        }

        pub fn positions(p: &Program, data: &Prepared) -> Vec<f64> {
            let n = data.market.candles.len();
            let roots: Vec<Option<Vec<bool>>> = p
                .roots
                .iter()
                .map(|r| r.as_ref().map(|r| cond(eval(r, data))))
                .collect();
            let fires = |k: usize, t: usize| roots[k].as_ref().is_some_and(|c| c[t]);
            let mut pos = 0.0_f64;
            let mut out = vec![0.0; n];
            for (t, o) in out.iter_mut().enumerate() {
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
                *o = pos;
            }
            out
        }
    }

    /// Whether the column-wise value `new` is the reference value `old` at every bar: the same
    /// conditions, the same numbers (NaN for NaN; `add`'s arguments may come in either order,
    /// which can change only a NaN's payload).
    fn same(new: &Val, old: &reference::Old, n: usize) -> bool {
        let num = |a: f64, b: f64| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
        match (new, old) {
            (Val::Cond(b), reference::Old::Cond(c)) => {
                b.len() == n && c.len() == n && (0..n).all(|t| b.get(t) == c[t])
            }
            (Val::Series(s), reference::Old::Series(o)) => {
                s.len() == n && o.len() == n && s.iter().zip(o).all(|(&a, &b)| num(a, b))
            }
            (Val::Scalar(k), reference::Old::Series(o)) => {
                o.len() == n && o.iter().all(|&b| num(*k, b))
            }
            _ => false,
        }
    }

    fn subtrees<'a>(n: &'a Node, out: &mut Vec<&'a Node>) {
        out.push(n);
        for a in &n.args {
            subtrees(a, out);
        }
    }

    #[test]
    fn column_wise_values_are_the_bar_by_bar_ones_shared_or_not() {
        let m = synthetic::generate(&synthetic::SyntheticParams {
            bars: 333,
            ..Default::default()
        })
        .markets
        .remove(2);
        let m = with_daily_fear_greed(m, 21, 53);
        let n = m.candles.len();
        let shared = Prepared::new(m.clone());
        let g = Generator::new(rule_seed_specs(), 6).with_sentiment(true);
        let mut rng = ChaCha8Rng::seed_from_u64(23);
        let (mut hits, mut nodes, mut traded) = (0, 0, 0);
        for i in 0..1200 {
            let p = g.program(&mut rng);
            // Every fourth program is also evaluated alone, on a market with nothing kept.
            let fresh = (i % 4 == 0).then(|| Prepared::new(m.clone()));
            let want = reference::positions(&p, &shared);
            traded += usize::from(want.iter().any(|&x| x != 0.0));
            let text = crate::genome::program::print(&p, &lookup);
            for data in std::iter::once(&shared).chain(fresh.as_ref()) {
                let mut t = Targets::flat(n);
                signals(&p, data, &mut t);
                assert_eq!(t.position, want, "{text}");
            }
            let mut all = Vec::new();
            for r in p.roots.iter().flatten() {
                subtrees(r, &mut all);
            }
            for node in all {
                nodes += 1;
                hits += usize::from(shared.node(&node_key(node)).is_some());
                let old = reference::eval(node, &shared);
                assert!(same(&eval(node, &shared), &old, n), "{text}");
            }
        }
        // Not vacuous: programs trade, and the shared market answers many nodes from its cache.
        assert!(traded > 400, "{traded} of 1200 traded");
        assert!(hits > nodes / 4, "{hits} of {nodes} nodes were kept");
    }

    #[test]
    fn node_keys_merge_exactly_the_canonical_form_s_exact_rules() {
        let key = |text: &str| {
            let p = parse(&format!("(program (enter-long {text}))"), &lookup).unwrap();
            node_key(p.roots[0].as_ref().unwrap())
        };
        let a = key("(and (gt close (ema 5)) (lt (rsi 14) 30.0))");
        assert_eq!(a, key("(and (gt 30.0 (rsi 14)) (lt (ema 5) close))"));
        assert_eq!(a, key("(and (lt (ema 5) close) (gt 30.0 (rsi 14)))"));
        assert_ne!(a, key("(and (gt close (ema 6)) (lt (rsi 14) 30.0))"));
        assert_ne!(a, key("(or (gt close (ema 5)) (lt (rsi 14) 30.0))"));
        assert_ne!(a, key("(and (gt close (ema 5)) (lt (rsi 14) 30.5))"));
        // Subtraction and crossings are not symmetric.
        assert_ne!(
            key("(gt (sub close (ema 5)) (sma 3))"),
            key("(gt (sub (ema 5) close) (sma 3))")
        );
        assert_ne!(
            key("(cross-above close (ema 5))"),
            key("(cross-below (ema 5) close)")
        );
        assert_eq!(
            key("(gt (add close (ema 5)) (sma 3))"),
            key("(lt (sma 3) (add (ema 5) close))")
        );
        // A seed call's side and genes are part of its key.
        let s = |side: &str, fast: u32| {
            key(&format!("(seed ema_crossover {side} fast={fast} slow=20)"))
        };
        assert_eq!(s("long", 5), s("long", 5));
        assert_ne!(s("long", 5), s("short", 5));
        assert_ne!(s("long", 5), s("long", 6));
    }
}
