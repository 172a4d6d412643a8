//! CPU time spent, from `/proc` (Linux): by one process (`/proc/<pid>/stat`, all its threads)
//! and by the whole machine (`/proc/stat`, every core busy but not idle or waiting for I/O).
//!
//! A phase's machine-wide figure says whether it was held back by work or by waiting: a phase
//! that keeps every core busy is bound by work (CPU), one that leaves cores idle waits (here,
//! for commits to reach the disk). On a machine shared with others it counts their work too;
//! the benchmarks quote medians of several runs.
//!
//! When PostgreSQL runs on the same machine, its backends are processes too
//! ([`postgres_processes`], [`BackendsMark`]): their CPU is the database's own share of a
//! phase's work.

use std::collections::HashMap;

use crate::store::inspect::Backend;

/// `/proc` counts CPU time in clock ticks of `USER_HZ`: 100 a second on the architectures Linux
/// distributions ship (x86, ARM, RISC-V, POWER, s390), whatever the kernel's own tick. (Read
/// from `sysconf` it would take unsafe code, which this crate forbids.)
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds (user and system, every thread) process `pid` (`self` for this one) has used.
pub fn process_cpu_s(pid: &str) -> Option<f64> {
    process_stat(pid).map(|stat| stat.cpu_s)
}

/// What `/proc/<pid>/stat` says of a process: its name, CPU used, and when it started (ticks
/// after boot) — one read, so that the three belong to the same process.
#[derive(Clone, Debug)]
struct ProcessStat {
    name: String,
    cpu_s: f64,
    started_ticks: u64,
}

fn process_stat(pid: &str) -> Option<ProcessStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the name is in parentheses (and may hold spaces and parentheses itself); after it comes
    // field 3: utime is field 14, stime 15, starttime 22
    let (head, tail) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1.to_string();
    let fields: Vec<&str> = tail.split_whitespace().collect();
    let field = |number: usize| -> Option<u64> { fields.get(number - 3)?.parse().ok() };
    Some(ProcessStat {
        name,
        cpu_s: (field(14)? + field(15)?) as f64 / TICKS_PER_SECOND,
        started_ticks: field(22)?,
    })
}

/// When the machine booted, seconds since the Unix epoch (`btime` in `/proc/stat`).
fn boot_time_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|seconds| seconds as f64)
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

/// How far a process's start time in `/proc` may be from the one PostgreSQL gives its backend
/// for the two to be the same process: boot time is read in whole seconds (up to one early),
/// and PostgreSQL stamps a backend just after it starts.
const SAME_START_S: f64 = 2.0;

/// The pids of PostgreSQL's server processes among this machine's, for `backends` as the
/// server listed them, or `None` when they are not readable here: the server runs elsewhere
/// (a loopback address may be a tunnel's end), in another pid namespace (a container), or
/// `/proc` hides other users' processes. Each process read here must be a PostgreSQL one
/// started when the server says its backend started; one that is gone meanwhile (a connection
/// closed) is left out. `None` unless at least one is found, and `None` if any pid here belongs
/// to another process: then the server is not this machine's, and no figure is better than a
/// wrong one.
pub fn postgres_processes(backends: &[Backend]) -> Option<Vec<u32>> {
    let boot_s = boot_time_s()?;
    let mut found = Vec::new();
    for backend in backends {
        let pid = u32::try_from(backend.pid).ok()?;
        let Some(stat) = process_stat(&pid.to_string()) else {
            continue;
        };
        let started_s = boot_s + stat.started_ticks as f64 / TICKS_PER_SECOND;
        let postgres = matches!(stat.name.as_str(), "postgres" | "postmaster");
        if !postgres || (started_s - backend.started_s).abs() > SAME_START_S {
            return None;
        }
        found.push(pid);
    }
    (!found.is_empty()).then_some(found)
}

