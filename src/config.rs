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

/// `[universe]`: which coins of a many-coin universe a portfolio strategy may hold at each bar
/// (point in time; see [`crate::market::membership`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UniverseConfig {
    pub min_history: usize,
    pub min_volume_usd: f64,
    pub volume_days: usize,
    /// Coins never held.
    pub exclude: Vec<String>,
}

impl UniverseConfig {
    /// The membership rule, with `top` coins by trailing volume when given.
    pub fn rule(&self, top: Option<usize>) -> crate::market::membership::MembershipRule {
        crate::market::membership::MembershipRule {
            min_history: self.min_history,
            min_volume_usd: self.min_volume_usd,
            volume_days: self.volume_days,
            top,
        }
    }
}

/// `[regime]`: the market-regime filter (`--regime` on `backtest` and `evolve`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegimeConfig {
    pub enabled: bool,
    pub vol_window: usize,
    pub lookback: usize,
    pub low_quantile: f64,
    pub high_quantile: f64,
    pub low_volatility: String,
    pub normal_volatility: String,
    pub high_volatility: String,
    pub extreme_fear: String,
    pub fear: String,
    pub greed: String,
    pub extreme_greed: String,
}

impl RegimeConfig {
    /// How the volatility regime is measured.
    pub fn params(&self) -> crate::strategy::regime::VolatilityParams {
        crate::strategy::regime::VolatilityParams {
            vol_window: self.vol_window,
            lookback: self.lookback,
            low_quantile: self.low_quantile,
            high_quantile: self.high_quantile,
        }
    }

    /// The filter when `enabled` (`--regime`), else `None`.
    ///
    /// # Errors
    /// `(key, message)` for an action that does not parse (refused when the config loads).
    pub fn filter(
        &self,
    ) -> Result<Option<crate::strategy::regime::RegimeFilter>, (String, String)> {
        if !self.enabled {
            return Ok(None);
        }
        Ok(Some(crate::strategy::regime::RegimeFilter {
            volatility: self.params(),
            policy: self.policy()?,
        }))
    }

    fn actions(&self) -> [(&'static str, &str); 7] {
        [
            ("low_volatility", &self.low_volatility),
            ("normal_volatility", &self.normal_volatility),
            ("high_volatility", &self.high_volatility),
            ("extreme_fear", &self.extreme_fear),
            ("fear", &self.fear),
            ("greed", &self.greed),
            ("extreme_greed", &self.extreme_greed),
        ]
    }

    /// The policy; `Err((key, message))` for an action that does not parse.
    pub fn policy(&self) -> Result<crate::strategy::regime::Policy, (String, String)> {
        use crate::strategy::regime::{Action, Policy};
        let mut a = [Action::Trade; 7];
        for (i, (key, text)) in self.actions().iter().enumerate() {
            a[i] = text.parse().map_err(|m| (format!("regime.{key}"), m))?;
        }
        Ok(Policy {
            volatility: [a[0], a[1], a[2]],
            sentiment: [a[3], a[4], a[5], a[6]],
        })
    }
}

/// `[paper]`: paper trading.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaperConfig {
    pub account: String,
    pub capital: f64,
    pub coins: Vec<String>,
    pub interval: String,
    pub store: String,
    pub warmup_bars: usize,
    pub stop_file: String,
    pub gap_pause_bars: i64,
    pub bar_wait_secs: f64,
    pub regime_policy: crate::runner::paper::PolicySource,
    pub max_gross_leverage: f64,
    pub daily_loss: f64,
    pub max_drawdown: f64,
    pub portfolio_max_gross_leverage: f64,
    pub portfolio_daily_loss: f64,
    pub portfolio_max_drawdown: f64,
    pub min_days: f64,
    pub max_tracking: f64,
    pub min_sharpe_z: f64,
}

/// `[exchange]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeConfig {
    pub api_url: String,
    pub sentiment_url: String,
    pub connect_timeout_secs: f64,
    pub read_timeout_secs: f64,
    pub weight_per_minute: f64,
}

