//! The async driver of the session loop (`paper run`, `live run`): the session continued from
//! its journal or started after a warm-up fetched over REST, the bars missed while away
//! processed, then the WebSocket feed's bars as they close, fed to the sync
//! [`super::driver::Trader`]; live, the exchange tended between bars.

use super::journal::{self, Entry, NoticeRow, Row, PORTFOLIO};
use std::{collections::BTreeMap, path::Path, sync::Arc, time::Duration};

use crate::{
    clock::WallClock,
    exchange::hyperliquid::{
        info::{InfoClient, RetryPolicy},
        ws::{self, FeedConfig, FeedEvent, Subscription},
        Candle, Funding,
    },
    market::{
        csv::{fear_greed_to_csv, write_atomic},
        format_ts,
        universe::FEAR_GREED_FILE,
    },
    promotion::registry::{Registry, Status, Strategy},
};

use super::{
    driver::{
        histories_upto, now_ms, open_stores, store_bars, stored_fear_greed, venue_store, venue_url,
        Mode, Notice, RunError, Trader,
    },
    paper::{book_specs, RunConfig, Session, SessionConfig},
    rig::{self, LiveRig},
    CandleStore,
};

/// Every bar the exchange has closed after `after` (open time) for `coin`, oldest first: pages
/// of `candleSnapshot` until nothing newer comes; the newest bar returned is the one still
/// forming and is left out.
async fn closed_bars_after(
    info: &InfoClient,
    coin: &str,
    interval: &str,
    iv: i64,
    after: i64,
) -> Result<Vec<Candle>, RunError> {
    let mut out: Vec<Candle> = Vec::new();
    let mut start = after + iv;
    loop {
        let mut page = candles_from(info, coin, interval, start).await?;
        page.sort_by_key(|c| c.t);
        page.retain(|c| c.t >= start && (c.t - after) % iv == 0);
        let Some(last) = page.last().map(|c| c.t) else {
            break;
        };
        out.extend(page);
        start = last + iv;
    }
    out.pop();
    Ok(out)
}

/// One `candleSnapshot` answer: `coin`'s bars from `from` on.
async fn candles_from(
    info: &InfoClient,
    coin: &str,
    interval: &str,
    from: i64,
) -> Result<Vec<Candle>, RunError> {
    info.candle_snapshot(coin, interval, from, i64::MAX / 4)
        .await
        .map_err(|source| RunError::Fetch {
            context: format!(
                "fetching {coin} {interval} candles from {}",
                format_ts(from)
            ),
            source,
        })
}

/// Refuses a store whose last bar (opening at `last`) the venue has not reached: its clock is
/// behind the store's (the bars came from another venue, or from a local exchange's
/// accelerated clock), and waiting for the next bar would wait for the venue to catch up.
async fn ahead_of_venue(
    info: &InfoClient,
    file: &Path,
    coin: &str,
    interval: &str,
    last: i64,
    venue: &str,
) -> Result<(), RunError> {
    let fetched = candles_from(info, coin, interval, last).await?;
    if fetched.iter().any(|c| c.t >= last) {
        return Ok(());
    }
    // The venue's newest bar, for the message (Hyperliquid serves the last 5,000).
    let newest = candles_from(info, coin, interval, 0)
        .await?
        .iter()
        .map(|c| c.t)
        .max();
    Err(RunError::Refused(format!(
        "{}: the last stored {coin} bar opens at {} UTC, but {venue} has no bar that late (its \
         newest opens at {}): the store is ahead of the venue's clock, so it holds another \
         venue's bars or an accelerated local exchange's. Move the store folder away (or set \
         paper.store) and run again",
        file.display(),
        format_ts(last),
        newest.map_or("-".to_string(), |t| format!("{} UTC", format_ts(t)))
    )))
}

