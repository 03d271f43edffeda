//! CSV reading and writing for candles (`timestamp_ms,open,high,low,close,volume`) and funding
//! (`timestamp_ms,rate`). Every row is validated; the first bad row stops loading with an error
//! naming the file and line (1-based, the header is line 1).

use std::{
    fmt::Write as _,
    fs,
    io::Write as _,
    path::{Path, PathBuf},
};

use super::{check_shape, implausible, Candles, DataError, FundingSeries};

/// Header of a candle file.
pub const CANDLE_HEADER: &str = "timestamp_ms,open,high,low,close,volume";
/// Header of a funding file.
pub const FUNDING_HEADER: &str = "timestamp_ms,rate";

/// The first timestamp a market file may hold: 2009-01-01 UTC (no crypto market traded before).
pub const FIRST_MS: i64 = 1_230_768_000_000;
/// The end of the timestamps a market file may hold: 2100-01-01 UTC.
pub const END_MS: i64 = 4_102_444_800_000;

fn read(path: &Path) -> Result<String, DataError> {
    let text = fs::read_to_string(path).map_err(|source| DataError::Io {
        file: path.to_path_buf(),
        source,
    })?;
    // Every writer ends each row with a newline: a last row without one was cut short (a
    // crash mid-write, a truncated copy) and may look whole ("…,12" of "…,123").
    if !text.is_empty() && !text.ends_with('\n') {
        let line = text.lines().count();
        return Err(row_error(
            path,
            line,
            "the file ends inside this row (no newline after it): it may have been cut short; \
             if the row is whole, end the file with a newline",
        ));
    }
    Ok(text)
}

/// Iterates `(line_number, fields)` over the data rows after checking the header.
fn rows<'a>(
    path: &'a Path,
    text: &'a str,
    header: &'static str,
) -> Result<impl Iterator<Item = (usize, &'a str)> + 'a, DataError> {
    let mut lines = text.lines().enumerate();
    let found = lines.next().map(|(_, l)| l.trim()).unwrap_or("");
    let found = found.trim_start_matches('\u{feff}');
    if found != header {
        return Err(DataError::Header {
            file: path.to_path_buf(),
            expected: header,
            found: found.to_string(),
        });
    }
    Ok(lines
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty()))
}

fn row_error(path: &Path, line: usize, message: impl Into<String>) -> DataError {
    DataError::Row {
        file: path.to_path_buf(),
        line,
        message: message.into(),
    }
}

fn fields<'a, const N: usize>(
    path: &Path,
    line: usize,
    row: &'a str,
) -> Result<[&'a str; N], DataError> {
    let mut out = [""; N];
    let mut it = row.split(',');
    for slot in out.iter_mut() {
        *slot = it.next().map(str::trim).ok_or_else(|| {
            row_error(
                path,
                line,
                format!("expected {N} fields, found {}", row.split(',').count()),
            )
        })?;
    }
    if it.next().is_some() {
        return Err(row_error(
            path,
            line,
            format!("expected {N} fields, found {}", row.split(',').count()),
        ));
    }
    Ok(out)
}

fn parse_ts(path: &Path, line: usize, s: &str) -> Result<i64, DataError> {
    let ts = s
        .parse::<i64>()
        .map_err(|_| row_error(path, line, format!("timestamp_ms `{s}` is not an integer")))?;
    match timestamp_problem(ts, false) {
        Some(m) => Err(row_error(path, line, m)),
        None => Ok(ts),
    }
}

/// What is wrong with `ts` as a market timestamp, if anything: another unit than milliseconds,
/// a date outside 2009–2099, or, for a candle's open time (`candle`), off the minute grid.
pub fn timestamp_problem(ts: i64, candle: bool) -> Option<String> {
    if let Some(unit) = wrong_unit(ts) {
        return Some(format!(
            "timestamp_ms {ts} looks like {unit}, not milliseconds; convert the column to UTC \
             milliseconds"
        ));
    }
    if !(FIRST_MS..END_MS).contains(&ts) {
        return Some(format!(
            "timestamp_ms {ts} is {}: market data must fall in 2009-01-01 .. 2100-01-01 UTC",
            if ts < FIRST_MS {
                "before 2009"
            } else {
                "after 2099"
            }
        ));
    }
    let off = ts.rem_euclid(60_000);
    (candle && off != 0).then(|| {
        format!(
            "timestamp_ms {ts} is {off} ms past a whole minute: a candle opens on the \
             interval's grid"
        )
    })
}

