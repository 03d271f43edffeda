//! Typed strategy programs (strongly typed genetic programming): the expression trees, their text
//! syntax (an S-expression parser and printer that round-trip), and random typed generation.
//! Evaluation over market data lives with the seeds (`seeds::program`), because a program may
//! call any seed's signal.
//!
//! **Types** keep programs meaningful. Every node has one:
//!
//! | type | what | built from |
//! |---|---|---|
//! | `bool` | a condition per bar | `and or not if gt lt cross-above cross-below true false seed` |
//! | `price` | a price-scaled series | `close ema sma vwap donchian-upper donchian-lower midpoint`, `add sub if` |
//! | `osc` | an oscillator in 0..100 | `rsi stoch-k stoch-d`, constants, `add sub if` |
//! | `ratio` | a unitless series | `zscore ret funding funding-sma`, constants, `add sub if` |
//! | `period` | a look-back in bars, 2..=200 | integer constants only |
//!
//! A comparison joins two series of one type, so `(gt close (rsi 14))` is a type error. Every
//! type has a leaf (`close`, a constant, `funding`, `true` / `false` / a seed), and the period
//! arguments of an indicator are always leaves, so generation can always finish at any depth.
//!
//! **Syntax.** `(program (enter-long EXPR) (exit-long EXPR) (enter-short EXPR) (exit-short
//! EXPR))`; an absent root never fires. A seed's signal is `(seed NAME long|short GENE=VALUE
//! ...)`; genes not given take their defaults, and the printer writes every gene. Numbers are
//! constants of the type their place expects. Example:
//!
//! ```text
//! (program
//!   (enter-long (and (seed donchian_breakout long period=48) (lt (rsi 14) 70)
//!                    (lt (funding-sma 24) 0)))
//!   (exit-long (cross-below close (ema 50))))
//! ```

use std::fmt::Write as _;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::SeedSpec;

/// The type of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Ty {
    Bool,
    Price,
    Osc,
    Ratio,
    Period,
}

impl Ty {
    /// The series types that comparisons, arithmetic and `if` join.
    pub const SERIES: [Ty; 3] = [Ty::Price, Ty::Osc, Ty::Ratio];

    pub fn name(self) -> &'static str {
        match self {
            Ty::Bool => "bool",
            Ty::Price => "price",
            Ty::Osc => "osc",
            Ty::Ratio => "ratio",
            Ty::Period => "period",
        }
    }

    /// Bounds of a constant of this type (`None`: no constants).
    pub fn const_range(self) -> Option<(f64, f64)> {
        match self {
            Ty::Osc => Some((0.0, 100.0)),
            Ty::Ratio => Some((-3.0, 3.0)),
            Ty::Period => Some((2.0, 200.0)),
            Ty::Bool | Ty::Price => None,
        }
    }
}

/// What a node does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Op {
    And,
    Or,
    Not,
    If,
    Gt,
    Lt,
    CrossAbove,
    CrossBelow,
    True,
    False,
    /// A seed's own signal: long or short (see [`SeedCall`]).
    Seed,
    Close,
    Ema,
    Sma,
    Vwap,
    DonchianUpper,
    DonchianLower,
    /// `(highest high + lowest low) / 2`: the Ichimoku lines.
    Midpoint,
    Rsi,
    StochK,
    StochD,
    /// Z-score of the close over a window.
    Zscore,
    /// `close[t] / close[t−p] − 1`.
    Ret,
    /// The funding rate per bar.
    Funding,
    /// SMA of the funding rate per bar.
    FundingSma,
    Add,
    Sub,
    /// A constant of the node's type (`value`).
    Const,
    /// The Fear & Greed index (0–100), a day's value from the next day's first bar on; only
    /// when the data has it.
    FearGreed,
}

/// Every operator with its text name.
pub const OPS: [(Op, &str); 29] = [
    (Op::And, "and"),
    (Op::Or, "or"),
    (Op::Not, "not"),
    (Op::If, "if"),
    (Op::Gt, "gt"),
    (Op::Lt, "lt"),
    (Op::CrossAbove, "cross-above"),
    (Op::CrossBelow, "cross-below"),
    (Op::True, "true"),
    (Op::False, "false"),
    (Op::Seed, "seed"),
    (Op::Close, "close"),
    (Op::Ema, "ema"),
    (Op::Sma, "sma"),
    (Op::Vwap, "vwap"),
    (Op::DonchianUpper, "donchian-upper"),
    (Op::DonchianLower, "donchian-lower"),
    (Op::Midpoint, "midpoint"),
    (Op::Rsi, "rsi"),
    (Op::StochK, "stoch-k"),
    (Op::StochD, "stoch-d"),
    (Op::Zscore, "zscore"),
    (Op::Ret, "ret"),
    (Op::Funding, "funding"),
    (Op::FundingSma, "funding-sma"),
    (Op::Add, "add"),
    (Op::Sub, "sub"),
    (Op::Const, "const"),
    (Op::FearGreed, "fear-greed"),
];

impl Op {
    pub fn name(self) -> &'static str {
        OPS.iter().find(|(o, _)| *o == self).map_or("?", |(_, n)| n)
    }

    fn from_name(s: &str) -> Option<Op> {
        OPS.iter().find(|(_, n)| *n == s).map(|(o, _)| *o)
    }

    /// The type an operator produces, when it is fixed (`None` for `if`, `add`, `sub` and
    /// constants, whose type is their arguments' or their place's).
    pub fn fixed_type(self) -> Option<Ty> {
        use Op::*;
        Some(match self {
            And | Or | Not | Gt | Lt | CrossAbove | CrossBelow | True | False | Seed => Ty::Bool,
            Close | Ema | Sma | Vwap | DonchianUpper | DonchianLower | Midpoint => Ty::Price,
            Rsi | StochK | StochD | FearGreed => Ty::Osc,
            Zscore | Ret | Funding | FundingSma => Ty::Ratio,
            If | Add | Sub | Const => return None,
        })
    }

    /// Argument types of this operator producing `ty`; `unit` is the series type a comparison
    /// joins (ignored by other operators). `None` when the operator cannot produce `ty`.
    pub fn args(self, ty: Ty, unit: Ty) -> Option<Vec<Ty>> {
        use Op::*;
        let series = Ty::SERIES.contains(&ty);
        let v = match self {
            And | Or if ty == Ty::Bool => vec![Ty::Bool, Ty::Bool],
            Not if ty == Ty::Bool => vec![Ty::Bool],
            If if ty != Ty::Period => vec![Ty::Bool, ty, ty],
            Gt | Lt | CrossAbove | CrossBelow if ty == Ty::Bool && Ty::SERIES.contains(&unit) => {
                vec![unit, unit]
            }
            Add | Sub if series => vec![ty, ty],
            Const if ty.const_range().is_some() => vec![],
            Ema | Sma | Vwap | DonchianUpper | DonchianLower | Midpoint | Rsi | Zscore | Ret
            | FundingSma
                if self.fixed_type() == Some(ty) =>
            {
                vec![Ty::Period]
            }
            StochK | StochD if ty == Ty::Osc => vec![Ty::Period, Ty::Period],
            True | False | Seed | Close | Funding | FearGreed if self.fixed_type() == Some(ty) => {
                vec![]
            }
            _ => return None,
        };
        Some(v)
    }
}

