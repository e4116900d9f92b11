// mimalloc, not glibc's malloc: at 200 handhelds syncing at once the server's freed memory stayed
// resident under glibc (`malloc_trim` gave back 42 of 182 MiB after the downloads); mimalloc returns
// freed pages to the system by itself.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    fieldcheck_server::cli::main()
}
