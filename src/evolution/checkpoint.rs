//! Checkpoints: `populations/genN.bin`, written atomically after every generation.
//!
//! Layout: the magic tag `ORGNSMCK`, the format version (u32 little-endian), the payload length
//! (u64 LE), the payload (serde + bincode 2, standard config), and an FNV-1a 64 checksum of the
//! payload (u64 LE). The payload holds the run's settings and data selection, a fingerprint of
//! the data, and the whole [`State`] — population, RNG, fitness cache and history — so that a
//! resumed run continues exactly.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{
    problem::{Aggregation, Split},
    Settings, State,
};
use crate::{
    execution::EngineConfig,
    market::{csv::write_atomic, DataSelection, Market},
};

/// Magic tag at the start of every checkpoint.
pub const MAGIC: &[u8; 8] = b"ORGNSMCK";
/// Format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// Checkpoint errors; each names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: not an organism checkpoint (no ORGNSMCK tag)")]
    Foreign { file: PathBuf },
    #[error("{file}: truncated checkpoint ({len} bytes; expected {expected})")]
    Truncated {
        file: PathBuf,
        len: usize,
        expected: usize,
    },
    #[error("{file}: checkpoint format version {found}; this build reads version {expected}")]
    Version {
        file: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("{file}: corrupted checkpoint (checksum mismatch)")]
    Checksum { file: PathBuf },
    #[error("{file}: corrupted checkpoint: {message}")]
    Decode { file: PathBuf, message: String },
    #[error("cannot encode checkpoint: {0}")]
    Encode(String),
    #[error(transparent)]
    Write(#[from] crate::market::DataError),
}

/// Everything that defines a run besides its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// The run's RNG seed.
    pub seed: u64,
    pub settings: Settings,
    pub split: Split,
    pub aggregation: Aggregation,
    pub backtest: EngineConfig,
    pub data: DataSelection,
    /// Seed names, in seed-index order.
    pub seeds: Vec<String>,
}

/// A checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub run: RunSpec,
    /// [`fingerprint`] of the data the run evolves on.
    pub fingerprint: u64,
    pub state: State,
}

/// FNV-1a, 64 bits.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A fingerprint of market data: coin names, every candle field and the per-bar funding.
pub fn fingerprint(markets: &[Market]) -> u64 {
    let mut bytes = Vec::new();
    for m in markets {
        bytes.extend_from_slice(m.coin.as_bytes());
        bytes.push(0);
        let c = &m.candles;
        for i in 0..c.len() {
            bytes.extend_from_slice(&c.ts[i].to_le_bytes());
            for v in [
                c.open[i],
                c.high[i],
                c.low[i],
                c.close[i],
                c.volume[i],
                m.funding_per_bar[i],
            ] {
                bytes.extend_from_slice(&v.to_bits().to_le_bytes());
            }
        }
    }
    fnv1a(&bytes)
}

/// Serializes a checkpoint with header and checksum.
///
/// # Errors
/// [`CheckpointError::Encode`] if serialization fails.
pub fn encode(ck: &Checkpoint) -> Result<Vec<u8>, CheckpointError> {
    let payload = bincode::serde::encode_to_vec(ck, bincode::config::standard())
        .map_err(|e| CheckpointError::Encode(e.to_string()))?;
    let mut out = Vec::with_capacity(payload.len() + 28);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&fnv1a(&payload).to_le_bytes());
    Ok(out)
}

/// Parses checkpoint bytes read from `file`.
///
/// # Errors
/// [`CheckpointError`] for a foreign, truncated, other-version or corrupted file.
pub fn decode(bytes: &[u8], file: &Path) -> Result<Checkpoint, CheckpointError> {
    let file = file.to_path_buf();
    if bytes.len() < 8 || &bytes[..8] != MAGIC {
        return Err(CheckpointError::Foreign { file });
    }
    if bytes.len() < 20 {
        return Err(CheckpointError::Truncated {
            file,
            len: bytes.len(),
            expected: 28,
        });
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if version != FORMAT_VERSION {
        return Err(CheckpointError::Version {
            file,
            found: version,
            expected: FORMAT_VERSION,
        });
    }
    let mut len8 = [0u8; 8];
    len8.copy_from_slice(&bytes[12..20]);
    let len = u64::from_le_bytes(len8);
    let expected = usize::try_from(len)
        .ok()
        .and_then(|l| l.checked_add(28))
        .unwrap_or(usize::MAX);
    if bytes.len() != expected {
        return Err(CheckpointError::Truncated {
            file,
            len: bytes.len(),
            expected,
        });
    }
    let payload = &bytes[20..expected - 8];
    let mut sum8 = [0u8; 8];
    sum8.copy_from_slice(&bytes[expected - 8..]);
    if u64::from_le_bytes(sum8) != fnv1a(payload) {
        return Err(CheckpointError::Checksum { file });
    }
    let (ck, used): (Checkpoint, usize) =
        bincode::serde::decode_from_slice(payload, bincode::config::standard()).map_err(|e| {
            CheckpointError::Decode {
                file: file.clone(),
                message: e.to_string(),
            }
        })?;
    if used != payload.len() {
        return Err(CheckpointError::Decode {
            file,
            message: format!("{} trailing bytes", payload.len() - used),
        });
    }
    Ok(ck)
}

/// Writes `ck` to `path` atomically (temporary file, flush, rename).
///
/// # Errors
/// [`CheckpointError`] when encoding or writing fails; an existing file is left intact.
pub fn write(path: &Path, ck: &Checkpoint) -> Result<(), CheckpointError> {
    write_atomic(path, &encode(ck)?)?;
    Ok(())
}

/// Reads and verifies a checkpoint.
///
/// # Errors
/// [`CheckpointError`] naming the file.
pub fn read(path: &Path) -> Result<Checkpoint, CheckpointError> {
    let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
        file: path.to_path_buf(),
        source,
    })?;
    decode(&bytes, path)
}

/// The checkpoint file of generation `g` in `dir`.
pub fn path_for(dir: &Path, g: u32) -> PathBuf {
    dir.join(format!("gen{g}.bin"))
}