/// A seed's signal used as a condition: the seed (by name), its genome, and the side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedCall {
    pub seed: String,
    pub genes: Vec<f64>,
    /// `true`: the seed wants to be long; `false`: short.
    pub long: bool,
}

/// One node of a program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub op: Op,
    pub ty: Ty,
    /// The value of a constant (a whole number for a period); 0 otherwise.
    pub value: f64,
    pub seed: Option<Box<SeedCall>>,
    pub args: Vec<Node>,
}

impl Node {
    /// Whether this subtree reads the Fear & Greed index.
    pub fn uses_sentiment(&self) -> bool {
        self.op == Op::FearGreed || self.args.iter().any(Node::uses_sentiment)
    }

    fn leaf(op: Op, ty: Ty) -> Self {
        Node {
            op,
            ty,
            value: 0.0,
            seed: None,
            args: Vec::new(),
        }
    }

    /// A constant of type `ty`.
    pub fn constant(ty: Ty, value: f64) -> Self {
        Node {
            value,
            ..Node::leaf(Op::Const, ty)
        }
    }

    /// Nodes in this subtree.
    pub fn size(&self) -> usize {
        1 + self.args.iter().map(Node::size).sum::<usize>()
    }

    /// Depth of this subtree (a leaf has depth 1).
    pub fn depth(&self) -> usize {
        1 + self.args.iter().map(Node::depth).max().unwrap_or(0)
    }

    /// The longest period any indicator of this subtree (or any seed genome's look-back) uses.
    pub fn longest_period(&self, specs: &dyn Fn(&str) -> Option<SeedSpec>) -> usize {
        let own = match (self.op, &self.seed) {
            (Op::Const, _) if self.ty == Ty::Period => self.value as usize,
            (Op::Seed, Some(s)) => specs(&s.seed)
                .and_then(|spec| spec.longest_lookback(&s.genes).map(|(_, p)| p))
                .unwrap_or(0),
            _ => 0,
        };
        self.args
            .iter()
            .map(|a| a.longest_period(specs))
            .fold(own, usize::max)
    }
}

/// The four roots of a program, in order: enter long, exit long, enter short, exit short.
pub const ROOTS: [&str; 4] = ["enter-long", "exit-long", "enter-short", "exit-short"];

/// A program: four optional boolean roots (an absent root never fires).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Program {
    pub roots: [Option<Node>; 4],
}

impl Program {
    /// Nodes in all roots.
    pub fn size(&self) -> usize {
        self.roots.iter().flatten().map(Node::size).sum()
    }
}

/// A syntax or type error, with its position in the text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Looks up a seed's gene spec by name (for `seed` terminals).
pub type SpecLookup<'a> = &'a dyn Fn(&str) -> Option<SeedSpec>;

#[derive(Debug, Clone)]
enum Sx {
    Atom(String, usize),
    List(Vec<Sx>, usize),
}

impl Sx {
    fn pos(&self) -> usize {
        match self {
            Sx::Atom(_, p) | Sx::List(_, p) => *p,
        }
    }
}

struct Parser<'a> {
    text: &'a str,
    specs: SpecLookup<'a>,
}

