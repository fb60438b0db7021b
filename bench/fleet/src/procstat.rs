//! CPU time and memory of a process, from `/proc/{pid}/stat` and `/proc/{pid}/status`.

use anyhow::Context;

/// Clock ticks per second of `/proc/*/stat` times (`getconf CLK_TCK`; 100 on Linux).
fn ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// User plus system CPU seconds of process `pid` (`"self"` for this one).
pub fn cpu_s(pid: &str) -> anyhow::Result<f64> {
    stat_cpu_s(&format!("/proc/{pid}/stat"))
}

/// CPU seconds of this process's threads whose name starts with `prefix`.
pub fn threads_cpu_s(prefix: &str) -> anyhow::Result<f64> {
    let mut total = 0.0;
    for task in std::fs::read_dir("/proc/self/task")? {
        let dir = task?.path();
        // A thread may end between the listing and the read: skip it.
        let Ok(name) = std::fs::read_to_string(dir.join("comm")) else {
            continue;
        };
        if name.trim_end().starts_with(prefix) {
            total += stat_cpu_s(&dir.join("stat").to_string_lossy()).unwrap_or(0.0);
        }
    }
    Ok(total)
}

fn stat_cpu_s(path: &str) -> anyhow::Result<f64> {
    let text = std::fs::read_to_string(path)?;
    // The command name (field 2) may hold spaces: count from the closing parenthesis.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("/proc stat without a command name")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, utime 14 and stime 15 (1-based over the whole line).
    let utime: f64 = f.get(11).context("no utime")?.parse()?;
    let stime: f64 = f.get(12).context("no stime")?.parse()?;
    Ok((utime + stime) / ticks())
}

/// Resident memory of process `pid` now and at its peak, MiB (`VmRSS`, `VmHWM`).
pub fn rss_mib(pid: &str) -> anyhow::Result<(f64, f64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<f64> {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("no {name} in /proc/{pid}/status"))?;
        let kib: f64 = line
            .split_whitespace()
            .nth(1)
            .context("no value")?
            .parse()?;
        Ok(kib / 1024.0)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_and_a_named_thread_have_cpu_time_and_memory() -> anyhow::Result<()> {
        // Spin until the kernel has counted a tick, with a deadline.
        let spin = || {
            let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
            let mut x = 0u64;
            while std::time::Instant::now() < end {
                for i in 0..1_000_000u64 {
                    x = x.wrapping_mul(31).wrapping_add(i);
                }
                if cpu_s("thread-self").is_ok_and(|c| c > 0.0) {
                    break;
                }
            }
            x
        };
        let named = std::thread::Builder::new()
            .name("procstat-probe".into())
            .spawn(move || {
                spin();
                threads_cpu_s("procstat-probe")
            })?;
        let in_thread = named
            .join()
            .map_err(|_| anyhow::anyhow!("probe panicked"))??;
        assert!(in_thread > 0.0, "the named thread's own time");
        assert!(cpu_s("self")? >= in_thread);
        assert_eq!(threads_cpu_s("no-such-thread")?, 0.0);
        let (rss, peak) = rss_mib("self")?;
        assert!(rss > 0.0 && peak >= rss);
        assert!(cpu_s("0").is_err(), "no process 0 in /proc");
        Ok(())
    }
}