/// The unit a timestamp looks like when it is not milliseconds of 1973..5138 (values below
/// 10^8 are milliseconds, refused as before 2009).
fn wrong_unit(ts: i64) -> Option<&'static str> {
    match ts {
        100_000_000..=99_999_999_999 => Some("seconds (x1000 to convert)"),
        100_000_000_000_000..=99_999_999_999_999_999 => Some("microseconds (/1000 to convert)"),
        100_000_000_000_000_000.. => Some("nanoseconds (/1000000 to convert)"),
        _ => None,
    }
}

fn parse_num(path: &Path, line: usize, name: &str, s: &str) -> Result<f64, DataError> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(row_error(
            path,
            line,
            format!("{name} `{s}` is not a finite number"),
        )),
    }
}

fn check_order(path: &Path, line: usize, prev: Option<i64>, ts: i64) -> Result<(), DataError> {
    match prev {
        Some(p) if ts == p => Err(row_error(path, line, format!("duplicate timestamp {ts}"))),
        Some(p) if ts < p => Err(row_error(
            path,
            line,
            format!("timestamp {ts} is before the previous row's {p}"),
        )),
        _ => Ok(()),
    }
}

/// Loads and validates a candle CSV.
///
/// # Errors
/// [`DataError`] naming the file and line for an unreadable file, a wrong header, a row that
/// does not parse, a non-increasing or duplicate timestamp, a non-positive price or a high/low
/// inconsistent with open/close; [`DataError::Empty`] when there are no rows.
pub fn load_candles(path: &Path) -> Result<Candles, DataError> {
    load_checked(path, None)
}

/// A bar the plausibility check doubts (a wick or a jump more than
/// [`IMPLAUSIBLE`](super::IMPLAUSIBLE) times away), kept by [`load_candles_lenient`].
#[derive(Debug, Clone, PartialEq)]
pub struct Doubt {
    /// Index of the bar in the loaded candles.
    pub bar: usize,
    /// Its line in the file.
    pub line: usize,
    /// What the check found, as [`load_candles`] would say it.
    pub message: String,
}

/// [`load_candles`] for one coin among many: a bar the plausibility check doubts is kept and
/// reported instead of refused (a universe keeps that coin out of trading around it); every
/// other error is as strict.
///
/// # Errors
/// As [`load_candles`], except for implausible bars.
pub fn load_candles_lenient(path: &Path) -> Result<(Candles, Vec<Doubt>), DataError> {
    let mut doubts = Vec::new();
    let c = load_checked(path, Some(&mut doubts))?;
    Ok((c, doubts))
}

/// Loads a candle CSV; an implausible bar is an error, or with `doubts` a note there.
fn load_checked(path: &Path, mut doubts: Option<&mut Vec<Doubt>>) -> Result<Candles, DataError> {
    let text = read(path)?;
    let mut c = Candles::with_capacity(text.len() / 48);
    let mut prev = None;
    for (line, row) in rows(path, &text, CANDLE_HEADER)? {
        let [ts, o, h, l, cl, v] = fields::<6>(path, line, row)?;
        let ts = parse_ts(path, line, ts)?;
        if let Some(m) = timestamp_problem(ts, true) {
            return Err(row_error(path, line, m));
        }
        let o = parse_num(path, line, "open", o)?;
        let h = parse_num(path, line, "high", h)?;
        let l = parse_num(path, line, "low", l)?;
        let cl = parse_num(path, line, "close", cl)?;
        let v = parse_num(path, line, "volume", v)?;
        check_order(path, line, prev, ts)?;
        if let Some(msg) = check_shape(o, h, l, cl, v) {
            return Err(row_error(path, line, msg));
        }
        let doubt = implausible(o, h, l, cl).or_else(|| super::jump(*c.close.last()?, o));
        if let Some(message) = doubt {
            match doubts.as_deref_mut() {
                Some(d) => d.push(Doubt {
                    bar: c.len(),
                    line,
                    message,
                }),
                None => return Err(row_error(path, line, message)),
            }
        }
        prev = Some(ts);
        c.push(ts, o, h, l, cl, v);
    }
    if c.is_empty() {
        return Err(DataError::Empty {
            file: path.to_path_buf(),
        });
    }
    Ok(c)
}

