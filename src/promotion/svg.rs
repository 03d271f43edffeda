//! Small SVG charts written by hand: line charts over time with markers and boundaries, a
//! scatter plot and a heat map. Self-contained text, no JavaScript, no network.
//!
//! Every data element carries a class, so a reader (or a test) can count them: `series`
//! (one `polyline` per series), `entry` / `exit` (trade markers), `boundary` (vertical lines
//! between data segments), `point` (scatter points), `cell` (heat-map cells), `bar`
//! (histogram bars) and `mark` (a marked value on a histogram).

use std::fmt::Write as _;

/// Width and height of every chart, in SVG units.
pub const WIDTH: f64 = 900.0;
pub const HEIGHT: f64 = 260.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 34.0;
/// Longest polyline drawn: longer series keep each bucket's first, lowest and highest point.
const MAX_POINTS: usize = 3000;

/// Escapes text for XML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub color: &'static str,
    pub x: Vec<f64>,
    pub y: Vec<f64>,
}

/// A trade marker.
#[derive(Debug, Clone, Copy)]
pub struct Marker {
    pub x: f64,
    pub y: f64,
    /// `true`: an entry (triangle up for long, down for short); `false`: an exit (circle).
    pub entry: bool,
    pub long: bool,
}

/// A line chart; x values are UTC milliseconds when `time_axis`, else plain numbers.
#[derive(Debug, Clone, Default)]
pub struct LineChart {
    pub title: String,
    pub series: Vec<Series>,
    pub markers: Vec<Marker>,
    /// Vertical lines at x with a label (segment boundaries).
    pub boundaries: Vec<(f64, String)>,
    pub time_axis: bool,
    /// Format y ticks as percentages.
    pub percent: bool,
}

struct Frame {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
}

impl Frame {
    fn new(xs: impl Iterator<Item = f64> + Clone, ys: impl Iterator<Item = f64> + Clone) -> Self {
        let fin = |v: &f64| v.is_finite();
        let (mut x0, mut x1) = xs
            .clone()
            .filter(fin)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
        let (mut y0, mut y1) = ys
            .filter(fin)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
        if !x0.is_finite() {
            (x0, x1) = (0.0, 1.0);
        }
        if !y0.is_finite() {
            (y0, y1) = (0.0, 1.0);
        }
        if x1 <= x0 {
            x1 = x0 + 1.0;
        }
        if y1 <= y0 {
            let pad = y0.abs().max(1.0) * 0.05;
            (y0, y1) = (y0 - pad, y1 + pad);
        } else {
            let pad = (y1 - y0) * 0.04;
            (y0, y1) = (y0 - pad, y1 + pad);
        }
        Self { x0, x1, y0, y1 }
    }
    fn px(&self, x: f64) -> f64 {
        LEFT + (x - self.x0) / (self.x1 - self.x0) * (WIDTH - LEFT - RIGHT)
    }
    fn py(&self, y: f64) -> f64 {
        TOP + (self.y1 - y) / (self.y1 - self.y0) * (HEIGHT - TOP - BOTTOM)
    }
}