/// `[live]`: real orders on Hyperliquid. Absent from the built-in defaults on purpose: `live
/// run` refuses to start until a config file has this section. Only `capital` and
/// `strategies` have no default.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveConfig {
    /// Journal account of the session.
    #[serde(default = "live_defaults::account")]
    pub account: String,
    /// Capital organism trades on the exchange account (at most the account's value).
    pub capital: f64,
    /// Strategy ids of the registry traded live (an explicit list; nothing is added by itself).
    pub strategies: Vec<String>,
    /// Coins traded (default: paper.coins).
    #[serde(default)]
    pub coins: Option<Vec<String>>,
    /// Refuse a strategy the paper lifecycle has not found eligible.
    #[serde(default = "live_defaults::yes")]
    pub require_paper_eligible: bool,
    #[serde(default = "live_defaults::store")]
    pub store: String,
    #[serde(default = "live_defaults::stop_file")]
    pub stop_file: String,
    #[serde(default = "live_defaults::warmup_bars")]
    pub warmup_bars: usize,
    /// File holding the private key (hex); empty: the environment's HYPERLIQUID_PRIVATE_KEY.
    #[serde(default)]
    pub key_file: String,
    /// The account an agent (API wallet) key trades for; empty: the key's own address.
    #[serde(default)]
    pub account_address: String,
    /// A vault (or sub-account) traded instead of the account.
    #[serde(default)]
    pub vault_address: String,
    /// Largest notional of one order, USD: larger orders are refused before they are signed.
    #[serde(default = "live_defaults::max_order_notional")]
    pub max_order_notional: f64,
    /// Limit price of the IOC orders, away from the reference price (fraction).
    #[serde(default = "live_defaults::max_slippage")]
    pub max_slippage: f64,
    /// Portfolio daily loss limit (fraction of the previous day's last equity).
    #[serde(default = "live_defaults::daily_loss")]
    pub daily_loss: f64,
    /// Portfolio drawdown limit (fraction of the peak).
    #[serde(default = "live_defaults::max_drawdown")]
    pub max_drawdown: f64,
    /// Cross leverage set on every coin at start.
    #[serde(default = "live_defaults::leverage")]
    pub leverage: u32,
    /// Seconds between reconciliations with the exchange.
    #[serde(default = "live_defaults::reconcile_secs")]
    pub reconcile_secs: f64,
    /// The dead-man's switch: open orders are cancelled this many seconds after the runner
    /// last refreshed it (0: off).
    #[serde(default = "live_defaults::dead_man_secs")]
    pub dead_man_secs: f64,
    /// Cancel open orders organism did not send (else they are only reported).
    #[serde(default)]
    pub cancel_unknown_orders: bool,
    /// Seconds an order request stays valid (its `expiresAfter`): after that an unanswered
    /// request can no longer execute, so it may be sent again.
    #[serde(default = "live_defaults::order_expiry_secs")]
    pub order_expiry_secs: f64,
}

