//! A whole batch body as `POST /api/v1/sync` receives it: CBOR framing first, then each message
//! against the server's copy of the record.
#![no_main]

use fieldcheck_fuzz::{rules, server_record};
use fieldcheck_sync::{
    batch::{self, SyncRequest},
    validate::validate_message,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = batch::decode::<SyncRequest>(data) else { return };
    let server = server_record();
    let rules = rules();
    for message in request.messages.iter().take(batch::MAX_DOCS_PER_BATCH) {
        if let Ok(accepted) =
            validate_message(&server, &automerge::sync::State::new(), &message.data.0, &rules)
        {
            accepted.doc.read().expect("an accepted message leaves a readable record");
        }
    }
});