/// CPU seconds of a set of processes that changes while it is watched — a database's
/// backends, which connection pools open and close — read at one moment. Each process is known
/// by its pid and start time, so a pid the system gave again to a new process is a new one.
#[derive(Clone, Debug, Default)]
pub struct BackendsMark {
    cpu_s: HashMap<(u32, u64), f64>,
}

impl BackendsMark {
    /// Reads each of `pids`' CPU time now (those that cannot be read are left out).
    pub fn now(pids: &[u32]) -> BackendsMark {
        BackendsMark {
            cpu_s: pids
                .iter()
                .filter_map(|&pid| {
                    let stat = process_stat(&pid.to_string())?;
                    Some(((pid, stat.started_ticks), stat.cpu_s))
                })
                .collect(),
        }
    }

    /// The same processes read again now (those gone meanwhile are left out).
    pub fn again(&self) -> BackendsMark {
        BackendsMark::now(&self.cpu_s.keys().map(|(pid, _)| *pid).collect::<Vec<_>>())
    }

    /// This mark with the processes of `later` it has not read, read a moment later: the
    /// backends a listing after the mark found. A process both read keeps this mark's reading.
    pub fn and(mut self, later: BackendsMark) -> BackendsMark {
        for (process, cpu_s) in later.cpu_s {
            self.cpu_s.entry(process).or_insert(cpu_s);
        }
        self
    }

    /// CPU seconds the processes read now spent since `earlier`: a process read both times
    /// counts what it spent in between, one that started in between counts all it spent. One
    /// that ended in between is not counted (its time cannot be read any more), so the figure
    /// is a lower bound when processes come and go; a benchmark's pools keep theirs.
    pub fn since(&self, earlier: &BackendsMark) -> f64 {
        self.cpu_s
            .iter()
            .map(|(process, now)| (now - earlier.cpu_s.get(process).copied().unwrap_or(0.0)).max(0.0))
            .sum()
    }
}

/// `/proc` counts in ticks of 10 ms, so a phase's CPU says how many cores it kept busy, or how
/// it compares with another phase's, only when the phase lasted this long: under a second, a
/// tick more or less is a large part of it.
pub const SHORTEST_MEASURED_PHASE_S: f64 = 1.0;

/// `cpu_s / phase_s`, the cores a phase kept busy on average, for a phase long enough to say.
pub fn busy_cores(cpu_s: Option<f64>, phase_s: f64) -> Option<f64> {
    cpu_s
        .filter(|_| phase_s >= SHORTEST_MEASURED_PHASE_S)
        .map(|cpu| cpu / phase_s)
}

