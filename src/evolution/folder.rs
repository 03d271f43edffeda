//! A run folder belongs to one run: a lock file keeps a second process out, a new run refuses a
//! folder that holds another run's checkpoints (unless told to overwrite them), temporary files
//! left by a crash are removed when the next process takes the lock, and old checkpoints can be
//! pruned (`--keep-last`).

use std::{
    fs,
    io::Write as _,
    path::{Path, PathBuf},
};

use super::checkpoint::CACHE_FILE;

/// Name of the lock file in a run folder.
pub const LOCK_FILE: &str = ".organism.lock";

/// Folder errors; each names the folder.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FolderError {
    #[error("{dir}: in use by another organism process (pid {pid}); wait for it to finish or choose another folder with --out")]
    Locked { dir: PathBuf, pid: u32 },
    #[error("{dir}: holds the checkpoints of another run (gen{newest}.bin); choose another folder with --out, continue it with `organism evolve resume {}`, or replace it with --overwrite", .dir.join(format!("gen{newest}.bin")).display())]
    Occupied { dir: PathBuf, newest: u32 },
    #[error("{dir}: holds an island run ({}); continue it with `organism evolve resume {}`, choose another folder with --out, or replace it with --overwrite", super::islands::PLAN_FILE, .dir.display())]
    IslandRun { dir: PathBuf },
    #[error("{dir}: {source}")]
    Io {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The exclusive lock of a run folder, released on drop (or by [`RunLock::release`] before the
/// process exits).
///
/// Taking it is atomic: the process first takes an operating-system lock (`flock`) on
/// [`GUARD_FILE`], a file that is never removed, and holds it for as long as it owns the folder
/// (the system drops it when the process dies, `kill -9` included). Only while holding it does
/// a process look at [`LOCK_FILE`], which says who owns the folder: a live owner's pid keeps it
/// out, a dead one's is taken over, and its own pid is written there (to a temporary file
/// renamed into place, so a reader never sees it half written). Two processes started at the
/// same moment cannot both pass.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    /// The guard file, locked while this value lives.
    guard: Option<fs::File>,
    released: bool,
}

/// Name of the file a run folder's owner holds an operating-system lock on.
pub const GUARD_FILE: &str = ".organism.guard";

fn alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        // Without /proc a lock is trusted; remove it by hand after a crash.
        true
    }
}

fn holder(path: &Path) -> Option<u32> {
    fs::read_to_string(path)
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok())
}

impl RunLock {
    /// Takes the lock of `dir` (created if needed). A lock left by a process that no longer runs
    /// is taken over. Temporary files of interrupted writes are then removed.
    ///
    /// # Errors
    /// [`FolderError::Locked`] when a live process holds it; I/O errors.
    pub fn acquire(dir: &Path) -> Result<Self, FolderError> {
        let io = |source| FolderError::Io {
            dir: dir.to_path_buf(),
            source,
        };
        fs::create_dir_all(dir).map_err(io)?;
        let path = dir.join(LOCK_FILE);
        let guard = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(GUARD_FILE))
            .map_err(io)?;
        match guard.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(FolderError::Locked {
                    dir: dir.to_path_buf(),
                    pid: holder(&path).unwrap_or(0),
                })
            }
            Err(fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        // Alone now: the lock file says whether a live process (one that predates the guard,
        // or this one) owns the folder.
        if let Some(pid) = holder(&path).filter(|&p| alive(p)) {
            return Err(FolderError::Locked {
                dir: dir.to_path_buf(),
                pid,
            });
        }
        let me = std::process::id();
        let tmp = dir.join(format!(".organism.lock.{me}.tmp"));
        {
            let mut f = fs::File::create(&tmp).map_err(io)?;
            f.write_all(me.to_string().as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        fs::rename(&tmp, &path).map_err(io)?;
        let lock = Self {
            path,
            guard: Some(guard),
            released: false,
        };
        remove_temporaries(dir).map_err(io)?;
        Ok(lock)
    }

    /// Removes the lock now (before `std::process::exit`, which skips destructors).
    pub fn release(&mut self) {
        if !self.released {
            let _ = fs::remove_file(&self.path);
            // Unlocked when the file closes.
            self.guard = None;
            self.released = true;
        }
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        self.release();
    }
}

/// Removes `.NAME.PID.tmp` files left by writes a crash interrupted.
fn remove_temporaries(dir: &Path) -> std::io::Result<()> {
    for e in fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(".tmp") && e.path().is_file() {
            fs::remove_file(e.path())?;
        }
    }
    Ok(())
}

