//! The process's resident memory, and handing the heap freed after loading models back to the
//! system.
//!
//! Loading a model peaks well above what the loaded model keeps: tract parses the protobuf,
//! then builds and optimises a typed graph (weights repacked for its kernels) before the
//! runnable plan remains. glibc keeps most of what is freed on its heap, so without a trim that
//! peak stays in RSS for the life of the process.

/// Resident set size in bytes (`VmRSS` of `/proc/self/status`), when the system says.
pub fn rss_bytes() -> Option<u64> {
    status_kib("VmRSS:").map(|kib| kib * 1024)
}

/// Peak resident set size of this process (`VmHWM`), in KiB, when the system says.
pub fn peak_rss_kib() -> Option<u64> {
    status_kib("VmHWM:")
}

/// A `… kB` field of `/proc/self/status`.
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Return the free memory of glibc's heap to the system (`malloc_trim(0)`). A no-op with
/// another C library.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own free lists; it takes no pointer and is safe to
    // call from any thread at any time.
    #[allow(unsafe_code)]
    unsafe {
        libc::malloc_trim(0);
    }
}

/// [`trim`], returning the RSS before and after in MiB (for the start log).
pub fn trim_and_measure() -> (Option<f64>, Option<f64>) {
    let mib = |b: u64| (b as f64 / 1_048_576.0 * 10.0).round() / 10.0;
    let before = rss_bytes().map(mib);
    trim();
    (before, rss_bytes().map(mib))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1_048_576;

    #[test]
    fn freed_holes_in_the_heap_go_back_to_the_system_on_trim() {
        // 16 KiB blocks (below the mmap threshold, so on the heap), touched; every other one is
        // freed, leaving 128 MiB of holes between live blocks. free() only gives back the top
        // of a heap, so glibc keeps the holes resident: the pattern a model load leaves. Only
        // the trim returns their whole pages (three of each hole's four).
        let mut blocks: Vec<Option<Vec<u8>>> = (0..16_384)
            .map(|i| Some(vec![i as u8 | 1; 16 * 1024]))
            .collect();
        let full = rss_bytes().expect("VmRSS");
        blocks.iter_mut().step_by(2).for_each(|b| *b = None);
        let freed = rss_bytes().expect("VmRSS");
        trim();
        let after = rss_bytes().expect("VmRSS");
        assert!(blocks.iter().skip(1).step_by(2).all(|b| b.is_some()));
        assert!(
            freed + 32 * MIB > full,
            "glibc returned the holes by itself ({full} → {freed} bytes)"
        );
        assert!(
            after + 64 * MIB < freed,
            "after trim RSS is {after} bytes ({freed} before it, {full} with every block)"
        );
    }
}