/// `(a_cpu_s / b_cpu_s)` for two phases `(cpu, seconds)`, when both were measured, lasted long
/// enough to say, and the second counted some CPU.
pub fn cpu_ratio(a: (Option<f64>, f64), b: (Option<f64>, f64)) -> Option<f64> {
    let long_enough = a.1 >= SHORTEST_MEASURED_PHASE_S && b.1 >= SHORTEST_MEASURED_PHASE_S;
    let (a, b) = (a.0?, b.0.filter(|&b| b > 0.0)?);
    long_enough.then_some(a / b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keeps this thread busy until this process has used `cpu_s` more CPU seconds (other
    /// threads' work counts too), and one tick more, so that the difference of two readings
    /// in floating point is not a hair under `cpu_s`; or until 10 s have passed.
    fn busy_for(cpu_s: f64) {
        let cpu_s = cpu_s + 1.0 / TICKS_PER_SECOND;
        let start = process_cpu_s("self").expect("/proc/self/stat read");
        let started = std::time::Instant::now();
        let mut value = 0u64;
        while process_cpu_s("self").unwrap_or(f64::MAX) < start + cpu_s
            && started.elapsed() < std::time::Duration::from_secs(10)
        {
            for _ in 0..100_000 {
                value = value
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
            }
        }
        std::hint::black_box(value);
    }

    #[test]
    fn this_process_and_the_machine_count_work_done() {
        let pids = vec!["self".to_string()];
        let before = CpuMark::now(&pids);
        busy_for(0.2);
        let spent = CpuMark::now(&pids).since(&before);
        let process = spent.processes_s.expect("/proc/self/stat read");
        let machine = spent.machine_s.expect("/proc/stat read");
        assert!(process >= 0.2, "this process used {process} s");
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
    fn a_process_first_seen_late_counts_all_its_time_and_one_seen_twice_the_difference() {
        let me = std::process::id();
        let before = BackendsMark::now(&[]);
        busy_for(0.2);
        // absent from the first mark, as a backend opened mid-phase: all its time counts
        let late = BackendsMark::now(&[me, 0]).since(&before);
        let total = process_cpu_s("self").expect("/proc/self/stat read");
        assert!(late >= 0.2 && late <= total, "counted {late} s of {total} s");
        let mark = BackendsMark::now(&[me]);
        busy_for(0.2);
        let spent = mark.again().since(&mark);
        let total = process_cpu_s("self").expect("/proc/self/stat read");
        assert!(spent >= 0.2, "counted {spent} s since the mark");
        // the 0.2 s before the mark are not counted
        assert!(
            spent <= total - 0.2,
            "only the time since the mark: {spent} s of {total} s"
        );
    }

    #[test]
    fn a_process_read_by_a_mark_keeps_that_reading_when_a_later_one_is_added() {
        let me = std::process::id();
        let start = BackendsMark::default();
        let mark = BackendsMark::now(&[me]);
        busy_for(0.2);
        // the later listing read this process again: the first reading stands
        let kept = mark.clone().and(mark.again()).since(&start);
        assert_eq!(kept, mark.since(&start));
        // a process the mark had not read is added
        let empty = BackendsMark::default();
        assert_eq!(empty.and(mark.clone()).since(&start), mark.since(&start));
    }

    #[test]
    fn a_pid_given_again_to_another_process_is_a_new_process() {
        let me = std::process::id();
        let stat = process_stat("self").expect("/proc/self/stat read");
        // an earlier process with this pid, started at another moment, that had used much
        let earlier = BackendsMark {
            cpu_s: HashMap::from([((me, stat.started_ticks + 1), 1_000.0)]),
        };
        busy_for(0.2);
        let spent = BackendsMark::now(&[me]).since(&earlier);
        let total = process_cpu_s("self").expect("/proc/self/stat read");
        assert!(
            spent >= 0.2 && spent <= total,
            "all of this process's time counts, as a new one: {spent} s of {total} s"
        );
    }

    #[test]
    fn a_process_that_is_not_the_backend_the_server_names_is_no_postgres_process() {
        let me = i32::try_from(std::process::id()).expect("a pid");
        let started_s = boot_time_s().expect("btime")
            + process_stat("self").expect("/proc/self/stat read").started_ticks as f64 / TICKS_PER_SECOND;
        let name = std::fs::read_to_string("/proc/self/comm").expect("/proc/self/comm read");
        assert_eq!(
            process_stat("self").map(|stat| stat.name),
            Some(name.trim_end().to_string())
        );
        // this test started when it did, but it is not PostgreSQL
        assert_eq!(postgres_processes(&[Backend { pid: me, started_s }]), None);
        // nothing found here at all: no figure
        assert_eq!(postgres_processes(&[]), None);
    }

    #[test]
    fn phases_too_short_for_the_counters_have_no_busy_cores_or_ratio() {
        assert_eq!(busy_cores(Some(3.0), 2.0), Some(1.5));
        assert_eq!(busy_cores(Some(0.03), 0.01), None);
        assert_eq!(cpu_ratio((Some(8.0), 4.0), (Some(2.0), 1.5)), Some(4.0));
        assert_eq!(cpu_ratio((Some(8.0), 4.0), (Some(0.02), 0.01)), None);
        assert_eq!(cpu_ratio((Some(8.0), 4.0), (Some(0.0), 2.0)), None);
        assert_eq!(cpu_ratio((None, 4.0), (Some(2.0), 2.0)), None);
    }
}