/// Loads and validates a funding CSV (`timestamp_ms,rate`; rate per funding interval).
///
/// # Errors
/// As [`load_candles`]: the file and line of the first bad row. Rates must be finite and
/// smaller than 1 in magnitude (a rate is a fraction, not a percentage).
pub fn load_funding(path: &Path) -> Result<FundingSeries, DataError> {
    load_funding_until(path, None)
}

/// [`load_funding`] for the candles it goes with: a row after `until` (weeks past the candles'
/// last bar) is from no market they show, and refused.
///
/// # Errors
/// As [`load_funding`], and a row after `until`.
pub fn load_funding_until(path: &Path, until: Option<i64>) -> Result<FundingSeries, DataError> {
    let text = read(path)?;
    let mut f = FundingSeries::default();
    let mut prev = None;
    for (line, row) in rows(path, &text, FUNDING_HEADER)? {
        let [ts, rate] = fields::<2>(path, line, row)?;
        let ts = parse_ts(path, line, ts)?;
        if let Some(u) = until.filter(|&u| ts > u) {
            return Err(row_error(
                path,
                line,
                format!(
                    "timestamp_ms {ts} is past what the candles it goes with can show (up to \
                     {u}): a funding row from no market they show"
                ),
            ));
        }
        let rate = parse_num(path, line, "rate", rate)?;
        if rate.abs() >= 1.0 {
            return Err(row_error(
                path,
                line,
                format!("rate {rate} is not a fraction per interval (|rate| must be < 1)"),
            ));
        }
        check_order(path, line, prev, ts)?;
        prev = Some(ts);
        f.ts.push(ts);
        f.rate.push(rate);
    }
    Ok(f)
}

/// Header of a Fear & Greed file.
pub const FEAR_GREED_HEADER: &str = "date,value";

/// The daily Fear & Greed index: `day[i]` in days since 1970-01-01 (UTC), `value[i]` in 0..=100.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FearGreed {
    pub day: Vec<i64>,
    pub value: Vec<u8>,
}

/// Parses `YYYY-MM-DD` to days since 1970-01-01.
pub fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y: i64 = s[..4].parse().ok()?;
    let m: u32 = s[5..7].parse().ok()?;
    let d: u32 = s[8..].parse().ok()?;
    if !(1..=12).contains(&m) || d == 0 {
        return None;
    }
    let days = super::days_from_civil(y, m, d);
    // Reject dates like 2023-02-30 that normalize to another day.
    let (y2, m2, d2, _, _) = super::civil(days * 86_400_000);
    (y2 == y && m2 == m && d2 == d).then_some(days)
}

/// Loads and validates a Fear & Greed CSV (`date,value`).
///
/// # Errors
/// [`DataError`] naming the file and line for a bad header, date or value, or dates that do not
/// increase.
pub fn load_fear_greed(path: &Path) -> Result<FearGreed, DataError> {
    let text = read(path)?;
    let mut fg = FearGreed::default();
    for (line, row) in rows(path, &text, FEAR_GREED_HEADER)? {
        let [date, value] = fields::<2>(path, line, row)?;
        let day = parse_date(date).ok_or_else(|| {
            row_error(path, line, format!("date `{date}` is not a YYYY-MM-DD day"))
        })?;
        let v: u8 = value.parse().ok().filter(|v| *v <= 100).ok_or_else(|| {
            row_error(
                path,
                line,
                format!("value `{value}` is not an integer 0-100"),
            )
        })?;
        if let Some(&prev) = fg.day.last() {
            if day <= prev {
                return Err(row_error(
                    path,
                    line,
                    format!("date {date} is not after the previous row's"),
                ));
            }
        }
        fg.day.push(day);
        fg.value.push(v);
    }
    Ok(fg)
}