fn date(ms: f64) -> String {
    let (y, m, d, _, _) = crate::market::civil(ms as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

fn tick_label(v: f64, percent: bool) -> String {
    if percent {
        format!("{:.1}%", v * 100.0)
    } else if v.abs() >= 1e4 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn open(s: &mut String, title: &str) {
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="11"><text x="{LEFT}" y="16" font-size="13" font-weight="bold">{}</text>"#,
        esc(title)
    );
}

/// A plain number for an axis whose ticks are `step` apart: enough decimals to tell the ticks
/// apart (drawdowns of 0.10 to 0.30 are not all `0`).
fn number_label(v: f64, step: f64) -> String {
    let decimals = if step > 0.0 && step.is_finite() {
        (-(step.log10().floor()) + 1.0).clamp(0.0, 6.0) as usize
    } else {
        1
    };
    let d = if v.abs() >= 1e4 { 0 } else { decimals };
    format!("{v:.d$}")
}

/// How an axis' ticks read.
#[derive(Clone, Copy, PartialEq)]
enum Ticks {
    /// Numbers with the decimals the tick step needs.
    Number,
    /// Percentages.
    Percent,
    /// Whole counts.
    Count,
}

fn axes(s: &mut String, f: &Frame, time_axis: bool, percent: bool) {
    axes_with(
        s,
        f,
        time_axis,
        if percent {
            Ticks::Percent
        } else {
            Ticks::Number
        },
    );
}

fn axes_with(s: &mut String, f: &Frame, time_axis: bool, y_ticks: Ticks) {
    let (l, r, t, b) = (LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM);
    let _ = write!(
        s,
        r##"<rect x="{l}" y="{t}" width="{}" height="{}" fill="none" stroke="#999"/>"##,
        r - l,
        b - t
    );
    for i in 0..=4 {
        let v = f.y0 + (f.y1 - f.y0) * f64::from(i) / 4.0;
        let y = f.py(v);
        let label = match y_ticks {
            Ticks::Percent => tick_label(v, true),
            Ticks::Count => format!("{}", v.round()),
            Ticks::Number => tick_label(v, false),
        };
        let _ = write!(
            s,
            r##"<line x1="{l}" x2="{r}" y1="{y:.1}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            l - 4.0,
            y + 4.0,
            label
        );
    }
    for i in 0..=4 {
        let v = f.x0 + (f.x1 - f.x0) * f64::from(i) / 4.0;
        let x = f.px(v);
        let label = if time_axis {
            date(v)
        } else {
            number_label(v, (f.x1 - f.x0) / 4.0)
        };
        // The last label ends at the frame's right edge instead of running past the picture.
        let anchor = if i == 4 { "end" } else { "middle" };
        let _ = write!(
            s,
            r#"<text x="{x:.1}" y="{}" text-anchor="{anchor}">{label}</text>"#,
            b + 16.0
        );
    }
}

/// Indices of the points drawn: all for short series; for long ones each bucket's first, lowest
/// and highest point, in order.
fn thin(y: &[f64]) -> Vec<usize> {
    let n = y.len();
    if n <= MAX_POINTS {
        return (0..n).collect();
    }
    let buckets = MAX_POINTS / 3;
    let mut out = Vec::with_capacity(MAX_POINTS + 1);
    for b in 0..buckets {
        let (a, e) = (b * n / buckets, ((b + 1) * n / buckets).min(n));
        if a >= e {
            continue;
        }
        let (mut lo, mut hi) = (a, a);
        for i in a..e {
            if y[i] < y[lo] {
                lo = i;
            }
            if y[i] > y[hi] {
                hi = i;
            }
        }
        let mut idx = [a, lo, hi];
        idx.sort_unstable();
        for i in idx {
            if out.last() != Some(&i) {
                out.push(i);
            }
        }
    }
    if out.last() != Some(&(n - 1)) {
        out.push(n - 1);
    }
    out
}

impl LineChart {
    /// The chart as an `<svg>` element.
    pub fn svg(&self) -> String {
        let xs = self.series.iter().flat_map(|s| s.x.iter().copied());
        let ys = self.series.iter().flat_map(|s| s.y.iter().copied());
        let f = Frame::new(xs, ys);
        let mut s = String::new();
        open(&mut s, &self.title);
        axes(&mut s, &f, self.time_axis, self.percent);
        // The legend at the right, spaced by the longest name so it stays clear of the title.
        let longest = self.series.iter().map(|s| s.name.chars().count()).max();
        let spacing = (longest.unwrap_or(0) as f64 * 7.5 + 24.0).min(150.0);
        for (i, se) in self.series.iter().enumerate() {
            let mut pts = String::new();
            for j in thin(&se.y) {
                if se.x[j].is_finite() && se.y[j].is_finite() {
                    let _ = write!(pts, "{:.1},{:.1} ", f.px(se.x[j]), f.py(se.y[j]));
                }
            }
            let _ = write!(
                s,
                r#"<polyline class="series" data-points="{}" fill="none" stroke="{}" stroke-width="1.2" points="{}"/>"#,
                se.y.len(),
                se.color,
                pts.trim_end()
            );
            let _ = write!(
                s,
                r#"<text x="{}" y="16" fill="{}">{}</text>"#,
                WIDTH - RIGHT - spacing * (self.series.len() - i) as f64 + 10.0,
                se.color,
                esc(&se.name)
            );
        }
        for m in &self.markers {
            let (x, y) = (f.px(m.x), f.py(m.y));
            let color = if m.long { "#1a7f37" } else { "#cf222e" };
            if m.entry {
                let d = if m.long { 5.0 } else { -5.0 };
                let _ = write!(
                    s,
                    r#"<path class="entry" d="M{x:.1},{:.1} l-4,{:.1} h8 z" fill="{color}"/>"#,
                    y - d,
                    2.0 * d
                );
            } else {
                let _ = write!(
                    s,
                    r##"<circle class="exit" cx="{x:.1}" cy="{y:.1}" r="3" fill="none" stroke="#333"/>"##
                );
            }
        }
        for (x, label) in &self.boundaries {
            if *x < f.x0 || *x > f.x1 {
                continue;
            }
            let px = f.px(*x);
            let _ = write!(
                s,
                r##"<line class="boundary" x1="{px:.1}" x2="{px:.1}" y1="{TOP}" y2="{}" stroke="#8250df" stroke-dasharray="4 3"/><text x="{:.1}" y="{}" fill="#8250df">{}</text>"##,
                HEIGHT - BOTTOM,
                px + 3.0,
                TOP + 12.0,
                esc(label)
            );
        }
        s.push_str("</svg>");
        s
    }
}

/// A scatter plot of labelled points, `(x, y, label, color)`.
pub fn scatter(
    title: &str,
    x_name: &str,
    y_name: &str,
    points: &[(f64, f64, String, &str)],
) -> String {
    let f = Frame::new(points.iter().map(|p| p.0), points.iter().map(|p| p.1));
    let mut s = String::new();
    open(&mut s, title);
    axes(&mut s, &f, false, false);
    for (x, y, label, color) in points {
        if !(x.is_finite() && y.is_finite()) {
            continue;
        }
        let _ = write!(
            s,
            r#"<circle class="point" cx="{:.1}" cy="{:.1}" r="4" fill="{color}" fill-opacity="0.7"><title>{}</title></circle>"#,
            f.px(*x),
            f.py(*y),
            esc(label)
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="end">{}</text><text x="12" y="{}" transform="rotate(-90 12 {})" text-anchor="middle">{}</text>"#,
        WIDTH - RIGHT,
        HEIGHT - 4.0,
        esc(x_name),
        HEIGHT / 2.0,
        HEIGHT / 2.0,
        esc(y_name)
    );
    s.push_str("</svg>");
    s
}

/// A histogram of `values` in `bins` equal bins, with `mark` (a value and its label) drawn as a
/// vertical line: where one figure stands in a distribution.
pub fn histogram(title: &str, values: &[f64], bins: usize, mark: (f64, &str)) -> String {
    let fin: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let lo = fin.iter().copied().fold(mark.0, f64::min);
    let hi = fin.iter().copied().fold(mark.0, f64::max);
    let bins = bins.max(1);
    let width = if hi > lo {
        (hi - lo) / bins as f64
    } else {
        1.0
    };
    let mut counts = vec![0usize; bins];
    for v in &fin {
        let b = (((v - lo) / width) as usize).min(bins - 1);
        counts[b] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let mut f = Frame::new(
        [lo, lo + width * bins as f64].into_iter(),
        [0.0, top].into_iter(),
    );
    // Counts start at 0 and are whole: four ticks of a whole step.
    f.y0 = 0.0;
    f.y1 = (top / 4.0).ceil() * 4.0;
    let mut s = String::new();
    open(&mut s, title);
    axes_with(&mut s, &f, false, Ticks::Count);
    for (b, &c) in counts.iter().enumerate() {
        let x0 = f.px(lo + width * b as f64);
        let x1 = f.px(lo + width * (b + 1) as f64);
        let (y0, y1) = (f.py(c as f64), f.py(0.0));
        let _ = write!(
            s,
            r##"<rect class="bar" data-count="{c}" x="{x0:.1}" y="{y0:.1}" width="{:.1}" height="{:.1}" fill="#9ab" stroke="#fff"/>"##,
            (x1 - x0).max(0.5),
            (y1 - y0).max(0.0)
        );
    }
    if mark.0.is_finite() {
        let px = f.px(mark.0);
        // The label goes on the side of the line where it fits (about 6.5 px a character).
        let fits_right = px + 4.0 + 6.5 * mark.1.chars().count() as f64 <= WIDTH;
        let (tx, anchor) = if fits_right {
            (px + 4.0, "start")
        } else {
            (px - 4.0, "end")
        };
        let _ = write!(
            s,
            r##"<line class="mark" x1="{px:.1}" x2="{px:.1}" y1="{TOP}" y2="{}" stroke="#cf222e" stroke-width="2"/><text x="{tx:.1}" y="{}" fill="#cf222e" text-anchor="{anchor}">{}</text>"##,
            HEIGHT - BOTTOM,
            TOP + 12.0,
            esc(mark.1)
        );
    }
    s.push_str("</svg>");
    s
}

/// A heat map of monthly returns: one row per year, one cell per month with data.
pub fn monthly_heatmap(title: &str, months: &[(i64, u32, f64)]) -> String {
    let years: Vec<i64> = {
        let mut y: Vec<i64> = months.iter().map(|m| m.0).collect();
        y.dedup();
        y
    };
    let cell_w = (WIDTH - LEFT - RIGHT) / 12.0;
    let cell_h = 22.0;
    let h = TOP + 20.0 + cell_h * years.len() as f64 + 10.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {h}" width="{WIDTH}" height="{h}" font-family="sans-serif" font-size="11"><text x="{LEFT}" y="16" font-size="13" font-weight="bold">{}</text>"#,
        esc(title)
    );
    for (i, name) in [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .enumerate()
    {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{name}</text>"#,
            LEFT + cell_w * (i as f64 + 0.5),
            TOP + 12.0
        );
    }
    let scale = months
        .iter()
        .map(|m| m.2.abs())
        .fold(0.0_f64, f64::max)
        .max(1e-9);
    for &(y, m, r) in months {
        let row = years.iter().position(|&v| v == y).unwrap_or(0) as f64;
        let x = LEFT + cell_w * f64::from(m - 1);
        let yy = TOP + 20.0 + cell_h * row;
        let a = (r.abs() / scale).clamp(0.0, 1.0);
        let color = if r >= 0.0 {
            format!("rgba(26,127,55,{a:.3})")
        } else {
            format!("rgba(207,34,46,{a:.3})")
        };
        let _ = write!(
            s,
            r##"<rect class="cell" data-month="{y:04}-{m:02}" data-return="{r}" x="{x:.1}" y="{yy:.1}" width="{:.1}" height="{cell_h}" fill="{color}" stroke="#fff"/><text x="{:.1}" y="{:.1}" text-anchor="middle">{:.1}%</text>"##,
            cell_w,
            x + cell_w / 2.0,
            yy + 15.0,
            r * 100.0
        );
    }
    for (i, y) in years.iter().enumerate() {
        let _ = write!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{y}</text>"#,
            LEFT - 6.0,
            TOP + 20.0 + cell_h * i as f64 + 15.0
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `<text>` labels of an SVG, in order.
    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .filter_map(|t| {
                let body = &t[t.find('>')? + 1..];
                Some(body[..body.find("</text>")?].to_string())
            })
            .collect()
    }

    #[test]
    fn axes_say_what_the_values_are() {
        // A front's drawdowns of 0.10 to 0.30 on the x axis: not all `0`.
        let pts: Vec<(f64, f64, String, &str)> = [(0.1, 1.0), (0.2, 2.0), (0.3, 1.5)]
            .iter()
            .map(|&(x, y)| (x, y, "m".to_string(), "#000"))
            .collect();
        let t = texts(&scatter("front", "drawdown", "sharpe", &pts));
        assert!(
            t.contains(&"0.100".to_string()) && t.contains(&"0.300".to_string()),
            "{t:?}"
        );
        // A histogram's count axis starts at 0 with whole counts: the top bin holds 23 (16 at
        // 0.5 and 7 between 0.4 and 0.56), and the axis rounds up to 24 for four whole steps.
        let values: Vec<f64> = (0..40)
            .map(|i| if i < 16 { 0.5 } else { f64::from(i) / 40.0 })
            .collect();
        let svg = histogram("nulls", &values, 10, (2.0, "candidate 1"));
        let t = texts(&svg);
        assert!(
            t.contains(&"0".to_string()) && t.contains(&"24".to_string()),
            "{t:?}"
        );
        assert!(!t.iter().any(|x| x.starts_with('-')), "{t:?}");
        // The mark at the right edge puts its label on its left, whole.
        assert!(
            svg.contains(r#"text-anchor="end">candidate 1</text>"#),
            "{svg}"
        );
        // The last date of a time axis ends at the frame instead of being cut.
        let c = LineChart {
            series: vec![Series {
                name: "e".into(),
                color: "#000",
                x: vec![1.7e12, 1.8e12],
                y: vec![1.0, 2.0],
            }],
            time_axis: true,
            ..LineChart::default()
        };
        let svg = c.svg();
        assert!(
            svg.contains(r#"text-anchor="end">2027-01-15</text>"#),
            "{svg}"
        );
    }

    #[test]
    fn long_series_are_thinned_keeping_extremes() {
        let y: Vec<f64> = (0..10_000)
            .map(|i| if i == 5_000 { 99.0 } else { f64::from(i % 7) })
            .collect();
        let idx = thin(&y);
        assert!(idx.len() <= MAX_POINTS + 1);
        assert!(idx.contains(&5_000));
        assert_eq!(idx[0], 0);
        assert_eq!(*idx.last().unwrap(), 9_999);
        assert!(idx.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(thin(&[1.0, 2.0]), vec![0, 1]);
    }

    #[test]
    fn charts_carry_their_elements() {
        let c = LineChart {
            title: "t <&>".into(),
            series: vec![Series {
                name: "equity".into(),
                color: "#000",
                x: vec![0.0, 1.0, 2.0],
                y: vec![1.0, 2.0, 1.5],
            }],
            markers: vec![
                Marker {
                    x: 0.0,
                    y: 1.0,
                    entry: true,
                    long: true,
                },
                Marker {
                    x: 2.0,
                    y: 1.5,
                    entry: false,
                    long: true,
                },
            ],
            boundaries: vec![(1.0, "validation".into()), (5.0, "outside".into())],
            ..LineChart::default()
        };
        let s = c.svg();
        assert_eq!(s.matches("class=\"series\"").count(), 1);
        assert_eq!(s.matches("class=\"entry\"").count(), 1);
        assert_eq!(s.matches("class=\"exit\"").count(), 1);
        // The boundary outside the data is not drawn.
        assert_eq!(s.matches("class=\"boundary\"").count(), 1);
        assert!(s.contains("t &lt;&amp;&gt;"));
        let h = monthly_heatmap("m", &[(2024, 1, 0.1), (2024, 2, -0.05), (2025, 1, 0.0)]);
        assert_eq!(h.matches("class=\"cell\"").count(), 3);
        assert!(h.contains("data-month=\"2024-02\" data-return=\"-0.05\""));
    }
}
