//! The `handheld` reference client; everything is in the `fieldcheck_handheld` library.

fn main() -> anyhow::Result<()> {
    fieldcheck_handheld::cli::main()
}