/// Formats `(date, value)` rows as Fear & Greed CSV.
pub fn fear_greed_to_csv(rows: &[(String, u8)]) -> String {
    let mut s = String::from(FEAR_GREED_HEADER);
    s.push('\n');
    for (d, v) in rows {
        let _ = writeln!(s, "{d},{v}");
    }
    s
}

/// Writes `contents` to `path` atomically: a temporary file in the same folder, flushed, then
/// renamed over the target, and the folder synced so the rename itself survives a power loss; a
/// crash never leaves a half-written file.
///
/// A symbolic link is followed (its target is replaced); anything else that is not a regular
/// file (a device, a folder) is refused.
///
/// # Errors
/// [`DataError::Write`] when the folder cannot be created, the target is not a regular file, or
/// the file cannot be written.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), DataError> {
    let shown = path.to_path_buf();
    let io = |source| DataError::Write {
        file: shown.clone(),
        source,
    };
    let target;
    let path = match fs::metadata(path) {
        Ok(m) if m.is_file() => {
            target = fs::canonicalize(path).map_err(io)?;
            target.as_path()
        }
        Ok(_) => {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file",
            )))
        }
        Err(_) => path,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = PathBuf::from(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    tmp.set_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// Formats candles as CSV text (full `f64` precision, so a round trip is exact).
pub fn candles_to_csv(c: &Candles) -> String {
    let mut s = String::with_capacity(c.len() * 80);
    s.push_str(CANDLE_HEADER);
    s.push('\n');
    for i in 0..c.len() {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{}",
            c.ts[i], c.open[i], c.high[i], c.low[i], c.close[i], c.volume[i]
        );
    }
    s
}

