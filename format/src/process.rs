//! The process a trace records, as the running system sees it: its start time in
//! `/proc/PID/stat` (what the metadata's `process_start_ticks` holds), and whether it still runs.

/// Field 22 of a `/proc/PID/stat` line: when the process started, in clock ticks after boot
/// (the fields after the parenthesised command name, which may itself hold spaces and
/// parentheses, start at field 3). `None` for a line without it.
pub fn start_ticks_in_stat(stat: &[u8]) -> Option<u64> {
    let after_name = &stat[stat.iter().rposition(|&b| b == b')')? + 1..];
    let field = after_name.split(|&b| b == b' ').filter(|f| !f.is_empty()).nth(22 - 3)?;
    std::str::from_utf8(field).ok()?.parse().ok()
}

/// Whether process `pid`, started at `start_ticks` (clock ticks after boot), is still running
/// on this machine: a process of that pid exists and started then. False for an unknown start
/// time (0), since another process may have been given the pid since.
pub fn process_running(pid: u32, start_ticks: u64) -> bool {
    if pid == 0 || start_ticks == 0 {
        return false;
    }
    std::fs::read(format!("/proc/{pid}/stat")).ok().and_then(|stat| start_ticks_in_stat(&stat))
        == Some(start_ticks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_time_is_field_22_whatever_the_command_name_holds() {
        let stat = b"4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
        assert_eq!(start_ticks_in_stat(stat), Some(987_654));
        assert_eq!(start_ticks_in_stat(b"4242 (cut short) S 1 2"), None);
        assert_eq!(start_ticks_in_stat(b"no name at all"), None);
    }

    #[test]
    fn this_process_runs_and_one_with_another_start_time_does_not() {
        let pid = std::process::id();
        let stat = std::fs::read("/proc/self/stat").expect("/proc/self/stat");
        let ticks = start_ticks_in_stat(&stat).expect("start time");
        assert!(process_running(pid, ticks));
        assert!(!process_running(pid, ticks + 1), "the pid given to a later process");
        assert!(!process_running(pid, 0), "an unknown start time");
        assert!(!process_running(0, ticks));
    }
}
