//! The one database: the strategy registry and the paper / live journal (with the nonces and
//! the venues of its accounts) are one embedded SQLite file (bundled SQLite), opened here and
//! nowhere else, always the same way — WAL journal, `synchronous=FULL`, foreign keys on, a busy
//! timeout — and brought to the current schema by [`MIGRATIONS`], each in a transaction. The
//! schema is versioned by `PRAGMA user_version`; a database from a newer build is refused rather
//! than touched, and a file that is not a database fails before anything is written to it.
//!
//! A damaged or foreign file is refused with one message naming it, and never rewritten: an
//! empty (0-byte) file, a database whose `PRAGMA quick_check` finds damage, or one with tables
//! organism did not make (schema version 0 with tables in it).

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use rusqlite::Connection;

/// The schema, one migration per version (version `k` is `MIGRATIONS[..k]` applied).
pub const MIGRATIONS: &[&str] = &[
    // Version 1.
    "CREATE TABLE promotions (
        id INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        run TEXT NOT NULL,
        checkpoint TEXT NOT NULL,
        generation INTEGER NOT NULL,
        data_fingerprint TEXT NOT NULL,
        trials INTEGER NOT NULL,
        trial_sharpe_var REAL,
        pbo REAL,
        candidates INTEGER NOT NULL DEFAULT 0,
        promoted INTEGER NOT NULL DEFAULT 0,
        summary TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE strategies (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        generation INTEGER NOT NULL,
        hash TEXT NOT NULL,
        genome TEXT NOT NULL,
        program TEXT,
        spec_fingerprint TEXT NOT NULL,
        run TEXT NOT NULL,
        checkpoint TEXT NOT NULL,
        data_fingerprint TEXT NOT NULL,
        promotion_id INTEGER NOT NULL REFERENCES promotions(id),
        verdict TEXT NOT NULL,
        stopped_at TEXT,
        figures TEXT NOT NULL,
        weight REAL NOT NULL DEFAULT 0,
        status TEXT NOT NULL
            CHECK (status IN ('candidate', 'promoted', 'paper', 'live', 'retired')),
        reason TEXT NOT NULL DEFAULT '',
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
    );
    CREATE TABLE status_changes (
        id INTEGER PRIMARY KEY,
        strategy_id TEXT NOT NULL REFERENCES strategies(id),
        from_status TEXT,
        to_status TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        reason TEXT NOT NULL
    );
    CREATE TABLE holdout_reads (
        id INTEGER PRIMARY KEY,
        promotion_id INTEGER NOT NULL REFERENCES promotions(id),
        strategy_id TEXT NOT NULL,
        run TEXT NOT NULL,
        at_ms INTEGER NOT NULL
    );
    CREATE INDEX holdout_reads_by_strategy ON holdout_reads(strategy_id, run);
    CREATE INDEX status_changes_by_strategy ON status_changes(strategy_id);",
    // Version 2: the paper / live journal (rows of `journal`, control requests).
    "CREATE TABLE journal (
        seq INTEGER PRIMARY KEY,
        account TEXT NOT NULL,
        book TEXT NOT NULL,
        bar_ts INTEGER NOT NULL,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        written_ms INTEGER NOT NULL
    );
    CREATE INDEX journal_by_book ON journal(account, book, kind, seq);
    CREATE TABLE paper_control (
        id INTEGER PRIMARY KEY,
        account TEXT NOT NULL,
        action TEXT NOT NULL CHECK (action IN ('stop', 'resume')),
        book TEXT,
        reason TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        done_ms INTEGER
    );",
    // Version 3: live trading: the last nonce of each signer, so nonces stay strictly
    // increasing across restarts.
    "CREATE TABLE nonces (
        signer TEXT PRIMARY KEY,
        last INTEGER NOT NULL
    );",
    // Version 4: a portfolio strategy's universe definition (JSON; NULL for single-coin ones).
    "ALTER TABLE strategies ADD COLUMN universe TEXT;",
    // Version 5: the venue each journal account trades on (a session's journal belongs to the
    // exchange it traded on, and a run against another must not continue it).
    "CREATE TABLE venues (
        account TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        since_ms INTEGER NOT NULL
    );",
    // Version 6: alerts: each target's place in the journal (the last row handled), the batch
    // being sent and its lease, failed attempts and the earliest next one.
    "CREATE TABLE alert_cursor (
        target TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        pending INTEGER,
        lease_ms INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_ms INTEGER NOT NULL DEFAULT 0
    );",
];

