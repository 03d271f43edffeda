//! What every config section shares: a refused value named by its key, and the checks each
//! section's `validate` makes with it. A section is a typed struct in the module that uses it;
//! `crate::config` lays the defaults, the user's file and the command-line flags over one
//! another, deserializes once and calls each section's `validate`, naming the file or the flag
//! a refused key came from.

/// A key whose value is refused, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// `section.key`.
    pub key: String,
    pub message: String,
}

impl Invalid {
    pub fn new(key: &str, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl std::error::Error for Invalid {}

/// `v` in `[lo, hi]` and finite.
///
/// # Errors
/// [`Invalid`] naming `key`, the value and the range.
pub fn range(key: &str, v: f64, lo: f64, hi: f64) -> Result<(), Invalid> {
    if v.is_finite() && v >= lo && v <= hi {
        Ok(())
    } else {
        Err(Invalid::new(
            key,
            format!("{} is out of range: must be in [{lo}, {hi}]", num(v)),
        ))
    }
}

/// A count `v` in `[lo, hi]`; `why` (empty, or ` (…)`) says what the upper bound guards.
///
/// # Errors
/// [`Invalid`] naming `key`, the value and the range.
pub fn count(key: &str, v: usize, lo: usize, hi: usize, why: &str) -> Result<(), Invalid> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(Invalid::new(
            key,
            format!("{v} is out of range: must be in [{lo}, {hi}]{why}"),
        ))
    }
}

/// A value of a closed set, read by its `FromStr` (whose error lists the names it takes): for
/// `#[serde(deserialize_with = "crate::settings::named")]`.
///
/// # Errors
/// The `FromStr` message, as the format's error.
pub fn named<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr<Err = String>,
{
    use serde::Deserialize as _;
    String::deserialize(d)?
        .parse()
        .map_err(serde::de::Error::custom)
}

/// A TOML parse error of `text` on one line: where (line and column) and what.
pub fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let what = e
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    match e.span().and_then(|r| text.get(..r.start)) {
        Some(before) => {
            let line = before.matches('\n').count() + 1;
            let column = before.chars().rev().take_while(|&c| c != '\n').count() + 1;
            format!("line {line}, column {column}: {what}")
        }
        None => what,
    }
}

/// `v` as a setting is written: plainly, or in exponent form when very large or very small.
pub fn num(v: f64) -> String {
    if v != 0.0 && v.is_finite() && !(1e-6..1e15).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_key_the_value_and_the_bounds() {
        assert_eq!(range("a.b", 0.5, 0.0, 1.0), Ok(()));
        assert_eq!(
            range("a.b", f64::NAN, 0.0, 1.0).unwrap_err().message,
            "NaN is out of range: must be in [0, 1]"
        );
        assert_eq!(
            range("a.b", 1e308, 0.0, 1.0).unwrap_err().message,
            "1e308 is out of range: must be in [0, 1]"
        );
        assert_eq!(
            count("a.n", 7, 1, 5, " (memory)").unwrap_err(),
            Invalid::new("a.n", "7 is out of range: must be in [1, 5] (memory)")
        );
    }
}
