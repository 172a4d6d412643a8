//! Peak (`VmHWM`) and current (`VmRSS`) resident memory of a process, from `/proc/<pid>/status` (Linux).

/// The peak resident set of process `pid` (`self` for this one) in MiB, if `/proc` says.
pub fn peak_rss_mb(pid: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kilobytes: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes / 1024.0)
}

/// The current resident set of process `pid` (`self` for this one) in MiB, if `/proc` says.
pub fn rss_mb(pid: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kilobytes: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes / 1024.0)
}

/// Resets this process's peak resident set to its current resident set (Linux ≥ 4.0), so that
/// the peak measured afterwards excludes what the benchmark's own setup needed. Returns whether
/// the kernel took it.
pub fn reset_own_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process_peak() {
        let peak = super::peak_rss_mb("self").expect("VmHWM in /proc/self/status");
        assert!(peak > 0.0);
    }
}