impl Parser<'_> {
    fn err(&self, pos: usize, message: impl Into<String>) -> ParseError {
        let before = &self.text[..pos.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before
            .rfind('\n')
            .map_or(before.len(), |i| before.len() - i - 1)
            + 1;
        ParseError {
            line,
            column,
            message: message.into(),
        }
    }

    fn read(&self) -> Result<Sx, ParseError> {
        let b = self.text.as_bytes();
        let mut stack: Vec<(Vec<Sx>, usize)> = Vec::new();
        let mut done: Option<Sx> = None;
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if c.is_ascii_whitespace() {
                i += 1;
                continue;
            }
            if c == b';' {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            if done.is_some() {
                return Err(self.err(i, "text after the end of the program"));
            }
            let item = match c {
                b'(' => {
                    stack.push((Vec::new(), i));
                    i += 1;
                    continue;
                }
                b')' => {
                    let Some((items, start)) = stack.pop() else {
                        return Err(self.err(i, "`)` without a matching `(`"));
                    };
                    i += 1;
                    Sx::List(items, start)
                }
                _ => {
                    let start = i;
                    while i < b.len() && !b[i].is_ascii_whitespace() && !b"();".contains(&b[i]) {
                        i += 1;
                    }
                    Sx::Atom(self.text[start..i].to_string(), start)
                }
            };
            match stack.last_mut() {
                Some((items, _)) => items.push(item),
                None => done = Some(item),
            }
        }
        if let Some((_, start)) = stack.last() {
            return Err(self.err(*start, "`(` is never closed"));
        }
        done.ok_or_else(|| self.err(0, "empty program"))
    }

    /// The type an expression has on its own, if it says (`None` for a bare number).
    fn infer(&self, sx: &Sx) -> Option<Ty> {
        match sx {
            Sx::Atom(a, _) => Op::from_name(a).and_then(Op::fixed_type),
            Sx::List(items, _) => {
                let head = match items.first() {
                    Some(Sx::Atom(h, _)) => Op::from_name(h)?,
                    _ => return None,
                };
                head.fixed_type().or_else(|| {
                    let skip = usize::from(head == Op::If) + 1;
                    items.iter().skip(skip).find_map(|a| self.infer(a))
                })
            }
        }
    }

    fn number(&self, a: &str, pos: usize, ty: Ty) -> Result<Node, ParseError> {
        let Some((lo, hi)) = ty.const_range() else {
            return Err(self.err(pos, format!("a {} cannot be a constant (`{a}`)", ty.name())));
        };
        let v: f64 = a
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| self.err(pos, format!("`{a}` is not a known name or a number")))?;
        if ty == Ty::Period && v.fract() != 0.0 {
            return Err(self.err(pos, format!("a period is a whole number of bars, not {a}")));
        }
        if !(lo..=hi).contains(&v) {
            return Err(self.err(
                pos,
                format!("{a} is outside the {} range [{lo}, {hi}]", ty.name()),
            ));
        }
        Ok(Node::constant(ty, v))
    }

    fn expr(&self, sx: &Sx, ty: Ty) -> Result<Node, ParseError> {
        let (head, head_pos, rest): (&str, usize, &[Sx]) = match sx {
            Sx::Atom(a, p) => (a.as_str(), *p, &[]),
            Sx::List(items, p) => match items.split_first() {
                Some((Sx::Atom(h, hp), rest)) => (h.as_str(), *hp, rest),
                Some((other, _)) => return Err(self.err(other.pos(), "expected an operator name")),
                None => return Err(self.err(*p, "empty list")),
            },
        };
        let Some(op) = Op::from_name(head) else {
            if let Sx::Atom(..) = sx {
                return self.number(head, head_pos, ty);
            }
            return Err(self.err(head_pos, format!("unknown operator `{head}`")));
        };
        if matches!(sx, Sx::Atom(..)) && op.args(ty, Ty::Price).is_some_and(|a| !a.is_empty()) {
            return Err(self.err(head_pos, format!("`{head}` needs arguments: ({head} ...)")));
        }
        if op == Op::Seed {
            return self.seed(rest, head_pos, ty);
        }
        if op == Op::Const {
            return Err(self.err(head_pos, "write a constant as a plain number"));
        }
        let unit = if matches!(op, Op::Gt | Op::Lt | Op::CrossAbove | Op::CrossBelow) {
            rest.iter().find_map(|a| self.infer(a)).ok_or_else(|| {
                self.err(
                    head_pos,
                    format!("`{head}` needs a series, not two numbers"),
                )
            })?
        } else {
            Ty::Price
        };
        let Some(arg_types) = op.args(ty, unit) else {
            let made = op
                .fixed_type()
                .map_or("a different type".to_string(), |t| t.name().to_string());
            return Err(self.err(
                head_pos,
                format!(
                    "`{head}` gives {made}, but a {} is expected here",
                    ty.name()
                ),
            ));
        };
        if arg_types.len() != rest.len() {
            return Err(self.err(
                head_pos,
                format!(
                    "`{head}` takes {} argument(s), got {}",
                    arg_types.len(),
                    rest.len()
                ),
            ));
        }
        let args = rest
            .iter()
            .zip(&arg_types)
            .map(|(a, &t)| self.expr(a, t))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Node {
            args,
            ..Node::leaf(op, ty)
        })
    }

    fn seed(&self, rest: &[Sx], pos: usize, ty: Ty) -> Result<Node, ParseError> {
        if ty != Ty::Bool {
            return Err(self.err(
                pos,
                format!("`seed` gives bool, but a {} is expected here", ty.name()),
            ));
        }
        let mut atoms = rest.iter().map(|a| match a {
            Sx::Atom(s, p) => Ok((s.as_str(), *p)),
            Sx::List(_, p) => {
                Err(self.err(*p, "seed arguments are NAME, long|short and GENE=VALUE"))
            }
        });
        let (name, npos) = atoms
            .next()
            .ok_or_else(|| self.err(pos, "`seed` needs a seed name"))??;
        let spec =
            (self.specs)(name).ok_or_else(|| self.err(npos, format!("unknown seed `{name}`")))?;
        let (side, spos) = atoms
            .next()
            .ok_or_else(|| self.err(npos, "`seed` needs a side: long or short"))??;
        let long = match side {
            "long" => true,
            "short" => false,
            _ => return Err(self.err(spos, format!("`{side}` is not a side: long or short"))),
        };
        let mut genes = spec.default_genome();
        for a in atoms {
            let (kv, p) = a?;
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| self.err(p, format!("`{kv}` is not GENE=VALUE")))?;
            spec.set(&mut genes, k, v)
                .map_err(|e| self.err(p, e.to_string()))?;
        }
        Ok(Node {
            seed: Some(Box::new(SeedCall {
                seed: spec.name.clone(),
                genes,
                long,
            })),
            ..Node::leaf(Op::Seed, Ty::Bool)
        })
    }

    fn program(&self, sx: &Sx) -> Result<Program, ParseError> {
        let Sx::List(items, p) = sx else {
            return Err(self.err(sx.pos(), "a program is (program (enter-long ...) ...)"));
        };
        match items.first() {
            Some(Sx::Atom(h, _)) if h == "program" => {}
            _ => return Err(self.err(*p, "a program starts with `(program`")),
        }
        let mut prog = Program::default();
        for item in &items[1..] {
            let Sx::List(parts, ip) = item else {
                return Err(self.err(item.pos(), "expected (enter-long EXPR) or another root"));
            };
            let (root, rpos) = match parts.first() {
                Some(Sx::Atom(r, rp)) => (r.as_str(), *rp),
                _ => return Err(self.err(*ip, "expected a root name")),
            };
            let Some(k) = ROOTS.iter().position(|r| *r == root) else {
                return Err(self.err(
                    rpos,
                    format!("unknown root `{root}` (roots: {})", ROOTS.join(", ")),
                ));
            };
            if prog.roots[k].is_some() {
                return Err(self.err(rpos, format!("root `{root}` is given twice")));
            }
            if parts.len() != 2 {
                return Err(self.err(rpos, format!("`{root}` takes one expression")));
            }
            prog.roots[k] = Some(self.expr(&parts[1], Ty::Bool)?);
        }
        Ok(prog)
    }
}

/// Parses a program (see the module documentation).
///
/// # Errors
/// [`ParseError`] with the line and column of the first syntax or type error.
pub fn parse(text: &str, specs: SpecLookup<'_>) -> Result<Program, ParseError> {
    let p = Parser { text, specs };
    let sx = p.read()?;
    p.program(&sx)
}

