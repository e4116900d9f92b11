//! The `handheld` reference client; everything is in `fieldcheck_sync::handheld`.

fn main() -> anyhow::Result<()> {
    fieldcheck_sync::handheld::cli::main()
}
