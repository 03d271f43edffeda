//! Typed configuration, read from `config/default.toml` (built into the binary, so it always
//! exists) with an optional user file laid over it.
//!
//! A user file only needs the keys it changes. Unknown keys, values of the wrong type and values
//! out of range are errors that name the file and the key (`costs.taker_fee`).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::{Table, Value};

use crate::{
    execution::EngineConfig,
    market::{synthetic::SyntheticParams, DataSelection},
};

/// The defaults, exactly as shipped in `config/default.toml`.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// A configuration error, naming the file and key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: {key}: {message}")]
    Key {
        file: String,
        key: String,
        message: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub data: crate::market::universe::DataConfig,
    pub synthetic: SyntheticParams,
    pub costs: crate::execution::CostsConfig,
    pub backtest: crate::execution::BacktestSection,
    pub evolution: crate::evolution::EvolutionConfig,
    pub promotion: crate::promotion::PromotionConfig,
    pub portfolio: crate::execution::risk::PortfolioConfig,
    pub universe: crate::market::membership::UniverseConfig,
    pub book: crate::execution::portfolio::Limits,
    pub regime: crate::strategy::regime::RegimeConfig,
    pub paper: crate::runner::paper::PaperConfig,
    pub cycle: crate::runner::cycle::CycleConfig,
    pub alerts: crate::serve::alerts::AlertsConfig,
    pub exchange: crate::exchange::ExchangeConfig,
    pub cluster: crate::evolution::islands::ClusterConfig,
    /// `[live]`, only from a config file.
    #[serde(default)]
    pub live: Option<crate::runner::rig::LiveConfig>,
}

impl Config {
    /// The built-in defaults.
    ///
    /// # Errors
    /// Only if the shipped `config/default.toml` is broken (a test guards against that).
    pub fn defaults() -> Result<Self, ConfigError> {
        Self::from_layers(None, "", &[])
    }