/// The funding events of the hours of `bars` (fetched once, sorted, without duplicates);
/// none, with a warning, when the exchange cannot say.
async fn funding_of(info: &InfoClient, coin: &str, iv: i64, bars: &[Candle]) -> Vec<Funding> {
    let (Some(first), Some(last)) = (bars.first(), bars.last()) else {
        return Vec::new();
    };
    let mut funding = Vec::new();
    let mut from = first.t;
    let end = last.t + iv - 1;
    loop {
        let page = match info.funding_history(coin, from, Some(end)).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(
                    coin,
                    "funding history unavailable ({e}); these bars carry no funding"
                );
                break;
            }
        };
        let Some(newest) = page.iter().map(|f| f.time).max() else {
            break;
        };
        funding.extend(page.into_iter().filter(|f| f.time >= from && f.time <= end));
        if newest >= end || newest < from {
            break;
        }
        from = newest + 1;
    }
    funding.sort_by_key(|f| f.time);
    funding.dedup_by_key(|f| f.time);
    funding
}

/// Fetches `bars`' funding and stores both.
async fn fetch_and_store(
    info: &InfoClient,
    store: &mut CandleStore,
    coin: &str,
    iv: i64,
    bars: &[Candle],
) -> Result<(), RunError> {
    let funding = funding_of(info, coin, iv, bars).await;
    Ok(store_bars(store, coin, iv, bars, &funding)?)
}

/// Writes the live Fear & Greed index into the store folder (kept as it was when the index
/// cannot be had).
async fn refresh_fear_greed(url: &str, dir: &Path) {
    match crate::exchange::sentiment::fetch_fear_greed(url).await {
        Ok(rows) => {
            let path = dir.join(FEAR_GREED_FILE);
            if let Err(e) = write_atomic(&path, fear_greed_to_csv(&rows).as_bytes()) {
                tracing::warn!("{}: {e}", path.display());
            }
        }
        Err(e) => tracing::warn!("Fear & Greed index unavailable ({e}); keeping the stored one"),
    }
}

/// How a session is run.
pub struct RunSetup<'a> {
    pub mode: Mode,
    /// The config the session trades with (live: `[live]` laid over `[paper]`).
    pub cfg: &'a RunConfig,
    /// The registry and journal, and where it is.
    pub reg: Registry,
    pub reg_path: &'a Path,
    /// The strategies to trade (see [`strategies`]).
    pub strategies: Vec<Strategy>,
    /// The exchange's API base URL.
    pub url: &'a str,
    /// Stop after the bar opening at this time.
    pub until_ts: Option<i64>,
}

