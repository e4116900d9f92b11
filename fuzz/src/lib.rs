//! What the fuzz targets share: the server's copy of one record and the rules a device's messages
//! meet, with fixed actors so that the seeds written by `make-seeds` pass validation and the
//! fuzzer starts from messages that go deep, not from ones refused at the first byte.
//!
//! # Layout
//! - `fuzz_targets/sync_message.rs`: one sync message, as the batch endpoint validates it.
//! - `fuzz_targets/sync_batch.rs`: a whole CBOR batch body: framing, then each message.
//! - `fuzz_targets/photo_inspect.rs`: the photo inspector (format, decoding limits) and EXIF reader.
//! - `fuzz_targets/codes.rs`: inspection numbers, customs codes, USCCs, district codes.
//! - `src/bin/make-seeds.rs`: writes the seed corpora under `corpus/`.

use std::sync::OnceLock;

use automerge::ActorId;
use fieldcheck_sync::{
    RecordDoc, Rules,
    schema::{ChecklistItem, GoodsLine, InstructionPart, OfficerId},
};

/// The officer whose device sends the messages.
pub const OFFICER: &str = "officer1";
pub const T0: i64 = 1_750_000_000_000;

pub fn server_actor() -> ActorId {
    ActorId::from([0x5e; 16])
}

pub fn device_actor() -> ActorId {
    ActorId::from([0xd1; 16])
}

/// A colleague assigned to the same record, whose actor the device must not write as.
pub fn colleague_actor() -> ActorId {
    ActorId::from([0xd2; 16])
}

fn instruction() -> InstructionPart {
    InstructionPart {
        instruction_id: "1".into(),
        inspection_no: "220252200000017".into(),
        enterprise_name: "Eastern Orchard Export".into(),
        goods: vec![GoodsLine {
            line_no: 1,
            hs_code: "0303110000".into(),
            name: "frozen sockeye salmon".into(),
            quantity: 1200.0,
            unit: "kg".into(),
            weight_kg: 1200.0,
            origin: "CN".into(),
        }],
        checklist: ["fa-01", "fa-02", "fa-03"]
            .map(|id| ChecklistItem {
                item_id: id.into(),
                title: format!("item {id}"),
                kind: "visual".into(),
                unit: None,
            })
            .to_vec(),
        site: "Yangshan Port (2201)".into(),
        slot: None,
        deadline: T0 + 86_400_000,
    }
}

/// The server's copy of the record, as dispatch creates it (the same bytes every run).
pub fn server_record() -> RecordDoc {
    static SAVED: OnceLock<Vec<u8>> = OnceLock::new();
    let saved = SAVED.get_or_init(|| {
        let mut doc = RecordDoc::create(&instruction(), &[OfficerId::parse(OFFICER).expect("officer id")], server_actor(), T0).expect("record");
        doc.save()
    });
    RecordDoc::load(saved, server_actor()).expect("saved record loads")
}

/// The rules the server applies to the device's messages.
pub fn rules() -> Rules {
    let officers = [(device_actor(), OFFICER), (colleague_actor(), "officer2")]
        .into_iter()
        .map(|(actor, id)| (actor, OfficerId::parse(id).expect("officer id")))
        .collect();
    Rules::Record { officers, sender: device_actor(), sealed: false }
}