/// Parses one expression of type `ty` (for tests and tools).
///
/// # Errors
/// As [`parse`].
pub fn parse_expr(text: &str, ty: Ty, specs: SpecLookup<'_>) -> Result<Node, ParseError> {
    let p = Parser { text, specs };
    let sx = p.read()?;
    p.expr(&sx, ty)
}

/// Writes a node in the text syntax: constants exactly, every seed gene by name.
pub fn print_node(n: &Node, specs: SpecLookup<'_>, out: &mut String) {
    match n.op {
        Op::Const => {
            if n.ty == Ty::Period {
                let _ = write!(out, "{}", n.value as i64);
            } else {
                let _ = write!(out, "{:?}", n.value);
            }
        }
        Op::Seed => {
            let Some(s) = &n.seed else {
                out.push_str("false");
                return;
            };
            let _ = write!(
                out,
                "(seed {} {}",
                s.seed,
                if s.long { "long" } else { "short" }
            );
            // Genes at their defaults are left out (the parser fills them in).
            if let Some(spec) = specs(&s.seed) {
                for ((g, v), d) in spec.genes.iter().zip(&s.genes).zip(spec.default_genome()) {
                    if v.to_bits() == d.to_bits() {
                        continue;
                    }
                    let text = match g.kind {
                        super::GeneKind::Float => format!("{v:?}"),
                        _ => g.format(*v),
                    };
                    let _ = write!(out, " {}={text}", g.name);
                }
            }
            out.push(')');
        }
        _ if n.args.is_empty() => out.push_str(n.op.name()),
        _ => {
            out.push('(');
            out.push_str(n.op.name());
            for a in &n.args {
                out.push(' ');
                print_node(a, specs, out);
            }
            out.push(')');
        }
    }
}

/// The program in the text syntax, one root per line.
pub fn print(p: &Program, specs: SpecLookup<'_>) -> String {
    let mut s = String::from("(program");
    for (name, root) in ROOTS.iter().zip(&p.roots) {
        if let Some(r) = root {
            let _ = write!(s, "\n  ({name} ");
            print_node(r, specs, &mut s);
            s.push(')');
        }
    }
    s.push(')');
    s
}

/// A generated or mutated constant, to two decimals: readable, and no finer than any series'
/// meaningful resolution (oscillators run 0–100, ratios −3–3).
fn round_const(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Random typed generation.
pub struct Generator {
    /// The seeds whose signals are terminals, with their specs.
    pub seeds: Vec<SeedSpec>,
    /// Largest depth of a generated tree (period leaves under an indicator not counted).
    pub max_depth: usize,
    /// Genes at the end of every seed's genome that a `seed` terminal ignores (the shared risk
    /// genes: a program applies its own); mutation leaves them alone.
    pub inert_tail: usize,
    /// Whether the data has the Fear & Greed index (`fear-greed` is generated only then).
    pub sentiment: bool,
}

/// Operators that can produce `ty` (with a comparison unit when `ty` is bool), in a fixed order.
fn producers(ty: Ty, seeds: bool, sentiment: bool) -> Vec<(Op, Ty)> {
    let mut v = Vec::new();
    for &(op, _) in OPS.iter() {
        if (op == Op::Seed && !seeds) || (op == Op::FearGreed && !sentiment) {
            continue;
        }
        if matches!(op, Op::Gt | Op::Lt | Op::CrossAbove | Op::CrossBelow) {
            if ty == Ty::Bool {
                v.extend(Ty::SERIES.iter().map(|&u| (op, u)));
            }
        } else if op.args(ty, Ty::Price).is_some() {
            v.push((op, Ty::Price));
        }
    }
    v
}

/// Whether an expression's type can be read from its text alone (it holds a series operator,
/// not only constants): the rule the parser uses to type a comparison.
fn says_type(n: &Node) -> bool {
    match n.op {
        Op::Const => false,
        Op::If => n.args[1..].iter().any(says_type),
        Op::Add | Op::Sub => n.args.iter().any(says_type),
        _ => true,
    }
}

/// Whether a program's text says every type: each comparison has a side that is not only
/// constants (the parser's rule; a comparison of two numbers would have no unit). Variation
/// keeps it, so every program reads back from its text.
pub fn readable(p: &Program) -> bool {
    fn node(n: &Node) -> bool {
        let typed = !matches!(n.op, Op::Gt | Op::Lt | Op::CrossAbove | Op::CrossBelow)
            || n.args.iter().any(says_type);
        typed && n.args.iter().all(node)
    }
    p.roots.iter().flatten().all(node)
}

/// Whether an operator's arguments are all periods (it is a leaf for depth purposes).
fn leaf_like(op: Op, ty: Ty, unit: Ty) -> bool {
    op.args(ty, unit)
        .is_some_and(|a| a.iter().all(|&t| t == Ty::Period))
}

impl Generator {
    /// A generator over `seeds` with depth limit `max_depth`.
    pub fn new(seeds: Vec<SeedSpec>, max_depth: usize) -> Self {
        Self {
            seeds,
            max_depth: max_depth.max(1),
            inert_tail: 0,
            sentiment: false,
        }
    }

    /// The same generator, with `fear-greed` among the terminals when `on`.
    pub fn with_sentiment(mut self, on: bool) -> Self {
        self.sentiment = on;
        self
    }

    /// The same generator, told that the last `n` genes of every seed are inert in a terminal.
    pub fn with_inert_tail(mut self, n: usize) -> Self {
        self.inert_tail = n;
        self
    }

    /// A random constant of type `ty` (periods whole).
    pub fn constant<R: Rng>(&self, ty: Ty, rng: &mut R) -> Node {
        let (lo, hi) = ty.const_range().unwrap_or((0.0, 1.0));
        let v = if ty == Ty::Period {
            rng.gen_range(lo as i64..=hi as i64) as f64
        } else {
            round_const(rng.gen_range(lo..=hi))
        };
        Node::constant(ty, v)
    }

    /// A random tree of type `ty`: `full` grows every branch to `depth`, otherwise (grow) a
    /// branch may stop early. Never fails: every type has a leaf.
    pub fn tree<R: Rng>(&self, ty: Ty, depth: usize, full: bool, rng: &mut R) -> Node {
        if ty == Ty::Period {
            return self.constant(ty, rng);
        }
        let all = producers(ty, !self.seeds.is_empty(), self.sentiment);
        let leaves: Vec<(Op, Ty)> = all
            .iter()
            .copied()
            .filter(|&(o, u)| leaf_like(o, ty, u))
            .collect();
        let inner: Vec<(Op, Ty)> = all
            .iter()
            .copied()
            .filter(|&(o, u)| !leaf_like(o, ty, u))
            .collect();
        let pick_leaf = depth <= 1 || inner.is_empty() || (!full && rng.gen_bool(0.3));
        let pool = if pick_leaf { &leaves } else { &inner };
        let (op, unit) = pool[rng.gen_range(0..pool.len())];
        match op {
            Op::Const => return self.constant(ty, rng),
            Op::Seed => {
                let spec = &self.seeds[rng.gen_range(0..self.seeds.len())];
                return Node {
                    seed: Some(Box::new(SeedCall {
                        seed: spec.name.clone(),
                        genes: spec.default_genome(),
                        long: rng.gen_bool(0.5),
                    })),
                    ..Node::leaf(Op::Seed, Ty::Bool)
                };
            }
            _ => {}
        }
        let arg_types = op.args(ty, unit).unwrap_or_default();
        let mut args: Vec<Node> = arg_types
            .iter()
            .map(|&t| self.tree(t, depth.saturating_sub(1), full, rng))
            .collect();
        // A comparison's first side must be a series, not only constants: comparing two
        // numbers is a constant condition (and the text could not say the type).
        if matches!(op, Op::Gt | Op::Lt | Op::CrossAbove | Op::CrossBelow) && !says_type(&args[0]) {
            args[0] = self.series_leaf(unit, rng);
        }
        Node {
            args,
            ..Node::leaf(op, ty)
        }
    }

    /// A random non-constant leaf of series type `ty` (`close`, `rsi 14`, `funding`, ...).
    fn series_leaf<R: Rng>(&self, ty: Ty, rng: &mut R) -> Node {
        let leaves: Vec<Op> = producers(ty, false, self.sentiment)
            .into_iter()
            .map(|(o, _)| o)
            .filter(|&o| o != Op::Const && leaf_like(o, ty, Ty::Price))
            .collect();
        let op = leaves[rng.gen_range(0..leaves.len())];
        let args = op
            .args(ty, Ty::Price)
            .unwrap_or_default()
            .iter()
            .map(|&t| self.constant(t, rng))
            .collect();
        Node {
            args,
            ..Node::leaf(op, ty)
        }
    }

    /// A random program (ramped half-and-half: depth drawn from 2..=max_depth, full or grow at
    /// random); each root present with probability 3/4, at least one present.
    pub fn program<R: Rng>(&self, rng: &mut R) -> Program {
        let mut p = Program::default();
        for k in 0..4 {
            if rng.gen_bool(0.75) || (k == 3 && p.roots.iter().all(Option::is_none)) {
                let depth = rng.gen_range(2..=self.max_depth.max(2));
                p.roots[k] = Some(self.tree(Ty::Bool, depth, rng.gen_bool(0.5), rng));
            }
        }
        p
    }
}

/// Limits on program size, kept by every variation operator (a child over a limit is replaced
/// by its parent).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Deepest root (a leaf has depth 1).
    pub max_depth: usize,
    /// Most nodes in all roots together.
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 8,
            max_nodes: 120,
        }
    }
}