    /// Defaults with `path` laid over them.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file, and the key where there is one.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with(Some(path), &[])
    }

    /// Defaults, then the file at `path` if any, then `flags`: one deserialization and one
    /// validation of the result, so a flag is held to its key's type and range.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file or the flag, and the key.
    pub fn load_with(path: Option<&Path>, flags: &[Flag]) -> Result<Self, ConfigError> {
        match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
                    file: path.to_path_buf(),
                    source,
                })?;
                Self::from_layers(Some(&path.display().to_string()), &text, flags)
            }
            None => Self::from_layers(None, "", flags),
        }
    }

    /// Defaults with the TOML `text` of `file` laid over them (`None`: defaults only), then
    /// `flags`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file (or the flag), and the key where there is one.
    pub fn from_layers(
        file: Option<&str>,
        text: &str,
        flags: &[Flag],
    ) -> Result<Self, ConfigError> {
        let mut base: Table =
            DEFAULT_TOML
                .parse()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    file: "config/default.toml (built in)".into(),
                    message: e.to_string(),
                })?;
        if let Some(file) = file {
            let mut user: Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::Parse {
                        file: file.into(),
                        message: crate::settings::toml_error(text, &e),
                    })?;
            // `[live]` has no built-in defaults to lay it over: it is taken as written.
            if let Some(live) = user.remove("live") {
                base.insert("live".into(), live);
            }
            overlay(&mut base, user, "", file)?;
        }
        let file = file.unwrap_or("config/default.toml (built in)");
        // Where each key set by a flag came from, for the errors.
        let mut origin: std::collections::BTreeMap<&str, &str> = std::collections::BTreeMap::new();
        for f in flags {
            let layer = f.table(&base);
            overlay(&mut base, layer, "", &f.flag)?;
            origin.insert(f.key, &f.flag);
        }
        // One deserialization: a value outside its closed set (a mode, an algorithm, a fill
        // mode, …) fails here, named by its key.
        let cfg: Config = serde_path_to_error::deserialize(Value::Table(base)).map_err(|e| {
            let key = e.path().to_string();
            // The TOML error's own "in `key`" line: the key is named already.
            let inner = e.inner().to_string();
            let message = inner.lines().next().unwrap_or_default().trim().to_string();
            if key == "." || key.is_empty() {
                ConfigError::Parse {
                    file: file.into(),
                    message,
                }
            } else {
                ConfigError::Key {
                    file: origin.get(key.as_str()).copied().unwrap_or(file).into(),
                    key,
                    message,
                }
            }
        })?;
        cfg.validate(&|key| origin.get(key).copied().unwrap_or(file).to_string())?;
        Ok(cfg)
    }

    /// Checks every key; `origin` names where a key's value came from (the file, or a flag).
    fn validate(&self, origin: &dyn Fn(&str) -> String) -> Result<(), ConfigError> {
        // A section's own checks, its refusal named by the file or flag the key came from.
        let section = |r: Result<(), crate::settings::Invalid>| {
            r.map_err(|i| ConfigError::Key {
                file: origin(&i.key),
                key: i.key,
                message: i.message,
            })
        };
        section(self.costs.validate())?;
        section(self.backtest.validate())?;
        section(self.synthetic.validate())?;
        section(self.universe.validate())?;
        section(self.book.validate())?;
        section(self.data.validate())?;
        section(self.evolution.validate())?;
        section(self.promotion.validate())?;
        section(self.portfolio.validate())?;
        section(self.paper.validate())?;
        section(self.cycle.validate())?;
        section(self.alerts.validate())?;
        section(self.cluster.validate())?;
        if let Some(l) = &self.live {
            section(l.validate(&self.paper.account))?;
        }
        section(self.regime.validate())?;
        section(self.exchange.validate())
    }

    /// The data selection for loading.
    pub fn data_selection(&self) -> DataSelection {
        self.data.selection(&self.synthetic)
    }

    /// The sections a paper or live session reads.
    pub fn run(&self) -> crate::runner::paper::RunConfig {
        crate::runner::paper::RunConfig {
            engine: self.backtest_config(),
            regime: self.regime.clone(),
            paper: self.paper.clone(),
            exchange: self.exchange.clone(),
            live: self.live.clone(),
        }
    }

    /// The backtester settings.
    pub fn backtest_config(&self) -> EngineConfig {
        EngineConfig::of(&self.costs, &self.backtest)
    }
}

/// A command-line flag that sets a config key: laid over the file as the last layer and held to
/// the key's type and range; its errors name the flag (`--population: evolution.population: …`).
#[derive(Debug, Clone, PartialEq)]
pub struct Flag {
    /// The flag as typed, e.g. `--population`.
    pub flag: String,
    /// The key it sets, `section.key`.
    pub key: &'static str,
    pub value: Value,
    /// Adds to the key's list instead of replacing it.
    pub append: bool,
}

impl Flag {
    /// A flag whose value replaces the key's.
    pub fn new(flag: &str, key: &'static str, value: impl Into<Value>) -> Self {
        Self {
            flag: flag.to_string(),
            key,
            value: value.into(),
            append: false,
        }
    }

    /// A flag whose list is added to the key's list (`--exclude` to `universe.exclude`).
    pub fn append(flag: &str, key: &'static str, values: Vec<String>) -> Self {
        Self {
            append: true,
            ..Self::new(flag, key, values)
        }
    }

    /// The flag's value laid over `base`: its own, or `base`'s list followed by its list.
    fn value_over(&self, base: &Table) -> Value {
        let mut at = Some(base);
        let mut parts = self.key.split('.').peekable();
        let mut current = None;
        while let Some(p) = parts.next() {
            let v = at.and_then(|t| t.get(p));
            if parts.peek().is_none() {
                current = v;
            } else {
                at = v.and_then(Value::as_table);
            }
        }
        match (self.append, current, &self.value) {
            (true, Some(Value::Array(old)), Value::Array(new)) => {
                Value::Array(old.iter().chain(new).cloned().collect())
            }
            _ => self.value.clone(),
        }
    }

