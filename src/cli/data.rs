//! `organism data`: market data utilities.

use std::path::PathBuf;

use anyhow::Result;
use organism::market::{
    csv::{candles_to_csv, funding_to_csv, write_atomic},
    synthetic,
};

use super::DataArgs;

#[derive(clap::Subcommand, Debug)]
pub enum DataCommand {
    /// Write the built-in synthetic market ([synthetic] in the config) as CSV files in the data
    /// layout: OUT/candles/synthetic_<COIN>_1h.csv and OUT/funding/synthetic_<COIN>.csv.
    Generate {
        #[command(flatten)]
        data: DataArgs,
        /// Output data directory.
        #[arg(long, value_name = "DIR", default_value = "data/synthetic")]
        out: PathBuf,
    },
}

pub fn run(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Generate { data, out } => {
            let cfg = data.config()?;
            let u = synthetic::generate(&cfg.synthetic);
            for m in &u.markets {
                let c = out
                    .join("candles")
                    .join(format!("synthetic_{}_1h.csv", m.coin));
                write_atomic(&c, candles_to_csv(&m.candles).as_bytes())?;
                let f = out
                    .join("funding")
                    .join(format!("synthetic_{}.csv", m.coin));
                write_atomic(&f, funding_to_csv(&m.funding).as_bytes())?;
            }
            println!(
                "wrote {} coins x {} bars to {} (use it with --data {} --source synthetic)",
                u.markets.len(),
                cfg.synthetic.bars,
                out.display(),
                out.display()
            );
            Ok(())
        }
    }
}