impl Limits {
    /// Whether `p` is within the limits.
    pub fn allow(&self, p: &Program) -> bool {
        p.size() <= self.max_nodes
            && p.roots
                .iter()
                .flatten()
                .all(|r| r.depth() <= self.max_depth)
    }
}

/// A node's address: the root index, then child indices.
pub type Path = (usize, Vec<usize>);

/// Every node of a program with its address and type, in depth-first order (period leaves
/// included).
pub fn nodes(p: &Program) -> Vec<(Path, Ty)> {
    fn walk(n: &Node, root: usize, path: &mut Vec<usize>, out: &mut Vec<(Path, Ty)>) {
        out.push(((root, path.clone()), n.ty));
        for (i, a) in n.args.iter().enumerate() {
            path.push(i);
            walk(a, root, path, out);
            path.pop();
        }
    }
    let mut out = Vec::new();
    for (k, r) in p.roots.iter().enumerate() {
        if let Some(r) = r {
            walk(r, k, &mut Vec::new(), &mut out);
        }
    }
    out
}

/// The node at `path` (which must come from [`nodes`] of the same program).
pub fn node_at<'a>(p: &'a Program, path: &Path) -> Option<&'a Node> {
    let mut n = p.roots[path.0].as_ref()?;
    for &i in &path.1 {
        n = n.args.get(i)?;
    }
    Some(n)
}

fn node_at_mut<'a>(p: &'a mut Program, path: &Path) -> Option<&'a mut Node> {
    let mut n = p.roots[path.0].as_mut()?;
    for &i in &path.1 {
        n = n.args.get_mut(i)?;
    }
    Some(n)
}

/// Operators interchangeable with `op` at a node of type `ty` whose arguments have types
/// `args` (for point mutation): same type, same argument types.
fn same_shape(op: Op, ty: Ty, args: &[Ty]) -> Vec<Op> {
    let unit = args.first().copied().unwrap_or(Ty::Price);
    OPS.iter()
        .map(|(o, _)| *o)
        .filter(|&o| o != op && !matches!(o, Op::Const | Op::Seed | Op::FearGreed))
        .filter(|&o| o.args(ty, unit).is_some_and(|a| a == args))
        .collect()
}

impl Generator {
    /// Type-respecting subtree crossover: a random node of `a` and a random node of `b` of the
    /// same type are swapped. A child over `limits`, or not [`readable`], is replaced by its
    /// parent.
    pub fn crossover<R: Rng>(
        &self,
        a: &Program,
        b: &Program,
        limits: &Limits,
        rng: &mut R,
    ) -> (Program, Program) {
        let (na, nb) = (nodes(a), nodes(b));
        if na.is_empty() || nb.is_empty() {
            return (a.clone(), b.clone());
        }
        let (pa, ty) = na[rng.gen_range(0..na.len())].clone();
        let same: Vec<&Path> = nb
            .iter()
            .filter(|(_, t)| *t == ty)
            .map(|(p, _)| p)
            .collect();
        if same.is_empty() {
            return (a.clone(), b.clone());
        }
        let pb = same[rng.gen_range(0..same.len())].clone();
        let (mut ca, mut cb) = (a.clone(), b.clone());
        let (sa, sb) = match (node_at(a, &pa), node_at(b, &pb)) {
            (Some(x), Some(y)) => (x.clone(), y.clone()),
            _ => return (ca, cb),
        };
        if let Some(slot) = node_at_mut(&mut ca, &pa) {
            *slot = sb;
        }
        if let Some(slot) = node_at_mut(&mut cb, &pb) {
            *slot = sa;
        }
        let keep = |c: Program, parent: &Program| {
            if limits.allow(&c) && readable(&c) {
                c
            } else {
                parent.clone()
            }
        };
        (keep(ca, a), keep(cb, b))
    }

