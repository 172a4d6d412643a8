//! CPU time spent, from `/proc` (Linux): by one process (`/proc/<pid>/stat`, all its threads)
//! and by the whole machine (`/proc/stat`, every core busy but not idle or waiting for I/O).
//!
//! A phase's machine-wide figure says whether it was held back by work or by waiting: a phase
//! that keeps every core busy is bound by work (CPU), one that leaves cores idle waits (here,
//! for commits to reach the disk). On a machine shared with others it counts their work too;
//! the benchmarks quote medians of several runs.
//!
//! When PostgreSQL runs on the same machine, its backends are processes too ([`BackendsMark`]):
//! their CPU is the database's own share of a phase's work.

use std::collections::HashMap;

/// `/proc` counts CPU time in clock ticks of `USER_HZ`: 100 a second on the architectures Linux
/// distributions ship (x86, ARM, RISC-V, POWER, s390), whatever the kernel's own tick. (Read
/// from `sysconf` it would take unsafe code, which this crate forbids.)
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds (user and system, every thread) process `pid` (`self` for this one) has used.
pub fn process_cpu_s(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // after the command name in parentheses (which may hold spaces): state is field 3, utime
    // field 14 and stime field 15
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some((user + system) as f64 / TICKS_PER_SECOND)
}

/// CPU seconds the machine's cores have been busy since boot, summed over cores: everything
/// but idle, waiting for I/O, and time a hypervisor gave to other machines (steal).
pub fn machine_busy_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal (guest time is inside user already)
    let busy: u64 = ticks
        .iter()
        .take(7)
        .enumerate()
        .filter(|(index, _)| !matches!(index, 3 | 4))
        .map(|(_, t)| t)
        .sum();
    Some(busy as f64 / TICKS_PER_SECOND)
}

/// The machine's CPUs as `/proc/stat` counts them (one `cpuN` line each): what its busy time is
/// summed over, whatever this process may run on.
pub fn machine_cpus() -> Option<usize> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpus = stat
        .lines()
        .filter(|line| line.starts_with("cpu") && line.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count();
    (cpus > 0).then_some(cpus)
}

/// CPU counters read at one moment: the machine's and some processes'.
#[derive(Clone, Debug)]
pub struct CpuMark {
    machine: Option<f64>,
    processes: Vec<Option<f64>>,
}

impl CpuMark {
    /// Reads the machine's busy time and each of `pids`' CPU time now.
    pub fn now(pids: &[String]) -> CpuMark {
        CpuMark {
            machine: machine_busy_s(),
            processes: pids.iter().map(|pid| process_cpu_s(pid)).collect(),
        }
    }

    /// CPU seconds since `earlier`: the machine's (summed over its cores), and the processes'
    /// together. `None` where `/proc` did not say, and for the processes when none was watched
    /// or one of them could not be read either time.
    pub fn since(&self, earlier: &CpuMark) -> CpuSpent {
        let difference = |now: Option<f64>, then: Option<f64>| Some((now? - then?).max(0.0));
        let processes = self
            .processes
            .iter()
            .zip(&earlier.processes)
            .map(|(now, then)| difference(*now, *then))
            .collect::<Option<Vec<f64>>>()
            .filter(|spent| !spent.is_empty())
            .map(|spent| spent.iter().sum());
        CpuSpent {
            machine_s: difference(self.machine, earlier.machine),
            processes_s: processes,
        }
    }
}

/// CPU seconds spent between two [`CpuMark`]s.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuSpent {
    /// By the whole machine, summed over its cores.
    pub machine_s: Option<f64>,
    /// By the processes watched.
    pub processes_s: Option<f64>,
}

/// Whether process `pid` runs PostgreSQL's server (its backends keep the executable's name,
/// `postgres`, whatever title they show).
pub fn is_postgres(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|name| name.trim_end() == "postgres")
}

/// CPU seconds of a set of processes that changes while it is watched — a database's
/// backends, which connection pools open and close — read at one moment.
#[derive(Clone, Debug, Default)]
pub struct BackendsMark {
    cpu_s: HashMap<u32, f64>,
}

impl BackendsMark {
    /// Reads each of `pids`' CPU time now (those that cannot be read are left out).
    pub fn now(pids: &[u32]) -> BackendsMark {
        BackendsMark {
            cpu_s: pids
                .iter()
                .filter_map(|&pid| Some((pid, process_cpu_s(&pid.to_string())?)))
                .collect(),
        }
    }

    /// CPU seconds the processes read now spent since `earlier`: a process read both times
    /// counts what it spent in between, one that started in between counts all it spent. One
    /// that ended in between is not counted (its time cannot be read any more), so the figure
    /// is a lower bound when processes come and go; a benchmark's pools keep theirs.
    pub fn since(&self, earlier: &BackendsMark) -> f64 {
        self.cpu_s
            .iter()
            .map(|(pid, now)| (now - earlier.cpu_s.get(pid).copied().unwrap_or(0.0)).max(0.0))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_and_the_machine_count_work_done() {
        let pids = vec!["self".to_string()];
        let before = CpuMark::now(&pids);
        // work the counters must see: 300 ms of arithmetic
        busy_for(std::time::Duration::from_millis(300));
        let spent = CpuMark::now(&pids).since(&before);
        let process = spent.processes_s.expect("/proc/self/stat read");
        let machine = spent.machine_s.expect("/proc/stat read");
        assert!(process >= 0.1, "this process used {process} s");
        assert!(
            machine >= process - 0.02,
            "the machine ({machine} s) includes this process ({process} s)"
        );
    }

    #[test]
    fn the_machine_has_cpus_and_no_watched_process_means_no_figure() {
        assert!(machine_cpus().is_some_and(|cpus| cpus >= 1));
        let nothing = CpuMark::now(&[]);
        let spent = CpuMark::now(&[]).since(&nothing);
        assert_eq!(spent.processes_s, None);
        assert!(spent.machine_s.is_some());
    }

    #[test]
    fn a_process_that_is_not_there_has_no_figure() {
        assert_eq!(process_cpu_s("0"), None);
        let gone = CpuMark::now(&["0".to_string()]);
        assert_eq!(CpuMark::now(&["0".to_string()]).since(&gone).processes_s, None);
    }

    #[test]
    fn backends_that_started_late_count_whole_and_missing_ones_not_at_all() {
        let me = std::process::id();
        let before = BackendsMark::now(&[]);
        busy_for(std::time::Duration::from_millis(200));
        // this process "started" after the first mark: all its time counts
        let late = BackendsMark::now(&[me, 0]).since(&before);
        assert!(late >= 0.15, "counted {late} s");
        let mark = BackendsMark::now(&[me]);
        busy_for(std::time::Duration::from_millis(200));
        let spent = BackendsMark::now(&[me]).since(&mark);
        // (other tests' threads may add to this process's time, never take from it)
        assert!(spent >= 0.1, "counted {spent} s since the mark");
        assert!(!is_postgres(me), "this test is not PostgreSQL");
    }

    fn busy_for(time: std::time::Duration) {
        let started = std::time::Instant::now();
        let mut value = 0u64;
        while started.elapsed() < time {
            value = value
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
        }
        std::hint::black_box(value);
    }
}