/// `paper run` and `live run`: the session continued from its journal (or started after a
/// warm-up fetched over REST), the bars missed while away processed, then the WebSocket feed's
/// bars as they close, until `until_ts`, the kill switch or Ctrl-C.
///
/// # Errors
/// [`RunError`] when the exchange, a store, the journal or the registry fails in a way the
/// session cannot go on from.
pub async fn run(spec: RunSetup<'_>, report: &mut dyn FnMut(Notice)) -> Result<(), RunError> {
    let RunSetup {
        mode,
        cfg,
        mut reg,
        reg_path,
        strategies,
        url,
        until_ts,
    } = spec;
    let scfg = SessionConfig::of(cfg);
    let p = &cfg.paper;
    let account = p.account.clone();
    let iv = scfg.interval_ms;
    let interval = p.interval;
    let (specs, reserve) = book_specs(&strategies, cfg).map_err(RunError::Refused)?;
    // The journal of an account belongs to the venue its session trades on.
    let venue = venue_url(url);
    if let Some((theirs, since)) = journal::venue_of(reg.connection(), &account)? {
        if theirs != venue {
            return Err(RunError::Refused(format!(
                "account `{account}` has a session on {theirs} (since {} UTC); this run is against \
                 {venue}. Give this venue its own account ({}.account in the config), or run \
                 against {theirs} with --api-url",
                format_ts(since),
                mode.name()
            )));
        }
    }
    for s in strategies
        .iter()
        .filter(|s| s.status == Status::Promoted && mode == Mode::Paper)
    {
        reg.set_status(
            &s.id,
            Status::Paper,
            &format!("paper trading in account `{account}`"),
            now_ms(),
        )?;
    }
    let info = Arc::new(
        InfoClient::with_timeouts(
            url,
            RetryPolicy::default(),
            cfg.exchange.weight_per_minute,
            cfg.exchange.timeouts(),
        )
        .map_err(|source| RunError::Fetch {
            context: format!("connecting to {url}"),
            source,
        })?,
    );
    let rig: Option<LiveRig> = match mode {
        Mode::Live { dry_run } => Some(rig::rig(cfg, reg_path, url, info.clone(), dry_run).await?),
        Mode::Paper => None,
    };
    let store_dir = venue_store(Path::new(&p.store), url);
    let mut stores = open_stores(&store_dir, &p.coins, interval)?;
    for (coin, store) in &stores {
        if let Some(&last) = store.candles().ts.last() {
            ahead_of_venue(&info, store.path(), coin, interval.as_str(), last, venue).await?;
        }
    }
    // The sentiment regime reads the index of the day before each bar; it is refreshed at the
    // start and once a UTC day.
    let sentiment = cfg
        .regime
        .enabled
        .then(|| cfg.exchange.sentiment_url.clone());
    let mut fg_day = None;
    if let Some(u) = &sentiment {
        refresh_fear_greed(u, &store_dir).await;
        fg_day = Some(now_ms().div_euclid(86_400_000));
    }
    let fear_greed = stored_fear_greed(&store_dir);
    let everything = |stores: &BTreeMap<String, CandleStore>| {
        histories_upto(stores, fear_greed.as_ref(), &mut BTreeMap::new(), i64::MAX)
    };
    let restored = Session::restore(
        reg.connection(),
        &account,
        scfg,
        specs.clone(),
        &everything(&stores),
    )?;
    let session = match restored {
        Some(s) => {
            tracing::info!(
                account,
                "continuing the session from the journal at bar {}",
                format_ts(s.last_ts().unwrap_or(0))
            );
            // A session whose journal does not end with its stop notice ended in a crash.
            let clean = journal::last(reg.connection(), &account)?
                .is_some_and(|e| matches!(&e.row, Row::Notice(n) if n.event == "stop"));
            let (event, how) = if clean {
                ("session", "resumed")
            } else {
                ("restart", "restarted after a crash")
            };
            let notice = NoticeRow {
                event: event.into(),
                text: format!(
                    "the {} session {how}: it continues from bar {}",
                    mode.name(),
                    format_ts(s.last_ts().unwrap_or(0))
                ),
            };
            journal::append(
                reg.connection(),
                &account,
                &[Entry::new(PORTFOLIO, s.last_ts().unwrap_or(0), notice)],
                now_ms(),
            )?;
            s
        }
        None => {
            for (coin, store) in stores.iter_mut() {
                // A warm-up cut short by a crash is completed up to the exchange's last closed
                // bar before the session starts.
                let bars = match store.candles().ts.last() {
                    Some(&last) => {
                        closed_bars_after(&info, coin, interval.as_str(), iv, last).await?
                    }
                    None => {
                        let after = now_ms() - (p.warmup_bars as i64 + 2) * iv;
                        let after = after.div_euclid(iv) * iv;
                        let bars =
                            closed_bars_after(&info, coin, interval.as_str(), iv, after).await?;
                        let keep = bars.len().saturating_sub(p.warmup_bars);
                        bars[keep..].to_vec()
                    }
                };
                fetch_and_store(&info, store, coin, iv, &bars).await?;
            }
            let (s, rows) = Session::start(&account, scfg, specs, reserve, &everything(&stores));
            journal::append(reg.connection(), &account, &rows, now_ms())?;
            tracing::info!(
                account,
                books = s.books().len(),
                "paper session started after {} warm-up bars",
                p.warmup_bars
            );
            s
        }
    };
    journal::set_venue(reg.connection(), &account, venue, now_ms())?;
    let mut trader = Trader::new(
        mode,
        reg,
        session,
        stores,
        fear_greed,
        (p, store_dir.clone()),
    );
    if let Some(r) = &rig {
        trader.session_mut().link(r.executor.clone());
    } else {
        trader = trader.adopting(cfg.clone());
    }
    trader.sync_registry(report)?;
    // Bars closed while the runner was away.
    for (coin, store) in trader.stores.iter_mut() {
        let after = store.candles().ts.last().copied().unwrap_or(now_ms());
        let bars = closed_bars_after(&info, coin, interval.as_str(), iv, after).await?;
        fetch_and_store(&info, store, coin, iv, &bars).await?;
    }
    let subs: Vec<Subscription> = p
        .coins
        .iter()
        .map(|c| Subscription::Candle {
            coin: c.clone(),
            interval: interval.as_str().to_string(),
        })
        .collect();
    let mut fc = FeedConfig::new(ws::ws_url(url), subs);
    fc.resume_from = trader
        .stores
        .iter()
        .filter_map(|(c, s)| {
            s.candles()
                .ts
                .last()
                .map(|&t| ((c.clone(), interval.as_str().to_string()), t))
        })
        .collect();
    let mut feed = ws::spawn(fc, info.clone(), Arc::new(WallClock));
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut stopped = "";
    let outcome = 'session: loop {
        if let Some(u) = &sentiment {
            let day = now_ms().div_euclid(86_400_000);
            if fg_day != Some(day) && !trader.reached(until_ts) {
                refresh_fear_greed(u, &store_dir).await;
                trader.reload_fear_greed();
                fg_day = Some(day);
            }
        }
        // Every bar that all coins have (or that waited long enough), in time order.
        if let Err(e) = trader.process_ready(now_ms(), until_ts, report) {
            break Err(e);
        }
        if let Some(r) = &rig {
            // Reconciliation (first once the bars missed are processed) and the dead-man's
            // switch.
            let rows = r.tend(&mut trader, report).await;
            if let Err(e) = trader.journal(&rows) {
                break Err(e.into());
            }
        }
        if trader.reached(until_ts) {
            tracing::info!(account, "reached --until-ts; stopping");
            stopped = "it reached --until-ts";
            break Ok(());
        }
        // The kill switch and resume requests.
        let requests = match trader.requests() {
            Ok(r) => r,
            Err(e) => break Err(e.into()),
        };
        let mut stop = false;
        for r in requests {
            let mut rows = trader.act(&r);
            if r.action == journal::Action::Stop {
                stop = true;
                if let Some(live) = &rig {
                    rows.extend(live.cancel_all(trader.session()).await);
                }
            }
            if let Err(e) = trader.acted(&r, &rows) {
                break 'session Err(e);
            }
            if stop {
                break;
            }
        }
        if stop {
            report(Notice::Say(format!(
                "kill switch: every position flattened; the session is stopped (organism {m} \
                 resume, then {m} run, to trade again)",
                m = mode.name()
            )));
            stopped = "the kill switch stopped it";
            break Ok(());
        }
        tokio::select! {
            ev = feed.events.recv() => match ev {
                Some(FeedEvent::Candle { coin, candle, .. }) => {
                    if trader.session().last_ts().is_some_and(|l| candle.t <= l) {
                        tracing::warn!(coin, "bar {} arrived after the session moved past it; dropped", format_ts(candle.t));
                    } else if let Some(store) = trader.stores.get_mut(&coin) {
                        if let Err(e) = fetch_and_store(&info, store, &coin, iv, &[candle]).await {
                            break Err(e);
                        }
                    }
                }
                Some(FeedEvent::Malformed(m)) => tracing::warn!("feed: skipped a message: {m}"),
                Some(FeedEvent::Reconnected(n)) => tracing::info!("feed reconnected ({n} so far)"),
                Some(_) => {}
                None => break Err(RunError::Refused("the market feed stopped".into())),
            },
            _ = tick.tick() => {}
            _ = &mut ctrl_c => {
                let m = mode.name();
                report(Notice::Note(format!(
                    "interrupted (Ctrl-C): every processed bar is in the journal; {} \
                     `organism {m} run` continues the session (the bars missed meanwhile \
                     included), `organism {m} stop` flattens everything and stops it",
                    match mode {
                        Mode::Live { dry_run: false } => "the positions stay open on the \
                            exchange, their stops and risk limits unwatched until",
                        _ => "the positions stay as they are until",
                    }
                )));
                stopped = "interrupted (Ctrl-C)";
                break Ok(());
            }
        }
    };
    feed.stop();
    let text = match &outcome {
        Ok(()) => format!("the {} session stopped: {stopped}", mode.name()),
        Err(e) => format!("the {} session stopped on an error: {e}", mode.name()),
    };
    let notice = Entry::new(
        PORTFOLIO,
        trader.session().last_ts().unwrap_or(0),
        NoticeRow {
            event: "stop".into(),
            text,
        },
    );
    if let Err(e) = trader.journal(&[notice]) {
        tracing::warn!("the stop notice was not journaled: {e}");
    }
    outcome
}