    /// One random mutation, each kind with equal probability: **subtree** (a node replaced by a
    /// new random tree of its type, depth ≤ 3), **point** (an operator swapped for another of
    /// the same shape, e.g. `gt` ↔ `lt`, `ema` ↔ `sma`), **hoist** (a root replaced by one of its
    /// boolean subtrees), **constant** (a constant, period or `seed` terminal's gene moved within
    /// its range), or a **root** toggled (an absent root grown, a present one removed while
    /// another remains). A child over `limits`, or not [`readable`], is replaced by its parent.
    pub fn mutate<R: Rng>(&self, p: &Program, limits: &Limits, rng: &mut R) -> Program {
        let mut c = p.clone();
        let all = nodes(&c);
        match rng.gen_range(0..5) {
            0 if !all.is_empty() => {
                let (path, ty) = all[rng.gen_range(0..all.len())].clone();
                let fresh = self.tree(ty, rng.gen_range(1..=3), false, rng);
                if let Some(slot) = node_at_mut(&mut c, &path) {
                    *slot = fresh;
                }
            }
            1 => {
                let cands: Vec<(Path, Vec<Op>)> = all
                    .iter()
                    .filter_map(|(path, ty)| {
                        let n = node_at(&c, path)?;
                        let args: Vec<Ty> = n.args.iter().map(|a| a.ty).collect();
                        let alts = same_shape(n.op, *ty, &args);
                        (!alts.is_empty()).then(|| (path.clone(), alts))
                    })
                    .collect();
                if !cands.is_empty() {
                    let (path, alts) = cands[rng.gen_range(0..cands.len())].clone();
                    let op = alts[rng.gen_range(0..alts.len())];
                    if let Some(slot) = node_at_mut(&mut c, &path) {
                        // A constant or a seed call swapped for an operator keeps no value.
                        slot.op = op;
                        slot.value = 0.0;
                        slot.seed = None;
                    }
                }
            }
            2 => {
                let roots: Vec<usize> = (0..4).filter(|&k| c.roots[k].is_some()).collect();
                if !roots.is_empty() {
                    let k = roots[rng.gen_range(0..roots.len())];
                    let inner: Vec<Path> = all
                        .iter()
                        .filter(|((r, path), ty)| *r == k && !path.is_empty() && *ty == Ty::Bool)
                        .map(|(p, _)| p.clone())
                        .collect();
                    if !inner.is_empty() {
                        let path = &inner[rng.gen_range(0..inner.len())];
                        if let Some(sub) = node_at(&c, path).cloned() {
                            c.roots[k] = Some(sub);
                        }
                    }
                }
            }
            3 => {
                let consts: Vec<Path> = all
                    .iter()
                    .filter(|(path, _)| {
                        node_at(&c, path).is_some_and(|n| {
                            n.op == Op::Const || (n.op == Op::Seed && self.tunable(n).is_some())
                        })
                    })
                    .map(|(p, _)| p.clone())
                    .collect();
                if !consts.is_empty() {
                    let path = &consts[rng.gen_range(0..consts.len())];
                    if let Some(n) = node_at_mut(&mut c, path) {
                        if n.op == Op::Seed {
                            self.mutate_call(n, rng);
                        } else {
                            let (lo, hi) = n.ty.const_range().unwrap_or((0.0, 1.0));
                            let step = (hi - lo) * 0.1 * (rng.gen::<f64>() * 2.0 - 1.0);
                            let mut v = round_const((n.value + step).clamp(lo, hi));
                            if n.ty == Ty::Period {
                                v = v.round();
                                if v == n.value {
                                    v = (v + if step >= 0.0 { 1.0 } else { -1.0 }).clamp(lo, hi);
                                }
                            }
                            n.value = v;
                        }
                    }
                }
            }
            _ => {
                let k = rng.gen_range(0..4);
                let present = c.roots.iter().filter(|r| r.is_some()).count();
                if c.roots[k].is_some() && present > 1 {
                    c.roots[k] = None;
                } else if c.roots[k].is_none() {
                    c.roots[k] = Some(self.tree(Ty::Bool, rng.gen_range(2..=4), false, rng));
                }
            }
        }
        if limits.allow(&c) && readable(&c) {
            c
        } else {
            p.clone()
        }
    }
}

impl Generator {
    /// The spec of a `seed` terminal and how many of its genes mutation may move.
    fn tunable(&self, n: &Node) -> Option<(&SeedSpec, usize)> {
        let call = n.seed.as_ref()?;
        let spec = self.seeds.iter().find(|s| s.name == call.seed)?;
        let k = spec.genes.len().saturating_sub(self.inert_tail);
        (k > 0 && call.genes.len() == spec.genes.len()).then_some((spec, k))
    }

    /// Moves one gene of a `seed` terminal's genome: a number by up to a tenth of its range
    /// (a whole number by at least 1), a choice to another choice; then the seed's repair.
    fn mutate_call<R: Rng>(&self, n: &mut Node, rng: &mut R) {
        let Some((spec, k)) = self.tunable(n) else {
            return;
        };
        let Some(call) = n.seed.as_mut() else {
            return;
        };
        let i = rng.gen_range(0..k);
        let g = &spec.genes[i];
        let x = call.genes[i];
        call.genes[i] = match g.kind {
            super::GeneKind::Choice => {
                let m = g.choices.len();
                if m > 1 {
                    let j = rng.gen_range(0..m - 1);
                    let cur = x as usize;
                    (if j >= cur { j + 1 } else { j }) as f64
                } else {
                    x
                }
            }
            kind => {
                let step = (g.max - g.min) * 0.1 * (rng.gen::<f64>() * 2.0 - 1.0);
                let mut v = (x + step).clamp(g.min, g.max);
                if kind == super::GeneKind::Int {
                    v = v.round();
                    if v == x {
                        v = (v + if step >= 0.0 { 1.0 } else { -1.0 }).clamp(g.min, g.max);
                    }
                }
                v
            }
        };
        spec.repair(&mut call.genes);
    }
}

