//! The photo inspector with the server's default limits, and the EXIF reader on its own: neither
//! may panic, hang or allocate past the limits, whatever the bytes.
#![no_main]

use fieldcheck_server::{config::PhotoSettings, photos::inspect};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = PhotoSettings::default();
    let _ = inspect::inspect(data, None, &limits);
    let _ = inspect::read_exif(data);
});