mod live_defaults {
    pub fn account() -> String {
        "live".into()
    }
    pub fn yes() -> bool {
        true
    }
    pub fn store() -> String {
        "live/store".into()
    }
    pub fn stop_file() -> String {
        "live/STOP".into()
    }
    pub fn warmup_bars() -> usize {
        1000
    }
    pub fn max_order_notional() -> f64 {
        1000.0
    }
    pub fn max_slippage() -> f64 {
        0.005
    }
    pub fn daily_loss() -> f64 {
        0.03
    }
    pub fn max_drawdown() -> f64 {
        0.10
    }
    pub fn leverage() -> u32 {
        3
    }
    pub fn reconcile_secs() -> f64 {
        300.0
    }
    pub fn dead_man_secs() -> f64 {
        120.0
    }
    pub fn order_expiry_secs() -> f64 {
        15.0
    }
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
    pub universe: UniverseConfig,
    pub book: crate::execution::portfolio::Limits,
    pub regime: RegimeConfig,
    pub paper: PaperConfig,
    pub exchange: ExchangeConfig,
    /// `[live]`, only from a config file.
    #[serde(default)]
    pub live: Option<LiveConfig>,
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
                        message: e.to_string().trim_end().replace('\n', " "),
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
            overlay(&mut base, f.table(), "", &f.flag)?;
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
        let err = |key: &str, message: String| ConfigError::Key {
            file: origin(key),
            key: key.into(),
            message,
        };
        // A section's own checks, its refusal named by the file or flag the key came from.
        let section =
            |r: Result<(), crate::settings::Invalid>| r.map_err(|i| err(&i.key, i.message));
        let range =
            |key: &str, v: f64, lo: f64, hi: f64| section(crate::settings::range(key, v, lo, hi));
        section(self.costs.validate())?;
        section(self.backtest.validate())?;
        section(self.synthetic.validate())?;
        self.universe.rule(None).validate().map_err(|m| {
            let key = m
                .split_whitespace()
                .next()
                .unwrap_or("universe")
                .to_string();
            err(&key, m)
        })?;
        if let Some(bad) = self
            .universe
            .exclude
            .iter()
            .find(|c| crate::market::types::Coin::new(c).is_err())
        {
            return Err(err(
                "universe.exclude",
                format!("`{bad}` is not a coin name (letters and digits only)"),
            ));
        }
        self.book.validate().map_err(|m| {
            let key = m.split_whitespace().next().unwrap_or("book").to_string();
            err(&key, m)
        })?;
        section(self.data.validate())?;
        section(self.evolution.validate())?;
        section(self.promotion.validate())?;
        section(self.portfolio.validate())?;
        let pp = &self.paper;
        if pp.account.trim().is_empty() {
            return Err(err("paper.account", "must not be empty".into()));
        }
        range(
            "exchange.weight_per_minute",
            self.exchange.weight_per_minute,
            1.0,
            1e7,
        )?;
        range("paper.capital", pp.capital, 1.0, 1e15)?;
        if pp.coins.is_empty() || pp.coins.iter().any(|c| c.trim().is_empty()) {
            return Err(err(
                "paper.coins",
                "must list at least one coin, none empty".into(),
            ));
        }
        if let Some(twice) = crate::market::types::duplicate(&pp.coins) {
            return Err(err("paper.coins", format!("`{twice}` is listed twice")));
        }
        for c in &pp.coins {
            crate::market::types::Coin::new(c).map_err(|m| err("paper.coins", m))?;
        }
        if crate::exchange::hyperliquid::interval_ms(&pp.interval).is_none() {
            return Err(err(
                "paper.interval",
                format!("`{}` is not a Hyperliquid candle interval", pp.interval),
            ));
        }
        if !(1..=5000).contains(&pp.warmup_bars) {
            return Err(err(
                "paper.warmup_bars",
                format!("{} is out of range: must be in [1, 5000]", pp.warmup_bars),
            ));
        }
        if !(0..=10_000).contains(&pp.gap_pause_bars) {
            return Err(err(
                "paper.gap_pause_bars",
                format!(
                    "{} is out of range: must be in [0, 10000]",
                    pp.gap_pause_bars
                ),
            ));
        }
        range("paper.bar_wait_secs", pp.bar_wait_secs, 0.1, 86_400.0)?;
        range(
            "paper.max_gross_leverage",
            pp.max_gross_leverage,
            0.1,
            100.0,
        )?;
        range("paper.daily_loss", pp.daily_loss, 0.001, 1.0)?;
        range("paper.max_drawdown", pp.max_drawdown, 0.001, 1.0)?;
        range(
            "paper.portfolio_max_gross_leverage",
            pp.portfolio_max_gross_leverage,
            0.1,
            100.0,
        )?;
        range(
            "paper.portfolio_daily_loss",
            pp.portfolio_daily_loss,
            0.001,
            1.0,
        )?;
        range(
            "paper.portfolio_max_drawdown",
            pp.portfolio_max_drawdown,
            0.001,
            1.0,
        )?;
        range("paper.min_days", pp.min_days, 0.0, 3650.0)?;
        if let Some(l) = &self.live {
            if l.account.trim().is_empty() || l.account == pp.account {
                return Err(err(
                    "live.account",
                    "must not be empty nor the paper account".into(),
                ));
            }
            range("live.capital", l.capital, 10.0, 1e12)?;
            if l.strategies.is_empty() {
                return Err(err(
                    "live.strategies",
                    "must list the strategy ids to trade live".into(),
                ));
            }
            if l.coins
                .as_ref()
                .is_some_and(|c| c.is_empty() || c.iter().any(|x| x.trim().is_empty()))
            {
                return Err(err("live.coins", "must list at least one coin".into()));
            }
            if let Some(twice) = l.coins.as_deref().and_then(crate::market::types::duplicate) {
                return Err(err("live.coins", format!("`{twice}` is listed twice")));
            }
            if !(1..=5000).contains(&l.warmup_bars) {
                return Err(err(
                    "live.warmup_bars",
                    format!("{} is out of range: must be in [1, 5000]", l.warmup_bars),
                ));
            }
            range("live.max_order_notional", l.max_order_notional, 10.0, 1e12)?;
            range("live.max_slippage", l.max_slippage, 0.0001, 0.1)?;
            range("live.daily_loss", l.daily_loss, 0.001, 1.0)?;
            range("live.max_drawdown", l.max_drawdown, 0.001, 1.0)?;
            if !(1..=50).contains(&l.leverage) {
                return Err(err(
                    "live.leverage",
                    format!("{} is out of range: must be in [1, 50]", l.leverage),
                ));
            }
            range("live.reconcile_secs", l.reconcile_secs, 1.0, 86_400.0)?;
            if l.dead_man_secs != 0.0 {
                range("live.dead_man_secs", l.dead_man_secs, 10.0, 86_400.0)?;
            }
            range("live.order_expiry_secs", l.order_expiry_secs, 1.0, 3600.0)?;
            for (k, v) in [
                ("live.account_address", &l.account_address),
                ("live.vault_address", &l.vault_address),
            ] {
                if !v.is_empty() && crate::exchange::hyperliquid::signing::address_bytes(v).is_err()
                {
                    return Err(err(
                        k,
                        format!("`{v}` is not a 0x address of 40 hex digits"),
                    ));
                }
            }
        }
        range("paper.max_tracking", pp.max_tracking, 0.0, 1.0)?;
        range("paper.min_sharpe_z", pp.min_sharpe_z, -100.0, 0.0)?;
        let g = &self.regime;
        if !(2..=100_000).contains(&g.vol_window) {
            return Err(err(
                "regime.vol_window",
                format!("{} is out of range: must be in [2, 100000]", g.vol_window),
            ));
        }
        if !(1..=1_000_000).contains(&g.lookback) {
            return Err(err(
                "regime.lookback",
                format!("{} is out of range: must be in [1, 1000000]", g.lookback),
            ));
        }
        range("regime.low_quantile", g.low_quantile, 0.0, 1.0)?;
        range("regime.high_quantile", g.high_quantile, g.low_quantile, 1.0)?;
        g.policy().map_err(|(key, m)| err(&key, m))?;
        for (key, url) in [
            ("exchange.api_url", &self.exchange.api_url),
            ("exchange.sentiment_url", &self.exchange.sentiment_url),
        ] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(err(key, format!("`{url}` is not an http(s) URL")));
            }
        }
        range(
            "exchange.connect_timeout_secs",
            self.exchange.connect_timeout_secs,
            0.1,
            600.0,
        )?;
        range(
            "exchange.read_timeout_secs",
            self.exchange.read_timeout_secs,
            0.1,
            600.0,
        )?;
        Ok(())
    }

    /// The data selection for loading.
    pub fn data_selection(&self) -> DataSelection {
        self.data.selection(&self.synthetic)
    }

    /// The time limits of exchange requests.
    pub fn timeouts(&self) -> crate::exchange::hyperliquid::info::Timeouts {
        crate::exchange::hyperliquid::info::Timeouts {
            connect: std::time::Duration::from_secs_f64(self.exchange.connect_timeout_secs),
            read: std::time::Duration::from_secs_f64(self.exchange.read_timeout_secs),
        }
    }

    /// The Hyperliquid base URL: `flag`, else `HYPERLIQUID_API_URL`, else `exchange.api_url`.
    pub fn api_url(&self, flag: Option<&str>) -> String {
        flag.map(String::from)
            .or_else(|| {
                std::env::var("HYPERLIQUID_API_URL")
                    .ok()
                    .filter(|v| !v.is_empty())
            })
            .unwrap_or_else(|| self.exchange.api_url.clone())
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
}

impl Flag {
    pub fn new(flag: &str, key: &'static str, value: impl Into<Value>) -> Self {
        Self {
            flag: flag.to_string(),
            key,
            value: value.into(),
        }
    }

    /// The flag as a TOML table (`section.key = value`).
    fn table(&self) -> Table {
        let mut parts: Vec<&str> = self.key.split('.').collect();
        let leaf = parts.pop().unwrap_or(self.key);
        let mut t = Table::new();
        t.insert(leaf.to_string(), self.value.clone());
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
    }
}