/// A seed's own trading as a program: long while the seed says long, short while it says short,
/// flat otherwise (the seed's signal for `genes` in all four roots). Its risk genes are the
/// program's own; the seed's position scaling and its own stop levels are not carried over.
pub fn seed_program(spec: &SeedSpec, genes: &[f64]) -> Program {
    let call = |long: bool| Node {
        seed: Some(Box::new(SeedCall {
            seed: spec.name.clone(),
            genes: genes.to_vec(),
            long,
        })),
        ..Node::leaf(Op::Seed, Ty::Bool)
    };
    let not = |n: Node| Node {
        args: vec![n],
        ..Node::leaf(Op::Not, Ty::Bool)
    };
    Program {
        roots: [
            Some(call(true)),
            Some(not(call(true))),
            Some(call(false)),
            Some(not(call(false))),
        ],
    }
}

/// The canonical form of a node: arguments of commutative operators (`and`, `or`, `add`) in
/// order of their canonical text, `gt a b` written as `lt b a`, double negations and `if` on a
/// constant condition removed, so programs that differ only in those ways are one program.
pub fn canonical_node(n: &Node, specs: SpecLookup<'_>) -> Node {
    let mut args: Vec<Node> = n.args.iter().map(|a| canonical_node(a, specs)).collect();
    // Exact simplifications: `(not (not x))` is `x`; `(if true a b)` is `a`, `(if false a b)`
    // is `b`.
    match (n.op, args.first().map(|a| a.op)) {
        (Op::Not, Some(Op::Not)) => return args.swap_remove(0).args.swap_remove(0),
        (Op::If, Some(Op::True)) => return args.swap_remove(1),
        (Op::If, Some(Op::False)) => return args.swap_remove(2),
        _ => {}
    }
    let mut op = n.op;
    if op == Op::Gt {
        op = Op::Lt;
        args.swap(0, 1);
    }
    if matches!(op, Op::And | Op::Or | Op::Add) {
        let text = |x: &Node| {
            let mut s = String::new();
            print_node(x, specs, &mut s);
            s
        };
        args.sort_by_key(|a| text(a));
    }
    Node {
        op,
        args,
        ..n.clone()
    }
}

/// The canonical text of a program (see [`canonical_node`]): the key under which its fitness is
/// cached, so equal programs are evaluated once.
pub fn canonical(p: &Program, specs: SpecLookup<'_>) -> String {
    print(&canonical_program(p, specs), specs)
}