/// Formats a funding series as CSV text.
pub fn funding_to_csv(f: &FundingSeries) -> String {
    let mut s = String::with_capacity(f.ts.len() * 32);
    s.push_str(FUNDING_HEADER);
    s.push('\n');
    for (ts, r) in f.ts.iter().zip(&f.rate) {
        let _ = writeln!(s, "{ts},{r}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp_file(name: &str, body: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("organism-csv-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        fs::write(&p, body).unwrap();
        p
    }

    fn err(name: &str, body: &str) -> String {
        load_candles(&tmp_file(name, body)).unwrap_err().to_string()
    }

    const H: &str = "timestamp_ms,open,high,low,close,volume\n";
    /// 2024-01-01 00:00 and 01:00 UTC.
    const A: i64 = 1_704_067_200_000;
    const B: i64 = A + 3_600_000;

    #[test]
    fn timestamps_in_other_units_are_named() {
        let e = err("s.csv", &format!("{H}1704067200,10,12,9,11,1\n"));
        assert!(
            e.contains("s.csv: line 2") && e.contains("looks like seconds"),
            "{e}"
        );
        let e = err("us.csv", &format!("{H}1704067200000000,10,12,9,11,1\n"));
        assert!(e.contains("looks like microseconds"), "{e}");
        let e = err("ns.csv", &format!("{H}1704067200000000000,10,12,9,11,1\n"));
        assert!(e.contains("looks like nanoseconds"), "{e}");
        // Milliseconds of 2024 load.
        let p = tmp_file("ms.csv", &format!("{H}1704067200000,10,12,9,11,1\n"));
        assert!(load_candles(&p).is_ok());
    }

    #[test]
    fn implausible_bars_are_reported_with_their_line() {
        // A 14x wick above the body.
        let e = err(
            "w.csv",
            &format!("{H}{A},10,12,9,11,1\n{B},11,154,10,11,1\n"),
        );
        assert!(
            e.contains("w.csv: line 3: implausible bar: the high is 14x"),
            "{e}"
        );
        // 1e300 after a normal bar.
        let e = err(
            "b.csv",
            &format!("{H}{A},10,12,9,11,1\n{B},1e300,1e300,1e300,1e300,1\n"),
        );
        assert!(
            e.contains("line 3: implausible bar: open 1.000e300 is 9.091e298x"),
            "{e}"
        );
        // A 30 % move is a market move.
        let p = tmp_file(
            "ok2.csv",
            &format!("{H}{A},10,12,9,11,1\n{B},14.3,15,14,14.5,1\n"),
        );
        assert!(load_candles(&p).is_ok());
    }

    #[test]
    fn loads_a_valid_file_exactly() {
        let p = tmp_file(
            "ok.csv",
            &format!("{H}{A},10,12,9,11,5.5\n{B},11,11.5,10.5,11,0\n\n"),
        );
        let c = load_candles(&p).unwrap();
        assert_eq!(c.ts, vec![A, B]);
        assert_eq!(c.high, vec![12.0, 11.5]);
        assert_eq!(c.volume, vec![5.5, 0.0]);
        let back = load_candles(&tmp_file("rt.csv", &candles_to_csv(&c))).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn each_defect_is_named_with_file_and_line() {
        let e = err("hdr.csv", "ts,o,h,l,c,v\n1,1,1,1,1,1\n");
        assert!(e.contains("hdr.csv: line 1: expected header"), "{e}");
        let e = err(
            "parse.csv",
            &format!("{H}{A},10,12,9,11,5\n{B},10,x,9,11,5\n"),
        );
        assert!(e.contains("parse.csv: line 3: high `x`"), "{e}");
        let e = err(
            "dup.csv",
            &format!("{H}{A},10,12,9,11,5\n{A},10,12,9,11,5\n"),
        );
        assert!(
            e.contains(&format!("line 3: duplicate timestamp {A}")),
            "{e}"
        );
        let e = err(
            "back.csv",
            &format!("{H}{B},10,12,9,11,5\n{A},10,12,9,11,5\n"),
        );
        assert!(
            e.contains(&format!("line 3: timestamp {A} is before")),
            "{e}"
        );
        let e = err("hl.csv", &format!("{H}{A},10,10.5,9,11,5\n"));
        assert!(e.contains("line 2: high 10.5 is below"), "{e}");
        let e = err("low.csv", &format!("{H}{A},10,12,10.5,11,5\n"));
        assert!(e.contains("line 2: low 10.5 is above"), "{e}");
        let e = err("neg.csv", &format!("{H}{A},0,12,9,11,5\n"));
        assert!(e.contains("line 2: open must be a positive number"), "{e}");
        let e = err("nan.csv", &format!("{H}{A},NaN,12,9,11,5\n"));
        assert!(
            e.contains("line 2: open `NaN` is not a finite number"),
            "{e}"
        );
        let e = err("short.csv", &format!("{H}{A},10,12,9\n"));
        assert!(e.contains("line 2: expected 6 fields, found 4"), "{e}");
        let e = err("empty.csv", H);
        assert!(e.contains("empty.csv: no data rows"), "{e}");
    }

    /// What a reliability run found accepted (issue 45): each now one line naming the file,
    /// the line and what is wrong.
    #[test]
    fn cut_rows_impossible_dates_off_grid_times_and_future_funding_are_refused() {
        // Cut inside its last field: "…,12" of "…,123" looked like a whole row.
        let e = err(
            "cut.csv",
            &format!("{H}{A},10,12,9,11,5\n{B},11,12,10,11,12"),
        );
        assert_eq!(
            e,
            format!(
                "{}: line 3: the file ends inside this row (no newline after it): it may have \
                 been cut short; if the row is whole, end the file with a newline",
                tmp_file("cut.csv", "").display()
            )
        );
        let e = err("min.csv", &format!("{H}{},10,12,9,11,5\n", i64::MIN));
        assert!(
            e.ends_with(&format!(
                "line 2: timestamp_ms {} is before 2009: market data must fall in 2009-01-01 .. \
                 2100-01-01 UTC",
                i64::MIN
            )),
            "{e}"
        );
        // 2008-12-31 23:00 UTC.
        let e = err("2008.csv", &format!("{H}1230764400000,10,12,9,11,5\n"));
        assert!(
            e.contains("line 2: timestamp_ms 1230764400000 is before 2009"),
            "{e}"
        );
        let e = err("2100.csv", &format!("{H}4102444800000,10,12,9,11,5\n"));
        assert!(
            e.contains("line 2: timestamp_ms 4102444800000 is after 2099"),
            "{e}"
        );
        let e = err(
            "grid.csv",
            &format!("{H}{A},10,12,9,11,5\n{},11,12,10,11,1\n", B + 1),
        );
        assert!(
            e.contains(&format!(
                "line 3: timestamp_ms {} is 1 ms past a whole minute: a candle opens on the \
                 interval's grid",
                B + 1
            )),
            "{e}"
        );
        // A funding row of 2058 beside candles that end in 2024.
        let f = tmp_file(
            "future.csv",
            &format!("timestamp_ms,rate\n{A},0.0001\n2776032000000,0.0001\n"),
        );
        assert!(load_funding(&f).is_ok(), "alone, a date in range");
        let e = load_funding_until(&f, Some(B + 86_400_000))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!(
                "future.csv: line 3: timestamp_ms 2776032000000 is past what the candles it goes \
                 with can show (up to {})",
                B + 86_400_000
            )),
            "{e}"
        );
    }

    #[test]
    fn funding_rows_are_validated() {
        let p = tmp_file(
            "f.csv",
            &format!("timestamp_ms,rate\n{A},0.0001\n{B},-0.00002\n"),
        );
        let f = load_funding(&p).unwrap();
        assert_eq!(f.rate, vec![0.0001, -0.00002]);
        let p = tmp_file("fbad.csv", &format!("timestamp_ms,rate\n{A},1.5\n"));
        let e = load_funding(&p).unwrap_err().to_string();
        assert!(e.contains("fbad.csv: line 2: rate 1.5"), "{e}");
    }

    #[test]
    fn fear_greed_files_are_validated() {
        let p = tmp_file(
            "fg.csv",
            "date,value\n2024-02-28,40\n2024-02-29,55\n2024-03-01,100\n",
        );
        let fg = load_fear_greed(&p).unwrap();
        assert_eq!(fg.value, vec![40, 55, 100]);
        assert_eq!(fg.day[1] - fg.day[0], 1);
        assert_eq!(fg.day[0], 19_781);
        let bad = |body: &str| {
            load_fear_greed(&tmp_file("fgb.csv", body))
                .unwrap_err()
                .to_string()
        };
        assert!(bad("date,value\n2023-02-29,40\n").contains("line 2: date `2023-02-29`"));
        assert!(bad("date,value\n2024-01-01,101\n").contains("line 2: value `101`"));
        assert!(bad("date,value\n2024-01-02,1\n2024-01-01,2\n")
            .contains("line 3: date 2024-01-01 is not after"));
        assert!(bad("day,value\n").contains("line 1: expected header `date,value`"));
        let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/fear_greed.csv");
        if shared.is_file() {
            let fg = load_fear_greed(&shared).unwrap();
            assert_eq!(fg.value.len(), 2887);
        } else {
            eprintln!(
                "skipping the real Fear & Greed file: {} is absent",
                shared.display()
            );
        }
    }

    #[test]
    fn atomic_write_replaces_the_file() {
        let p = tmp_file("atomic.csv", "old");
        write_atomic(&p, b"new").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "new");
    }

    #[test]
    fn writes_refuse_what_is_not_a_file_and_name_the_cause_once() {
        let dir = std::env::temp_dir().join(format!("organism-wr-{}", std::process::id()));
        fs::create_dir_all(dir.join("sub")).unwrap();
        let e = write_atomic(&dir.join("sub"), b"x")
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("sub: cannot write: not a regular file"), "{e}");
        let e = write_atomic(Path::new("/proc/organism-none/x.csv"), b"x")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/proc/organism-none/x.csv: cannot write: "),
            "{e}"
        );
        // A link is followed: the file it points to is replaced, the link stays.
        #[cfg(unix)]
        {
            let real = dir.join("real.csv");
            fs::write(&real, "old").unwrap();
            let link = dir.join("link.csv");
            let _ = fs::remove_file(&link);
            std::os::unix::fs::symlink(&real, &link).unwrap();
            write_atomic(&link, b"new").unwrap();
            assert_eq!(fs::read_to_string(&real).unwrap(), "new");
            assert!(fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink());
        }
    }
}
