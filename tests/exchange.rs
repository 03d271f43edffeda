//! The signed exchange client against the local test exchange's `/exchange` endpoint (started
//! here on 127.0.0.1): fills, resting orders, refusals with Hyperliquid's error strings,
//! signatures, agents, vaults, nonces, faults, triggers and funding. Expected prices, fees and
//! balances are worked out here from the exchange's candles with plain arithmetic.

use std::{net::SocketAddr, str::FromStr, sync::Arc, time::Duration};

use futures_util::{SinkExt, StreamExt};
use organism::{
    exchange::{
        hyperliquid::{
            exchange::{
                ExchangeClient, ExchangeError, NonceStore, OrderState, PlacedStatus, RejectKind,
            },
            info::{InfoClient, RetryPolicy, Timeouts},
            signing::Signer,
            wire::{Cloid, OidOrCloid, OrderTypeWire, OrderWire, Tif, Tpsl},
        },
        local::LocalExchange,
    },
    market::{synthetic::SyntheticParams, HOUR_MS},
};
use rust_decimal::Decimal;

const START: i64 = 1_704_067_200_000;
const ACCOUNT_KEY: &str = "0x0123456789012345678901234567890123456789012345678901234567890123";
const AGENT_KEY: &str = "0x1111111111111111111111111111111111111111111111111111111111111111";
const OTHER_KEY: &str = "0x2222222222222222222222222222222222222222222222222222222222222222";
const ETH: u32 = 1;
const BTC: u32 = 0;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

async fn exchange() -> LocalExchange {
    let p = SyntheticParams {
        bars: 400,
        start_ms: START,
        coins: vec!["BTC".into(), "ETH".into()],
        annual_vol: vec![0.5, 0.7],
        start_price: vec![42_000.0, 2_300.0],
        ..SyntheticParams::default()
    };
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    LocalExchange::start(addr, &p, START + 100 * HOUR_MS + HOUR_MS / 2)
        .await
        .unwrap()
}

fn info(ex: &LocalExchange, read: Duration) -> Arc<InfoClient> {
    let retry = RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(10),
    };
    let t = Timeouts {
        connect: Duration::from_secs(2),
        read,
        ..Timeouts::default()
    };
    Arc::new(InfoClient::with_timeouts(&ex.http_url(), retry, 100_000.0, t).unwrap())
}

/// The last nonce any client of this test process used. Clients of one key made within the
/// same millisecond would otherwise sign with the same wall-clock nonce, which the exchange
/// refuses as a duplicate (as Hyperliquid does).
static LAST_NONCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A nonce store shared by every client of the test process.
struct SharedNonces;