/// The program in canonical form (see [`canonical_node`]). It trades exactly as `p`; its text
/// may not parse (a comparison whose typed side was simplified away leaves two numbers).
pub fn canonical_program(p: &Program, specs: SpecLookup<'_>) -> Program {
    Program {
        roots: p
            .roots
            .clone()
            .map(|r| r.map(|r| canonical_node(&r, specs))),
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn spec() -> SeedSpec {
        let text = r#"
name = "toy"
description = "a toy seed"
[[genes]]
name = "period"
kind = "int"
lookback = true
min = 2
max = 50
default = 10
meaning = "period (bars)"
[[genes]]
name = "level"
kind = "float"
min = 0.0
max = 1.0
default = 0.5
meaning = "a level"
"#;
        SeedSpec::parse("toy.toml", text, &[]).unwrap()
    }

    fn lookup(name: &str) -> Option<SeedSpec> {
        (name == "toy").then(spec)
    }

    #[test]
    fn a_hand_written_program_parses_and_prints_back() {
        let text = "(program\n  (enter-long (and (seed toy long period=20) (lt (rsi 14) 70.0)))\n  (exit-long (cross-below close (ema 50))))";
        let p = parse(text, &lookup).unwrap();
        let e = p.roots[0].as_ref().unwrap();
        assert_eq!((e.op, e.args.len()), (Op::And, 2));
        let s = e.args[0].seed.as_ref().unwrap();
        assert_eq!(
            (s.seed.as_str(), s.long, s.genes.clone()),
            ("toy", true, vec![20.0, 0.5])
        );
        assert_eq!(e.args[1].args[0].ty, Ty::Osc);
        assert_eq!(e.args[1].args[1].value, 70.0);
        assert!(p.roots[2].is_none());
        // Genes at their defaults (level=0.5) are left out: the text prints back as written.
        let printed = print(&p, &lookup);
        assert_eq!(printed, text);
        assert_eq!(parse(&printed, &lookup).unwrap(), p);
        assert_eq!(p.roots[0].as_ref().unwrap().longest_period(&lookup), 20);
        assert_eq!(p.size(), 10);
    }

    #[test]
    fn type_and_syntax_errors_name_the_position() {
        let cases = [
            (
                "(program (enter-long (gt close (rsi 14))))",
                1,
                33,
                "`rsi` gives osc, but a price is expected",
            ),
            (
                "(program (enter-long (gt 1 2)))",
                1,
                23,
                "needs a series, not two numbers",
            ),
            (
                "(program (enter-long (lt (rsi 14) 170)))",
                1,
                35,
                "outside the osc range",
            ),
            (
                "(program (enter-long (gt close 100)))",
                1,
                32,
                "a price cannot be a constant",
            ),
            (
                "(program (enter-long (lt (ema 2.5) close)))",
                1,
                31,
                "whole number",
            ),
            (
                "(program\n  (enter-long (and true)))",
                2,
                16,
                "takes 2 argument(s), got 1",
            ),
            (
                "(program (enter-long (seed nope long)))",
                1,
                28,
                "unknown seed `nope`",
            ),
            ("(program (enter-long (seed toy up)))", 1, 32, "not a side"),
            (
                "(program (enter-long (seed toy long period=99)))",
                1,
                37,
                "out of bounds",
            ),
            (
                "(program (enter-long close))",
                1,
                22,
                "`close` gives price, but a bool is expected",
            ),
            ("(program (enter-long true)", 1, 1, "never closed"),
            ("(program (hold true))", 1, 11, "unknown root `hold`"),
            ("(program (enter-long true)) x", 1, 29, "text after the end"),
            (
                "(program (enter-long (foo 1)))",
                1,
                23,
                "unknown operator `foo`",
            ),
        ];
        for (text, line, column, msg) in cases {
            let e = parse(text, &lookup).unwrap_err();
            assert!(e.message.contains(msg), "{text}: {e}");
            assert_eq!((e.line, e.column), (line, column), "{text}: {e}");
        }
    }

    #[test]
    fn random_programs_round_trip_and_respect_types_and_depth() {
        let g = Generator::new(vec![spec()], 6).with_sentiment(true);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut seen_ops = std::collections::BTreeSet::new();
        for _ in 0..2000 {
            let p = g.program(&mut rng);
            assert!(p.roots.iter().any(Option::is_some));
            for r in p.roots.iter().flatten() {
                assert_eq!(r.ty, Ty::Bool);
                assert!(r.depth() <= 6 + 1, "depth {}", r.depth());
                check_types(r, &mut seen_ops);
            }
            let text = print(&p, &lookup);
            let back = parse(&text, &lookup).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(back, p, "{text}");
            assert_eq!(print(&back, &lookup), text);
        }
        // Every operator appears somewhere.
        assert_eq!(seen_ops.len(), OPS.len(), "{seen_ops:?}");
    }

    #[test]
    fn variation_keeps_types_and_limits_and_is_deterministic() {
        let g = Generator::new(vec![spec()], 6);
        let limits = Limits {
            max_depth: 8,
            max_nodes: 60,
        };
        let run = |seed: u64| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut pop: Vec<Program> = (0..40)
                .map(|_| loop {
                    let p = g.program(&mut rng);
                    if limits.allow(&p) {
                        break p;
                    }
                })
                .collect();
            let mut changed = 0;
            for _ in 0..30 {
                let mut next = Vec::new();
                for pair in pop.chunks(2) {
                    let (a, b) = g.crossover(&pair[0], &pair[1], &limits, &mut rng);
                    for (child, parent) in [(a, &pair[0]), (b, &pair[1])] {
                        let m = g.mutate(&child, &limits, &mut rng);
                        changed += usize::from(&m != parent);
                        // Every child reads back from its text (a checkpoint stores it so).
                        let text = print(&m, &lookup);
                        assert_eq!(parse(&text, &lookup).as_ref(), Ok(&m), "{text}");
                        next.push(m);
                    }
                }
                pop = next;
            }
            (pop, changed)
        };
        for seed in 6..12 {
            run(seed);
        }
        let (pop, changed) = run(5);
        // Most offspring differ from their parent.
        assert!(changed > 40 * 30 / 2, "{changed}");
        let mut seen = std::collections::BTreeSet::new();
        for p in &pop {
            assert!(limits.allow(p));
            assert!(p.roots.iter().any(Option::is_some));
            for r in p.roots.iter().flatten() {
                assert_eq!(r.ty, Ty::Bool);
                check_types(r, &mut seen);
            }
            let text = print(p, &lookup);
            assert_eq!(parse(&text, &lookup).as_ref(), Ok(p), "{text}");
        }
        // The same seed gives the same population.
        assert_eq!(run(5).0, pop);
    }

    #[test]
    fn canonical_form_merges_reordered_programs() {
        let a = parse(
            "(program (enter-long (and (gt close (ema 5)) (lt (rsi 14) 30.0))))",
            &lookup,
        )
        .unwrap();
        let b = parse(
            "(program (enter-long (and (gt 30.0 (rsi 14)) (lt (ema 5) close))))",
            &lookup,
        )
        .unwrap();
        let c = parse(
            "(program (enter-long (and (gt close (ema 6)) (lt (rsi 14) 30.0))))",
            &lookup,
        )
        .unwrap();
        assert_eq!(canonical(&a, &lookup), canonical(&b, &lookup));
        assert_ne!(canonical(&a, &lookup), canonical(&c, &lookup));
        assert_eq!(
            canonical(&a, &lookup),
            "(program\n  (enter-long (and (lt (ema 5) close) (lt (rsi 14) 30.0))))"
        );
        // The canonical text is itself a program with the same canonical form.
        let again = parse(&canonical(&a, &lookup), &lookup).unwrap();
        assert_eq!(canonical(&again, &lookup), canonical(&a, &lookup));
        // Double negations and `if` on a constant condition go.
        let d = parse(
            "(program (enter-long (not (not (and (if true (gt close (ema 5)) false) \
             (if false (gt close (ema 9)) (lt (rsi 14) 30.0)))))))",
            &lookup,
        )
        .unwrap();
        assert_eq!(canonical(&d, &lookup), canonical(&a, &lookup));
    }

    fn check_types(n: &Node, seen: &mut std::collections::BTreeSet<Op>) {
        seen.insert(n.op);
        let unit = n.args.first().map_or(Ty::Price, |a| a.ty);
        let want = n.op.args(n.ty, unit).expect("operator produces its type");
        let got: Vec<Ty> = n.args.iter().map(|a| a.ty).collect();
        assert_eq!(got, want, "{:?}", n.op);
        if n.op == Op::Const {
            let (lo, hi) = n.ty.const_range().unwrap();
            assert!((lo..=hi).contains(&n.value));
        }
        for a in &n.args {
            check_types(a, seen);
        }
    }

    #[test]
    fn generation_never_fails_for_any_type_or_depth() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for seeds in [vec![], vec![spec()]] {
            let g = Generator::new(seeds, 8);
            for ty in [Ty::Bool, Ty::Price, Ty::Osc, Ty::Ratio, Ty::Period] {
                for depth in 0..=8 {
                    for full in [false, true] {
                        let n = g.tree(ty, depth, full, &mut rng);
                        assert_eq!(n.ty, ty);
                        assert!(n.depth() <= depth.max(1) + 1);
                        assert!(!n.uses_sentiment(), "fear-greed without the index");
                    }
                }
            }
        }
        // With the index, `fear-greed` is among the oscillator terminals.
        let g = Generator::new(vec![], 4).with_sentiment(true);
        let hits = (0..500)
            .filter(|_| g.tree(Ty::Bool, 4, false, &mut rng).uses_sentiment())
            .count();
        assert!(hits > 0, "fear-greed never generated");
        let p = parse("(program (enter-long (lt fear-greed 25.0)))", &lookup).unwrap();
        assert_eq!(p.roots[0].as_ref().unwrap().args[0].ty, Ty::Osc);
    }
}
