//! One sync message from a device, validated against the server's copy of a record: the chunk
//! bounds, automerge's decoding and merge (panics contained), and every record rule. Anything
//! accepted must leave a record that still reads as a valid record.
#![no_main]

use fieldcheck_fuzz::{rules, server_record};
use fieldcheck_sync::{chunks, validate::validate_message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = chunks::measure(data, chunks::Limits::default());
    let server = server_record();
    if let Ok(accepted) = validate_message(&server, &automerge::sync::State::new(), data, &rules()) {
        accepted.doc.read().expect("an accepted message leaves a readable record");
    }
});