/// How long a writer waits for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("{file}: {message}")]
    Open { file: PathBuf, message: String },
    #[error("{file}: schema version {found} is newer than this build knows ({known}); use a newer organism")]
    Newer {
        file: PathBuf,
        found: usize,
        known: usize,
    },
    #[error("{file}: {source}")]
    Sql {
        file: PathBuf,
        source: rusqlite::Error,
    },
}

/// Opens (creating it and its folder if needed) the database at `file`, with the store's
/// settings, and brings its schema up to date.
///
/// # Errors
/// [`StoreError`] naming the file: not a database, written by a newer build, or I/O.
pub fn open(file: &Path) -> Result<Connection, StoreError> {
    let open_err = |message: String| StoreError::Open {
        file: file.to_path_buf(),
        message,
    };
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| open_err(format!("cannot create its folder: {e}")))?;
    }
    // SQLite would take an empty file for a new database and write one into it.
    if std::fs::metadata(file).is_ok_and(|m| m.is_file() && m.len() == 0) {
        return Err(open_err(
            "the file is empty (0 bytes), not a database organism wrote; move it away (organism \
             creates a new one where there is none)"
                .into(),
        ));
    }
    let mut conn = Connection::open(file).map_err(|e| open_err(e.to_string()))?;
    // The first reads, before anything is written: a file that is not a database, a damaged
    // one, another program's or a newer build's fails here and is left as it was.
    check(&conn, file)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
        .map_err(|e| open_err(format!("not a usable SQLite database ({e})")))?;
    if mode != "wal" {
        return Err(open_err(format!(
            "cannot use the WAL journal (mode {mode})"
        )));
    }
    settle(&mut conn, file)?;
    Ok(conn)
}

/// Opens the database at `file` read-only (the dashboard): nothing is written to it, not even
/// a migration; a file that is missing, not a database or of a newer build is refused.
///
/// # Errors
/// [`StoreError`] naming the file.
pub fn open_read_only(file: &Path) -> Result<Connection, StoreError> {
    let open_err = |message: String| StoreError::Open {
        file: file.to_path_buf(),
        message,
    };
    if !file.is_file() {
        return Err(open_err("no such database".into()));
    }
    let conn = Connection::open_with_flags(
        file,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| open_err(e.to_string()))?;
    check(&conn, file)?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .and_then(|()| conn.execute_batch("PRAGMA query_only = 1"))
        .map_err(|source| StoreError::Sql {
            file: file.to_path_buf(),
            source,
        })?;
    Ok(conn)
}

/// Refuses a file that is not a database, a damaged one, one organism did not make and one of a
/// newer build, reading only.
fn check(conn: &Connection, file: &Path) -> Result<(), StoreError> {
    let open_err = |message: String| StoreError::Open {
        file: file.to_path_buf(),
        message,
    };
    let unusable = |e: rusqlite::Error| {
        open_err(format!(
            "not a usable SQLite database, or a damaged one ({e}); restore it from a copy, or \
             move it away"
        ))
    };
    let verdict = texts(conn, "PRAGMA quick_check").map_err(unusable)?;
    if verdict != ["ok"] {
        return Err(open_err(format!(
            "the database is damaged (quick_check: {}); restore it from a copy, or move it away",
            verdict
                .iter()
                .take(3)
                .map(|v| v.replace('\n', " "))
                .collect::<Vec<_>>()
                .join("; ")
        )));
    }
    let found = version(conn).map_err(unusable)?;
    if found > MIGRATIONS.len() {
        return Err(StoreError::Newer {
            file: file.to_path_buf(),
            found,
            known: MIGRATIONS.len(),
        });
    }
    if found == 0 {
        let tables = texts(
            conn,
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
        )
        .map_err(unusable)?;
        if !tables.is_empty() {
            return Err(open_err(format!(
                "not a database organism made (schema version 0 with tables {}); it is left \
                 untouched",
                tables.join(", ")
            )));
        }
    }
    Ok(())
}