/// Whether a live process holds `dir`'s lock (looked at without taking it).
pub fn holder_alive(dir: &Path) -> bool {
    let Ok(guard) = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join(GUARD_FILE))
    else {
        return false;
    };
    match guard.try_lock() {
        Ok(()) => false,
        Err(fs::TryLockError::WouldBlock) => true,
        Err(fs::TryLockError::Error(_)) => false,
    }
}

/// Generation numbers of the `genN.bin` files in `dir`, ascending.
pub fn generations(dir: &Path) -> Vec<u32> {
    let mut g: Vec<u32> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix("gen")?.strip_suffix(".bin")?.parse().ok()
        })
        .collect();
    g.sort_unstable();
    g
}

/// Prepares `dir` for a new run: refused when it holds another run's checkpoints, unless
/// `overwrite`, which removes them (checkpoints, cache log, front and history).
///
/// # Errors
/// [`FolderError::Occupied`] naming the newest checkpoint; I/O errors.
pub fn claim_for_new_run(dir: &Path, overwrite: bool) -> Result<(), FolderError> {
    let io = |source| FolderError::Io {
        dir: dir.to_path_buf(),
        source,
    };
    let islands = island_parts(dir);
    if !islands.is_empty() {
        if !overwrite {
            return Err(FolderError::IslandRun {
                dir: dir.to_path_buf(),
            });
        }
        for p in islands {
            if p.is_dir() {
                fs::remove_dir_all(&p).map_err(io)?;
            } else {
                fs::remove_file(&p).map_err(io)?;
            }
        }
    }
    let gens = generations(dir);
    let Some(&newest) = gens.last() else {
        return Ok(());
    };
    if !overwrite {
        return Err(FolderError::Occupied {
            dir: dir.to_path_buf(),
            newest,
        });
    }
    for g in gens {
        fs::remove_file(dir.join(format!("gen{g}.bin"))).map_err(io)?;
    }
    for f in [CACHE_FILE, "front.csv", "history.csv"] {
        match fs::remove_file(dir.join(f)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
    }
    Ok(())
}

/// An island run's plan, island folders, shared folder and logs in `dir`.
fn island_parts(dir: &Path) -> Vec<PathBuf> {
    let plan = dir.join(super::islands::PLAN_FILE);
    if !plan.exists() {
        return Vec::new();
    }
    let mut parts = vec![plan];
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let island = name
            .strip_prefix("island-")
            .is_some_and(|n| n.parse::<u32>().is_ok());
        if island || name == "shared" || name == "logs" {
            parts.push(e.path());
        }
    }
    parts.sort();
    parts
}

/// Removes the checkpoints of generations older than the newest `keep` up to `newest`.
///
/// # Errors
/// I/O errors removing a file.
pub fn prune(dir: &Path, newest: u32, keep: u32) -> Result<(), FolderError> {
    for g in generations(dir) {
        if g + keep <= newest {
            fs::remove_file(dir.join(format!("gen{g}.bin"))).map_err(|source| FolderError::Io {
                dir: dir.to_path_buf(),
                source,
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("organism-folder-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn lock_is_exclusive_and_stale_locks_are_taken_over() {
        let d = scratch("lock");
        fs::write(d.join(".gen3.bin.999.tmp"), b"half").unwrap();
        let mut a = RunLock::acquire(&d).unwrap();
        assert!(!d.join(".gen3.bin.999.tmp").exists(), "temporary removed");
        // Our own pid holds it: a second acquire is refused.
        let e = RunLock::acquire(&d).unwrap_err().to_string();
        assert!(e.contains("in use by another organism process"), "{e}");
        a.release();
        assert!(!d.join(LOCK_FILE).exists());
        // Released: taken again at once.
        RunLock::acquire(&d).unwrap().release();
        // A lock of a process that is gone (pid beyond pid_max) is taken over.
        fs::write(d.join(LOCK_FILE), "4294967295").unwrap();
        let b = RunLock::acquire(&d).unwrap();
        drop(b);
        assert!(!d.join(LOCK_FILE).exists());
    }

    #[test]
    fn new_runs_refuse_occupied_folders_and_prune_keeps_the_newest() {
        let d = scratch("claim");
        claim_for_new_run(&d, false).unwrap();
        for g in 0..5 {
            fs::write(d.join(format!("gen{g}.bin")), b"x").unwrap();
        }
        fs::write(d.join("notes.txt"), b"mine").unwrap();
        let e = claim_for_new_run(&d, false).unwrap_err().to_string();
        assert!(e.contains("gen4.bin") && e.contains("--overwrite"), "{e}");
        prune(&d, 4, 2).unwrap();
        assert_eq!(generations(&d), vec![3, 4]);
        claim_for_new_run(&d, true).unwrap();
        assert!(generations(&d).is_empty());
        assert!(d.join("notes.txt").exists(), "other files are kept");
    }
}