impl NonceStore for SharedNonces {
    fn last(&self) -> u64 {
        LAST_NONCE.load(std::sync::atomic::Ordering::SeqCst)
    }
    fn save(&mut self, nonce: u64) -> Result<(), String> {
        LAST_NONCE.fetch_max(nonce, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

fn client(
    ex: &LocalExchange,
    key: &str,
    account: Option<String>,
    vault: Option<String>,
) -> ExchangeClient {
    ExchangeClient::new(
        info(ex, Duration::from_secs(5)),
        Signer::from_hex(key).unwrap(),
        account,
        vault,
        false,
        Box::new(SharedNonces),
    )
}

/// Rounds to `dp` decimals, half away from zero, in f64 (independent of the code under test).
fn round_dp(x: f64, dp: i32) -> f64 {
    let m = 10f64.powi(dp);
    (x * m).round() / m
}

/// ETH's mid, bid and ask at the exchange's clock: the current bar's close rounded to 5
/// significant figures (1 decimal near 2,300), ± 0.01 %. Orders meet the current bar's open.
fn eth_touch(ex: &LocalExchange) -> (f64, f64, f64) {
    let c = ex.candles("ETH", "1h").unwrap();
    let i = c.ts.partition_point(|&t| t <= ex.now()) - 1;
    let mid = round_dp(c.open[i], 1);
    assert!(
        (1000.0..10000.0).contains(&mid),
        "ETH stays in 4 digits: {mid}"
    );
    (mid, round_dp(mid * 0.9999, 1), round_dp(mid * 1.0001, 1))
}

fn order(a: u32, buy: bool, px: f64, sz: &str, tif: Tif, cloid: Option<Cloid>) -> OrderWire {
    OrderWire {
        a,
        b: buy,
        p: format!("{px:.1}"),
        s: sz.into(),
        r: false,
        t: OrderTypeWire::limit(tif),
        c: cloid.map(|c| c.to_hex()),
    }
}

fn rejected(s: &PlacedStatus) -> RejectKind {
    match s {
        PlacedStatus::Rejected { kind, .. } => *kind,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn orders_fill_rest_and_are_refused_as_hyperliquid_does() {
    let ex = exchange().await;
    let c = client(&ex, ACCOUNT_KEY, None, None);
    let me = c.account().to_string();
    ex.fund(&me, dec("10000"));
    let (mid, bid, ask) = eth_touch(&ex);

    // An IOC buy through the ask fills at the ask, taker fee 0.045 %.
    let s = c
        .place(vec![order(
            ETH,
            true,
            round_dp(ask * 1.01, 1),
            "0.5",
            Tif::Ioc,
            None,
        )])
        .await
        .unwrap();
    let PlacedStatus::Filled {
        total_sz, avg_px, ..
    } = &s[0]
    else {
        panic!("{s:?}")
    };
    assert_eq!(*total_sz, dec("0.5"));
    assert_eq!(avg_px.to_string(), format!("{ask}"));
    let fills = c.user_fills().await.unwrap();
    assert_eq!(fills.len(), 1);
    // 0.5 × ask × 0.045 %, to 6 decimals, halves away from zero (exactly, in decimal).
    let fee_exact = dec("0.5") * dec(&format!("{ask}")) * dec("0.00045");
    let fee_dec =
        fee_exact.round_dp_with_strategy(6, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    assert_eq!(fills[0].fee, fee_dec);
    let fee: f64 = fee_dec.to_string().parse().unwrap();
    assert_eq!(fills[0].dir, "Open Long");
    let st = c.account_state().await.unwrap();
    assert_eq!(st.position("ETH"), dec("0.5"));
    let value = 10_000.0 - 0.5 * ask - fee + 0.5 * mid;
    let got: f64 = st.account_value.to_string().parse().unwrap();
    assert!((got - value).abs() < 1e-6, "{got} vs {value}");

    // Refusals.
    let r = c
        .place(vec![order(ETH, true, ask, "0.5", Tif::Alo, None)])
        .await
        .unwrap();
    assert_eq!(rejected(&r[0]), RejectKind::PostOnlyWouldMatch);
    let r = c
        .place(vec![order(
            ETH,
            true,
            round_dp(bid * 0.99, 1),
            "0.5",
            Tif::Ioc,
            None,
        )])
        .await
        .unwrap();
    assert_eq!(rejected(&r[0]), RejectKind::IocNoMatch);
    let mut bad_tick = order(ETH, true, ask, "0.5", Tif::Ioc, None);
    bad_tick.p = format!("{ask:.1}3");
    assert_eq!(
        rejected(&c.place(vec![bad_tick]).await.unwrap()[0]),
        RejectKind::Tick
    );
    assert_eq!(
        rejected(
            &c.place(vec![order(ETH, true, ask, "0.005", Tif::Ioc, None)])
                .await
                .unwrap()[0]
        ),
        RejectKind::Size
    );
    let mut small = order(BTC, true, 0.0, "0.0001", Tif::Ioc, None);
    small.p = "50000".into();
    let r = c.place(vec![small]).await.unwrap();
    let PlacedStatus::Rejected { kind, message } = &r[0] else {
        panic!()
    };
    assert_eq!(*kind, RejectKind::MinNotional);
    assert_eq!(message, "Order must have minimum value of $10. asset=0");
    let mut ro = order(ETH, true, ask, "0.1", Tif::Ioc, None);
    ro.r = true;
    assert_eq!(
        rejected(&c.place(vec![ro]).await.unwrap()[0]),
        RejectKind::ReduceOnly
    );

    // A resting order with a cloid: status, modify, cancel by cloid.
    let cl = Cloid::derive(&["test", "ETH", "1", "0"]);
    let low = round_dp(bid * 0.98, 1);
    let r = c
        .place(vec![order(ETH, true, low, "0.5", Tif::Gtc, Some(cl))])
        .await
        .unwrap();
    let PlacedStatus::Resting { oid } = r[0] else {
        panic!("{r:?}")
    };
    let open = c.open_orders().await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].cloid.as_deref(), Some(cl.to_hex().as_str()));
    match c
        .order_status(&OidOrCloid::Cloid(cl.to_hex()))
        .await
        .unwrap()
    {
        OrderState::Known { status, order } => {
            assert_eq!(status, "open");
            assert_eq!(order.oid, oid);
        }
        other => panic!("{other:?}"),
    }
    let lower = round_dp(bid * 0.97, 1);
    c.modify(
        OidOrCloid::Oid(oid),
        order(ETH, true, lower, "0.5", Tif::Gtc, Some(cl)),
    )
    .await
    .unwrap();
    let open = c.open_orders().await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].limit_px.to_string(), format!("{lower}"));
    c.cancel_by_cloid(ETH, &cl).await.unwrap();
    assert!(c.open_orders().await.unwrap().is_empty());
    match c.cancel_by_cloid(ETH, &cl).await {
        Err(ExchangeError::Rejected { kind, .. }) => assert_eq!(kind, RejectKind::NotOpen),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        c.order_status(&OidOrCloid::Cloid(Cloid::derive(&["never"]).to_hex()))
            .await
            .unwrap(),
        OrderState::Unknown
    );

    // Leverage 2: 10,000 of value carries 20,000 of notional, so 9 more ETH do not fit.
    c.update_leverage(ETH, true, 2).await.unwrap();
    let r = c
        .place(vec![order(
            ETH,
            true,
            round_dp(ask * 1.01, 1),
            "9",
            Tif::Ioc,
            None,
        )])
        .await
        .unwrap();
    assert_eq!(rejected(&r[0]), RejectKind::Margin);

    // The dead-man's switch: too early is refused; 6 s ahead is taken.
    assert!(matches!(
        c.schedule_cancel(Some(
            organism::exchange::hyperliquid::exchange::now_ms() + 1000
        ))
        .await,
        Err(ExchangeError::Rejected { .. })
    ));
    c.schedule_cancel(Some(
        organism::exchange::hyperliquid::exchange::now_ms() + 6000,
    ))
    .await
    .unwrap();
}

#[tokio::test]
async fn only_the_account_its_agents_and_fresh_nonces_are_accepted() {
    let ex = exchange().await;
    let owner = client(&ex, ACCOUNT_KEY, None, None);
    let me = owner.account().to_string();
    ex.fund(&me, dec("10000"));
    let (_, _, ask) = eth_touch(&ex);
    let buy = || order(ETH, true, round_dp(ask * 1.01, 1), "0.1", Tif::Ioc, None);

    // A key nobody funded or approved.
    let stranger = client(&ex, OTHER_KEY, None, None);
    match stranger.place(vec![buy()]).await {
        Err(ExchangeError::Rejected { kind, message }) => {
            assert_eq!(kind, RejectKind::Signer);
            assert!(message.contains(&stranger.signer_address()), "{message}");
        }
        other => panic!("{other:?}"),
    }

    // An agent, approved by the owner, trades the owner's account.
    let agent_signer = Signer::from_hex(AGENT_KEY).unwrap();
    let agent_address = agent_signer.address();
    let agent = client(&ex, AGENT_KEY, Some(me.clone()), None);
    assert!(matches!(
        agent.place(vec![buy()]).await,
        Err(ExchangeError::Rejected {
            kind: RejectKind::Signer,
            ..
        })
    ));
    owner
        .approve_agent(&agent_address, "organism")
        .await
        .unwrap();
    assert!(matches!(
        agent.place(vec![buy()]).await.unwrap()[0],
        PlacedStatus::Filled { .. }
    ));
    assert_eq!(ex.position(&me, "ETH"), dec("0.1"));

    // The same signed request twice: the nonce is refused the second time.
    let req = owner
        .sign(organism::exchange::hyperliquid::wire::Action::orders(vec![
            buy(),
        ]))
        .unwrap();
    owner.send(&req).await.unwrap();
    match owner.send(&req).await {
        Err(ExchangeError::Rejected { kind, .. }) => assert_eq!(kind, RejectKind::Nonce),
        other => panic!("{other:?}"),
    }
    assert_eq!(ex.position(&me, "ETH"), dec("0.2"));

    // A request altered after signing recovers another signer.
    let mut req = owner
        .sign(organism::exchange::hyperliquid::wire::Action::orders(vec![
            buy(),
        ]))
        .unwrap();
    if let organism::exchange::hyperliquid::wire::Action::Order { orders, .. } = &mut req.action {
        orders[0].s = "5".into();
    }
    assert!(matches!(
        owner.send(&req).await,
        Err(ExchangeError::Rejected {
            kind: RejectKind::Signer,
            ..
        })
    ));
    assert_eq!(ex.position(&me, "ETH"), dec("0.2"));

    // A nonce two days old is outside the window.
    let mut old = ExchangeClient::new(
        info(&ex, Duration::from_secs(5)),
        Signer::from_hex(ACCOUNT_KEY).unwrap(),
        None,
        None,
        false,
        Box::new(SharedNonces),
    );
    let _ = &mut old;
    let stale = organism::exchange::hyperliquid::exchange::now_ms() - 3 * 86_400_000;
    let signer = Signer::from_hex(ACCOUNT_KEY).unwrap();
    let action = organism::exchange::hyperliquid::wire::Action::orders(vec![buy()]);
    let sig = signer
        .sign_l1_action(&action, None, stale, None, false)
        .unwrap();
    let req = organism::exchange::hyperliquid::exchange::SignedRequest {
        action,
        nonce: stale,
        signature: organism::exchange::hyperliquid::exchange::SignatureWire::of(&sig),
        vault_address: None,
        expires_after: None,
    };
    assert!(matches!(
        old.send(&req).await,
        Err(ExchangeError::Rejected {
            kind: RejectKind::Nonce,
            ..
        })
    ));

    // A vault led by the owner: its orders land in the vault.
    let vault = "0x1719884eb866cb12b2287399b15f7db5e7d775ea";
    ex.add_vault(vault, &me, dec("5000"));
    let v = client(&ex, ACCOUNT_KEY, None, Some(vault.into()));
    assert_eq!(v.account(), vault);
    assert!(matches!(
        v.place(vec![buy()]).await.unwrap()[0],
        PlacedStatus::Filled { .. }
    ));
    assert_eq!(ex.position(vault, "ETH"), dec("0.1"));
    assert_eq!(ex.position(&me, "ETH"), dec("0.2"));
    // Someone else cannot trade it.
    ex.fund(&stranger.signer_address(), dec("100"));
    let s = client(&ex, OTHER_KEY, None, Some(vault.into()));
    assert!(matches!(
        s.place(vec![buy()]).await,
        Err(ExchangeError::Rejected { .. })
    ));
}

#[tokio::test]
async fn faults_leave_the_outcome_to_be_asked_by_cloid() {
    let ex = exchange().await;
    let quick = ExchangeClient::new(
        info(&ex, Duration::from_millis(300)),
        Signer::from_hex(ACCOUNT_KEY).unwrap(),
        None,
        None,
        false,
        Box::new(SharedNonces),
    );
    let me = quick.account().to_string();
    ex.fund(&me, dec("10000"));
    let (_, _, ask) = eth_touch(&ex);
    let px = round_dp(ask * 1.01, 1);

    // Accepted, then no answer in time: unknown, and orderStatus by cloid says it filled.
    ex.set_trading_faults(|f| {
        f.hang_next = 1;
        f.hang = Duration::from_millis(1500);
    });
    let cl = Cloid::derive(&["hang"]);
    let e = quick
        .place(vec![order(ETH, true, px, "0.3", Tif::Ioc, Some(cl))])
        .await
        .unwrap_err();
    assert!(matches!(e, ExchangeError::Unknown(_)), "{e}");
    assert!(e.retryable());
    match quick
        .order_status(&OidOrCloid::Cloid(cl.to_hex()))
        .await
        .unwrap()
    {
        OrderState::Known { status, .. } => assert_eq!(status, "filled"),
        other => panic!("{other:?}"),
    }
    assert_eq!(ex.position(&me, "ETH"), dec("0.3"));

    // 429: nothing is done.
    ex.set_trading_faults(|f| f.fail_next.push_back(429));
    let e = quick
        .place(vec![order(ETH, true, px, "0.3", Tif::Ioc, None)])
        .await
        .unwrap_err();
    assert!(matches!(e, ExchangeError::Busy { status: 429, .. }), "{e}");
    assert_eq!(ex.position(&me, "ETH"), dec("0.3"));

    // A partial fill: half of 0.3 rounded down to the lot.
    ex.set_trading_faults(|f| f.partial_next = 1);
    let r = quick
        .place(vec![order(ETH, true, px, "0.3", Tif::Ioc, None)])
        .await
        .unwrap();
    let PlacedStatus::Filled { total_sz, .. } = &r[0] else {
        panic!()
    };
    assert_eq!(*total_sz, dec("0.15"));

    // An injected rejection.
    ex.set_trading_faults(|f| {
        f.reject_next
            .push_back("Insufficient margin to place order. asset=1".into())
    });
    let r = quick
        .place(vec![order(ETH, true, px, "0.3", Tif::Ioc, None)])
        .await
        .unwrap();
    assert_eq!(rejected(&r[0]), RejectKind::Margin);
    assert_eq!(ex.position(&me, "ETH"), dec("0.45"));
    assert_eq!(ex.trading_seen().placed_cloids, vec![cl.to_hex()]);
}

#[tokio::test]
async fn triggers_resting_orders_and_funding_settle_as_the_clock_moves() {
    let ex = exchange().await;
    let c = client(&ex, ACCOUNT_KEY, None, None);
    let me = c.account().to_string();
    ex.fund(&me, dec("10000"));
    let (_, _, ask) = eth_touch(&ex);
    c.place(vec![order(
        ETH,
        true,
        round_dp(ask * 1.01, 1),
        "1",
        Tif::Ioc,
        None,
    )])
    .await
    .unwrap();

    // A stop-loss at the middle of the next bar's range is hit in that bar.
    let candles = ex.candles("ETH", "1h").unwrap();
    let i = candles.ts.partition_point(|&t| t <= ex.now());
    let stop = round_dp((candles.high[i] + candles.low[i]) / 2.0, 1);
    let sl = OrderWire {
        a: ETH,
        b: false,
        p: format!("{stop:.1}"),
        s: "1".into(),
        r: true,
        t: OrderTypeWire::trigger(format!("{stop:.1}"), true, Tpsl::Sl),
        c: Some(Cloid::derive(&["sl"]).to_hex()),
    };
    let r = c.place(vec![sl]).await.unwrap();
    assert!(matches!(r[0], PlacedStatus::Resting { .. }), "{r:?}");
    assert_eq!(c.open_orders().await.unwrap().len(), 1);
    // Two hours on: the stop fills in bar i; funding was paid on the long at bar i's funding time.
    ex.advance();
    ex.advance();
    match c
        .order_status(&OidOrCloid::Cloid(Cloid::derive(&["sl"]).to_hex()))
        .await
        .unwrap()
    {
        OrderState::Known { status, .. } => assert_eq!(status, "filled"),
        other => panic!("{other:?}"),
    }
    assert_eq!(ex.position(&me, "ETH"), Decimal::ZERO);
    let fills = c.user_fills().await.unwrap();
    assert_eq!(fills.len(), 2);
    // A triggered stop is a market sell at the touch: the trigger price (or bar i's open, had
    // it opened below it) less the half spread of 0.01 %, at the tick.
    let at = stop.min(candles.open[i]);
    assert_eq!(
        fills[0].px.to_string(),
        format!("{}", round_dp(at * 0.9999, 1))
    );
    assert_eq!(fills[0].dir, "Close Long");
    let by_time = c.user_fills_by_time(candles.ts[i], None).await.unwrap();
    assert_eq!(by_time.len(), 1);
    let funding = c.user_funding(0).await.unwrap();
    assert_eq!(funding.len(), 1, "{funding:?}");
    assert_eq!(funding[0].szi, dec("1"));
    assert_eq!(funding[0].time, candles.ts[i] + 37);
    // usdc = -size × bar open × rate.
    let rate: f64 = funding[0].rate.to_string().parse().unwrap();
    let usdc: f64 = funding[0].usdc.to_string().parse().unwrap();
    assert!((usdc - round_dp(-candles.open[i] * rate, 6)).abs() < 1e-9);
}

#[tokio::test]
async fn the_feed_delivers_the_accounts_fills_and_order_updates() {
    use organism::{
        clock::SimClock,
        exchange::hyperliquid::ws::{spawn, ws_url, FeedConfig, FeedEvent, Subscription},
    };
    let ex = exchange().await;
    let c = client(&ex, ACCOUNT_KEY, None, None);
    let me = c.account().to_string();
    ex.fund(&me, dec("10000"));
    let subs = vec![
        Subscription::UserFills { user: me.clone() },
        Subscription::OrderUpdates { user: me.clone() },
    ];
    let mut feed = spawn(
        FeedConfig::new(ws_url(&ex.http_url()), subs),
        info(&ex, Duration::from_secs(5)),
        Arc::new(SimClock(ex.clock())),
    );
    // Subscribed once the exchange has seen the connection.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, _, ask) = eth_touch(&ex);
    let cl = Cloid::derive(&["feed"]);
    c.place(vec![order(
        ETH,
        true,
        round_dp(ask * 1.01, 1),
        "0.3",
        Tif::Ioc,
        Some(cl),
    )])
    .await
    .unwrap();
    let (mut fill, mut update) = (None, None);
    while fill.is_none() || update.is_none() {
        match tokio::time::timeout(Duration::from_secs(5), feed.events.recv())
            .await
            .unwrap()
        {
            Some(FeedEvent::UserFills { user, fills, .. }) => {
                assert_eq!(user, me);
                fill = fills.into_iter().next();
            }
            Some(FeedEvent::OrderUpdates(u)) => update = u.into_iter().next(),
            Some(_) => {}
            None => panic!("feed ended"),
        }
    }
    let fill = fill.unwrap();
    assert_eq!(
        (fill.sz, fill.cloid.as_deref()),
        (dec("0.3"), Some(cl.to_hex().as_str()))
    );
    assert_eq!(fill.px.to_string(), format!("{ask}"));
    let update = update.unwrap();
    assert_eq!(update.status, "filled");
    assert_eq!(update.order.oid, fill.oid);
    feed.stop();
}

#[tokio::test]
async fn fills_and_order_updates_stream_on_the_websocket() {
    let ex = exchange().await;
    let c = client(&ex, ACCOUNT_KEY, None, None);
    let me = c.account().to_string();
    ex.fund(&me, dec("10000"));
    let (mut ws, _) = tokio_tungstenite::connect_async(ex.ws_url()).await.unwrap();
    for t in ["userFills", "orderUpdates"] {
        let sub =
            serde_json::json!({"method": "subscribe", "subscription": {"type": t, "user": me}});
        ws.send(tokio_tungstenite::tungstenite::Message::Text(
            sub.to_string(),
        ))
        .await
        .unwrap();
    }
    let (_, _, ask) = eth_touch(&ex);
    let cl = Cloid::derive(&["ws"]);
    c.place(vec![order(
        ETH,
        true,
        round_dp(ask * 1.01, 1),
        "0.2",
        Tif::Ioc,
        Some(cl),
    )])
    .await
    .unwrap();
    let mut channels = Vec::new();
    while channels.len() < 4 {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
        let ch = v["channel"].as_str().unwrap().to_string();
        if ch == "userFills" {
            assert_eq!(v["data"]["fills"][0]["cloid"], cl.to_hex());
            assert_eq!(v["data"]["fills"][0]["sz"], "0.2");
        }
        if ch == "orderUpdates" {
            assert_eq!(v["data"][0]["status"], "filled");
        }
        channels.push(ch);
    }
    channels.sort();
    assert_eq!(
        channels,
        [
            "orderUpdates",
            "subscriptionResponse",
            "subscriptionResponse",
            "userFills"
        ]
    );
}

/// A planted drift: with 20 bps of extra slippage a taker buy fills 0.2 % above the ask and a
/// sell below the bid, never beyond the order's limit; with 300 ms of latency an order is
/// acted on at once but answered no sooner.
#[tokio::test]
async fn extra_slippage_and_latency_plant_a_drift() {
    let ex = exchange().await;
    let c = client(&ex, ACCOUNT_KEY, None, None);
    let me = c.account().to_string();
    ex.fund(&me, dec("10000"));
    let (_, bid, ask) = eth_touch(&ex);
    ex.set_trading_faults(|f| f.extra_slippage = dec("0.002"));
    let filled_at = |s: &[PlacedStatus]| match &s[0] {
        PlacedStatus::Filled { avg_px, .. } => *avg_px,
        other => panic!("{other:?}"),
    };
    let limit = round_dp(ask * 1.01, 1);
    let s = c
        .place(vec![order(ETH, true, limit, "0.5", Tif::Ioc, None)])
        .await
        .unwrap();
    let want = (dec(&format!("{ask}")) * dec("1.002")).round_dp(8);
    assert_eq!(filled_at(&s), want);
    let s = c
        .place(vec![order(
            ETH,
            false,
            round_dp(bid * 0.99, 1),
            "0.5",
            Tif::Ioc,
            None,
        )])
        .await
        .unwrap();
    assert_eq!(
        filled_at(&s),
        (dec(&format!("{bid}")) * dec("0.998")).round_dp(8)
    );
    // A limit 0.05 % through the ask caps the slipped price.
    let tight = round_dp(ask * 1.0005, 1);
    let s = c
        .place(vec![order(ETH, true, tight, "0.1", Tif::Ioc, None)])
        .await
        .unwrap();
    assert_eq!(filled_at(&s), dec(&format!("{tight}")));
    ex.set_trading_faults(|f| {
        f.extra_slippage = Decimal::ZERO;
        f.latency = Duration::from_millis(300);
    });
    #[allow(clippy::disallowed_methods)] // latency is wall time
    let t0 = std::time::Instant::now();
    let s = c
        .place(vec![order(ETH, true, limit, "0.1", Tif::Ioc, None)])
        .await
        .unwrap();
    assert!(
        t0.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(filled_at(&s), dec(&format!("{ask}")));
    assert_eq!(ex.trading_seen().orders_placed, 4);
}
