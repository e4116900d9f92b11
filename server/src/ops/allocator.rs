//! How the process's memory allocator is set up before the server starts its threads.
//!
//! glibc's malloc gives each thread that contends for memory an arena of its own, up to eight per core,
//! and keeps what is freed in an arena for that arena's next use. The server's threads are many (tokio's
//! workers, the blocking pool that runs every SQLite read, the writer): at fleet size (`bench-fleet 200 50
//! 3`, 200 handhelds registering and downloading at once) the memory freed after the download burst
//! stayed resident in a dozen arenas, and the peak was 235 MiB. With one arena per core it was 162 MiB, the
//! same fleet, every other figure within the machine's noise. `MALLOC_ARENA_MAX` in the environment still
//! wins: glibc reads it itself, and this leaves it alone.

/// Caps glibc's malloc arenas at the number of cores. Call before the runtime starts its threads; a no-op
/// on other allocators and targets.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
            return;
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let arenas = libc::c_int::try_from(cores).unwrap_or(libc::c_int::MAX);
        // SAFETY: `mallopt` only sets a malloc parameter; it is called before any thread but this one
        // exists, and a refusal (it answers 0) leaves glibc's default in place.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}