/// A database in memory with the current schema (a replay's journal that is not kept).
///
/// # Errors
/// [`StoreError::Sql`].
pub fn open_in_memory() -> Result<Connection, StoreError> {
    let file = Path::new(":memory:");
    let mut conn = Connection::open_in_memory().map_err(|source| StoreError::Sql {
        file: file.to_path_buf(),
        source,
    })?;
    settle(&mut conn, file)?;
    Ok(conn)
}

/// The first column of every row of `sql`, as text.
fn texts(conn: &Connection, sql: &str) -> rusqlite::Result<Vec<String>> {
    let mut st = conn.prepare(sql)?;
    let rows = st.query_map([], |r| r.get::<_, String>(0))?;
    rows.collect()
}

/// The settings every connection has, then the migrations.
fn settle(conn: &mut Connection, file: &Path) -> Result<(), StoreError> {
    let sql = |source| StoreError::Sql {
        file: file.to_path_buf(),
        source,
    };
    conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
        .map_err(sql)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
    migrate(conn, file)
}

/// The schema version of a database.
///
/// # Errors
/// [`rusqlite::Error`] when it cannot be read.
pub fn version(conn: &Connection) -> rusqlite::Result<usize> {
    let v: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    Ok(usize::try_from(v).unwrap_or(usize::MAX))
}

fn migrate(conn: &mut Connection, file: &Path) -> Result<(), StoreError> {
    let sql = |source| StoreError::Sql {
        file: file.to_path_buf(),
        source,
    };
    // A newer build's file was refused by `check` before anything was written.
    let found = version(conn).map_err(sql)?;
    for (i, m) in MIGRATIONS.iter().enumerate().skip(found) {
        let tx = conn.transaction().map_err(sql)?;
        tx.execute_batch(m).map_err(sql)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))
            .map_err(sql)?;
        tx.commit().map_err(sql)?;
    }
    Ok(())
}

/// Reads an `f64` written to a JSON column: `null` is how JSON writes a NaN or an infinity,
/// and reads back as NaN. Other formats (the checkpoints' binary codec) read the number as it
/// is. For `#[serde(deserialize_with = "crate::store::real")]` on the `f64` fields of persisted
/// structs.
///
/// # Errors
/// The format's error where the value is neither a number nor (in JSON) `null`.
pub fn real<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    use serde::Deserialize as _;
    if d.is_human_readable() {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    } else {
        f64::deserialize(d)
    }
}

/// [`real`] for a list of numbers.
///
/// # Errors
/// As [`real`].
pub fn reals<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    use serde::Deserialize as _;
    if d.is_human_readable() {
        Ok(Vec::<Option<f64>>::deserialize(d)?
            .into_iter()
            .map(|x| x.unwrap_or(f64::NAN))
            .collect())
    } else {
        Vec::<f64>::deserialize(d)
    }
}

/// `x` as the JSON a column holds: every object's keys in sorted order, whatever the order of
/// the struct's fields (the encoding the registry's `figures` and `universe` have had since
/// version 1, so a row written before and after a field moved reads and prints the same).
///
/// # Errors
/// When `x` cannot be written as JSON (a map with keys that are not strings).
pub fn sorted_json<T: serde::Serialize>(x: &T) -> serde_json::Result<String> {
    // The compact writer straight into a string: the bytes `Value`'s `Display` writes, without
    // its detour through a formatter.
    serde_json::to_string(&serde_json::to_value(x)?)
}

