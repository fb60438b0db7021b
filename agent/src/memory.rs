//! The process's resident memory, and handing the heap freed after loading models back to the
//! system.
//!
//! Loading a model peaks well above what the loaded model keeps: tract parses the protobuf,
//! then builds and optimises a typed graph (weights repacked for its kernels) before the
//! runnable plan remains. glibc keeps most of what is freed on its heap, so without a trim that
//! peak stays in RSS for the life of the process.

/// Resident set size in bytes (`VmRSS` of `/proc/self/status`), when the system says.
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
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
    fn freed_heap_below_a_live_block_goes_back_to_the_system_on_trim() {
        // 128 MiB in blocks below the mmap threshold (so on the heap), touched; then one block
        // that stays, above them, so glibc cannot give the freed space back by shrinking the
        // heap's top: only the trim returns it (the pattern a model load leaves).
        let blocks: Vec<Vec<u8>> = (0..8192).map(|i| vec![i as u8 | 1; 16 * 1024]).collect();
        let pin = vec![7u8; 4096];
        let full = rss_bytes().expect("VmRSS");
        drop(blocks);
        let freed = rss_bytes().expect("VmRSS");
        trim();
        let after = rss_bytes().expect("VmRSS");
        assert_eq!(pin[0], 7);
        assert!(
            freed + 64 * MIB > full,
            "glibc returned the blocks by itself ({full} → {freed} bytes): trim is not needed"
        );
        assert!(
            after + 64 * MIB < full,
            "after trim RSS is {after} bytes (was {full} with the blocks, {freed} freed)"
        );
    }
}