    /// The flag as a TOML table (`section.key = value`).
    fn table(&self, base: &Table) -> Table {
        let mut parts: Vec<&str> = self.key.split('.').collect();
        let leaf = parts.pop().unwrap_or(self.key);
        let mut t = Table::new();
        t.insert(leaf.to_string(), self.value_over(base));
        for p in parts.into_iter().rev() {
            let mut outer = Table::new();
            outer.insert(p.to_string(), Value::Table(t));
            t = outer;
        }
        t
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a number",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

/// Lays `user` over `base`: every user key must exist in `base` with a value of the same type
/// (an integer is accepted where a number is expected, and array elements are checked against
/// the default's first element).
fn overlay(base: &mut Table, user: Table, prefix: &str, file: &str) -> Result<(), ConfigError> {
    for (k, v) in user {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        let Some(slot) = base.get_mut(&k) else {
            let known: Vec<&str> = base.keys().map(String::as_str).collect();
            return Err(ConfigError::Key {
                file: file.into(),
                key,
                message: format!("unknown key (known here: {})", known.join(", ")),
            });
        };
        let mismatch = |want: &Value, got: &Value| ConfigError::Key {
            file: file.into(),
            key: key.clone(),
            message: format!("expected {}, found {}", type_name(want), type_name(got)),
        };
        match (slot, v) {
            (Value::Table(b), Value::Table(u)) => overlay(b, u, &key, file)?,
            (slot @ Value::Float(_), Value::Integer(i)) => *slot = Value::Float(i as f64),
            (Value::Array(b), Value::Array(u)) => {
                let proto = b.first().cloned();
                let mut out = Vec::with_capacity(u.len());
                for item in u {
                    match (&proto, item) {
                        (Some(Value::Float(_)), Value::Integer(i)) => {
                            out.push(Value::Float(i as f64))
                        }
                        (Some(p), item)
                            if std::mem::discriminant(p) != std::mem::discriminant(&item) =>
                        {
                            return Err(mismatch(p, &item));
                        }
                        (None, item) if !matches!(item, Value::String(_)) => {
                            return Err(mismatch(&Value::String(String::new()), &item));
                        }
                        (_, item) => out.push(item),
                    }
                }
                *b = out;
            }
            (slot, v) if std::mem::discriminant(&*slot) == std::mem::discriminant(&v) => *slot = v,
            (slot, v) => return Err(mismatch(slot, &v)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execution::FillMode;

    #[test]
    fn shipped_defaults_load() {
        let c = Config::defaults().unwrap();
        assert_eq!(c.costs.taker_fee, 0.00045);
        assert_eq!(c.costs.maker_fee, 0.00015);
        assert_eq!(c.backtest.cash, 10_000.0);
        assert_eq!(c.backtest_config().fill, FillMode::NextOpen);
        assert_eq!(c.synthetic, SyntheticParams::default());
        assert_eq!(c.data_selection().path, None);
    }

    #[test]
    fn user_file_overrides_only_its_keys() {
        let c = Config::from_layers(
            Some("mine.toml"),
            "[costs]\ntaker_fee = 0.001\n[backtest]\ncash = 500\nfill = \"close\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(c.costs.taker_fee, 0.001);
        assert_eq!(c.costs.slippage, 0.0001);
        assert_eq!(c.backtest.cash, 500.0);
        assert_eq!(c.backtest_config().fill, FillMode::Close);
    }

    fn err(text: &str) -> String {
        Config::from_layers(Some("mine.toml"), text, &[])
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn coin_names_that_would_leave_the_folder_are_refused() {
        for (text, key) in [
            ("[synthetic]\ncoins = [\"../../../../X\"]\nannual_vol = [0.5]\nstart_price = [10.0]\n", "synthetic.coins"),
            ("[synthetic]\ncoins = [\"a/b\"]\nannual_vol = [0.5]\nstart_price = [10.0]\n", "synthetic.coins"),
            ("[paper]\ncoins = [\"../X\"]\n", "paper.coins"),
        ] {
            let e = err(text);
            assert!(e.contains(key) && e.contains("is not a coin name"), "{e}");
        }
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = err("[costs]\ntaker_fe = 0.001\n");
        assert!(
            e.starts_with("mine.toml: costs.taker_fe: unknown key"),
            "{e}"
        );
        let e = err("[cost]\n");
        assert!(e.starts_with("mine.toml: cost: unknown key"), "{e}");
        let e = err("[costs]\ntaker_fee = -0.1\n");
        assert!(
            e.starts_with("mine.toml: costs.taker_fee: -0.1 is out of range"),
            "{e}"
        );
        let e = err("[costs]\nslippage = \"lots\"\n");
        assert!(
            e.contains("costs.slippage: expected a number, found a string"),
            "{e}"
        );
        let e = err("[backtest]\nfill = \"tomorrow\"\n");
        assert!(
            e.contains("backtest.fill: unknown fill mode `tomorrow`"),
            "{e}"
        );
        let e = err("[synthetic]\ncoins = [\"A\"]\n");
        assert!(
            e.contains("synthetic.annual_vol: has 4 values but synthetic.coins has 1"),
            "{e}"
        );
        let e = err("[data]\ncoins = [1]\n");
        assert!(
            e.contains("data.coins: expected a string, found an integer"),
            "{e}"
        );
        let e = err("[evolution]\npopulation = 7\n");
        assert!(e.contains("evolution.population: 7 is out of range"), "{e}");
        let e = err("[evolution]\ntrain_fraction = 0.9\nvalidation_fraction = 0.2\n");
        assert!(
            e.contains("evolution.validation_fraction: train_fraction + validation_fraction"),
            "{e}"
        );
        let e = err("[costs\n");
        assert!(e.starts_with("mine.toml: "), "{e}");
        // The sections of the universe, the book, the regime filter, paper, live and the
        // exchange, each checked in its own module.
        for (text, want) in [
            (
                "[regime]\nfear = \"short\"\n",
                "mine.toml: regime.fear: `short` is not an action: trade, flat, or a scale in (0, 1]",
            ),
            (
                "[regime]\nlow_quantile = 0.7\n",
                "mine.toml: regime.high_quantile: 0.6667 is out of range: must be in [0.7, 1]",
            ),
            (
                "[paper]\ninterval = \"7h\"\n",
                "mine.toml: paper.interval: unknown interval `7h` (intervals: 1m, 3m, 5m, 15m, \
                 30m, 1h, 2h, 4h, 8h, 12h, 1d, 3d, 1w)",
            ),
            (
                "[paper]\ncoins = [\"BTC\", \"btc\"]\n",
                "mine.toml: paper.coins: `btc` is listed twice",
            ),
            (
                "[universe]\nvolume_days = 0\n",
                "mine.toml: universe.volume_days: 0 is out of range: must be in [1, 3650]",
            ),
            (
                "[universe]\nexclude = [\"LU NA\"]\n",
                "mine.toml: universe.exclude: `LU NA` is not a coin name (letters and digits only)",
            ),
            (
                "[book]\nmax_weight = 11.0\n",
                "mine.toml: book.max_weight: 11 is out of range: must be in [0, 10]",
            ),
            (
                "[exchange]\napi_url = \"ftp://x\"\n",
                "mine.toml: exchange.api_url: `ftp://x` is not an http(s) URL",
            ),
            (
                "[live]\ncapital = 100.0\nstrategies = [\"s\"]\nleverage = 51\n",
                "mine.toml: live.leverage: 51 is out of range: must be in [1, 50]",
            ),
            (
                "[live]\ncapital = 100.0\nstrategies = [\"s\"]\naccount = \"paper\"\n",
                "mine.toml: live.account: must not be empty nor the paper account",
            ),
        ] {
            assert_eq!(err(text), want, "{text}");
        }
    }
}
