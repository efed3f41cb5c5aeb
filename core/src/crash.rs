//! Crash points: named places in the indexer and the publishers where the
//! fault-injection harness (`tests/crash.rs`) makes the process die as a
//! power cut or an OOM kill would, to show that no moment of a run can lose
//! or corrupt what was indexed.
//!
//! Nothing happens unless the environment asks for it:
//! - `BUSCA_CRASH_AT=<point>:<n>`: the `n`-th time (from 1) the process
//!   passes `<point>` it sends itself `SIGKILL` (no destructor, flush or
//!   atexit runs; elsewhere than Unix it aborts).
//! - `BUSCA_CRASH_TRACE=<file>`: every point passed is appended to `<file>`,
//!   one name per line, so a harness learns which points a run reaches and
//!   how often, and draws its kills from them.
//!
//! Without either variable [`point`] is one relaxed atomic load.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// The environment variable naming the point to die at (`<point>:<n>`).
pub const CRASH_AT_ENV: &str = "BUSCA_CRASH_AT";
/// The environment variable naming a file that records every point passed.
pub const CRASH_TRACE_ENV: &str = "BUSCA_CRASH_TRACE";

struct Armed {
    target: Option<(String, u64)>,
    trace: Option<Mutex<std::fs::File>>,
    hits: AtomicU64,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let target = std::env::var(CRASH_AT_ENV).ok().and_then(|v| parse_target(&v));
            let trace = std::env::var_os(CRASH_TRACE_ENV).and_then(|path| {
                std::fs::OpenOptions::new().create(true).append(true).open(path).ok().map(Mutex::new)
            });
            (target.is_some() || trace.is_some()).then_some(Armed { target, trace, hits: AtomicU64::new(0) })
        })
        .as_ref()
}

/// `<point>:<n>` with `n ≥ 1`.
fn parse_target(value: &str) -> Option<(String, u64)> {
    let (name, n) = value.rsplit_once(':')?;
    let n: u64 = n.parse().ok().filter(|&n| n >= 1)?;
    (!name.is_empty()).then(|| (name.to_string(), n))
}

/// Marks the crash point `name` (see the module docs).
#[inline]
pub fn point(name: &str) {
    if let Some(armed) = armed() {
        pass(armed, name);
    }
}

#[cold]
fn pass(armed: &Armed, name: &str) {
    if let Some(trace) = &armed.trace {
        if let Ok(mut file) = trace.lock() {
            let _ = writeln!(file, "{name}");
        }
    }
    if let Some((target, n)) = &armed.target {
        if target == name && armed.hits.fetch_add(1, Ordering::SeqCst) + 1 == *n {
            die();
        }
    }
}

fn die() -> ! {
    #[cfg(unix)]
    {
        // SAFETY: kill(2) on our own pid; it does not return for SIGKILL.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
    std::process::abort()
}

#[cfg(test)]
mod tests {
    use super::parse_target;

    #[test]
    fn targets_name_a_point_and_a_positive_count() {
        assert_eq!(parse_target("bundle.file:3"), Some(("bundle.file".into(), 3)));
        assert_eq!(parse_target("a:b:2"), Some(("a:b".into(), 2)));
        assert_eq!(parse_target("bundle.file:0"), None);
        assert_eq!(parse_target("bundle.file"), None);
        assert_eq!(parse_target(":4"), None);
    }
}