/// Serializes `x` with its objects' keys sorted ([`sorted_json`]), for
/// `#[serde(serialize_with = "crate::store::sorted")]`: what is printed is what is stored.
///
/// # Errors
/// As [`sorted_json`].
pub fn sorted<T: serde::Serialize, S: serde::Serializer>(x: &T, s: S) -> Result<S::Ok, S::Error> {
    use serde::{ser::Error as _, Serialize as _};
    serde_json::to_value(x)
        .map_err(S::Error::custom)?
        .serialize(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_connection_has_the_store_settings_and_the_current_schema() {
        let dir = std::env::temp_dir().join(format!("organism-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let file = dir.join("sub").join("db.sqlite");
        for _ in 0..2 {
            // The second open finds the schema current and changes nothing.
            let c = open(&file).unwrap();
            let get = |pragma: &str| -> i64 {
                c.query_row(&format!("PRAGMA {pragma}"), [], |r| r.get(0))
                    .unwrap()
            };
            let mode: String = c
                .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
            // synchronous: 2 = FULL.
            assert_eq!(get("synchronous"), 2);
            assert_eq!(get("foreign_keys"), 1);
            assert_eq!(get("busy_timeout"), 10_000);
            assert_eq!(version(&c).unwrap(), MIGRATIONS.len());
        }
        let m = open_in_memory().unwrap();
        assert_eq!(version(&m).unwrap(), MIGRATIONS.len());
        let tables: i64 = m
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN \
                 ('strategies', 'journal', 'nonces', 'venues')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 4);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A scratch database of the current schema with some rows in it; returns its bytes.
    fn filled(file: &Path) -> Vec<u8> {
        {
            let c = open(file).unwrap();
            for i in 0..400 {
                c.execute(
                    "INSERT INTO journal (account, book, bar_ts, kind, body, written_ms) \
                     VALUES ('a', 'b', ?1, 'bar', ?2, 0)",
                    rusqlite::params![i, "x".repeat(200)],
                )
                .unwrap();
            }
        }
        std::fs::read(file).unwrap()
    }

    #[test]
    fn damaged_empty_and_foreign_files_are_refused_untouched() {
        let dir = std::env::temp_dir().join(format!("organism-store-bad-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("db.sqlite");
        let good = filled(&file);
        let pages = good.len() / 4096;
        assert!(pages > 10, "{pages} pages");
        // One 4 KiB page (not the header's) overwritten with noise, for several seeds.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..6 {
            let page = 1 + (next() as usize) % (pages - 1);
            let mut bad = good.clone();
            for b in &mut bad[page * 4096..(page + 1) * 4096] {
                *b = next() as u8;
            }
            std::fs::write(&file, &bad).unwrap();
            let e = open(&file).err().map(|e| e.to_string());
            let e = e.unwrap_or_else(|| panic!("page {page} overwritten: opened"));
            assert!(
                e.starts_with(&format!("{}: ", file.display()))
                    && e.contains("damaged")
                    && !e.contains('\n'),
                "{e}"
            );
            assert_eq!(std::fs::read(&file).unwrap(), bad, "left as it was");
        }
        // Empty.
        std::fs::write(&file, b"").unwrap();
        let e = open(&file).err().unwrap().to_string();
        assert!(e.contains("the file is empty (0 bytes)"), "{e}");
        assert_eq!(std::fs::metadata(&file).unwrap().len(), 0);
        // Another program's database.
        std::fs::remove_file(&file).unwrap();
        {
            let c = Connection::open(&file).unwrap();
            c.execute_batch("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT);")
                .unwrap();
        }
        let before = std::fs::read(&file).unwrap();
        let e = open(&file).err().unwrap().to_string();
        assert!(
            e.contains("not a database organism made (schema version 0 with tables notes)"),
            "{e}"
        );
        assert_eq!(std::fs::read(&file).unwrap(), before);
        let _ = std::fs::remove_dir_all(dir);
    }
}
