//! `organism live run | status | stop | resume`: the paper session and loop with real orders on
//! Hyperliquid (see `organism::exchange::hyperliquid::adapter`).

use anyhow::{bail, Result};
use organism::runner::{driver::Mode, journal::Action};

use super::paper::{control, run_session, status, ControlArgs, RunArgs, StatusArgs};

#[derive(clap::Subcommand, Debug)]
pub enum LiveCommand {
    /// Trade the strategies of `live.strategies` with real orders on Hyperliquid: the paper
    /// session's code (signals, engine, risk limits, journal) with the exchange as the venue.
    /// Needs a [live] config section and --i-understand-this-trades-real-money (or --dry-run).
    Run(LiveRunArgs),
    /// Positions, PnL, limits and the last bar of the live session (--dry-run: of the dry run's).
    Status(DryRun<StatusArgs>),
    /// The kill switch: the running session cancels every order, flattens every position with
    /// reduce-only IOC orders and stops.
    Stop(DryRun<ControlArgs>),
    /// Lift the pauses (risk breaches, reconciliation halts, kill switch) of one strategy or of all.
    Resume(DryRun<ControlArgs>),
}

/// A live command's arguments, and whether it is about the dry run's session (a dry run
/// journals in its own account, `live.account` + `-dry-run`).
#[derive(clap::Args, Debug)]
pub struct DryRun<A: clap::Args> {
    #[command(flatten)]
    pub args: A,
    /// The session of `live run --dry-run` instead of the real one.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(clap::Args, Debug)]
pub struct LiveRunArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Acknowledge that this sends real orders with real money at risk.
    #[arg(long)]
    pub i_understand_this_trades_real_money: bool,
    /// Do everything but send: print each signed request (action, nonce, signature, vault) as
    /// one JSON line on stdout and fill it as paper would.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(cmd: LiveCommand) -> Result<()> {
    match cmd {
        LiveCommand::Run(a) => {
            if !a.dry_run && !a.i_understand_this_trades_real_money {
                bail!(
                    "live run sends real orders: pass --i-understand-this-trades-real-money to \
                     accept the risk (or --dry-run to see the signed orders without sending them)"
                );
            }
            run_session(a.run, Mode::Live { dry_run: a.dry_run })
        }
        LiveCommand::Status(a) => status(a.args, Mode::Live { dry_run: a.dry_run }),
        LiveCommand::Stop(a) => control(a.args, Action::Stop, Mode::Live { dry_run: a.dry_run }),
        LiveCommand::Resume(a) => {
            control(a.args, Action::Resume, Mode::Live { dry_run: a.dry_run })
        }
    }
}
