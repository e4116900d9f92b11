//! Writes the seed corpora under `fuzz/corpus/<target>/`: real sync messages from a device
//! inspecting offline (opening, edits, a whole-document message, a compressed change, a forged
//! colleague's change), the same as batch bodies, small real photos and typed-in codes.
//! `cargo run --manifest-path fuzz/Cargo.toml --bin make-seeds` (run from the repository root).

use std::{fs, path::Path};

use automerge::sync::{ChunkList, Message, MessageVersion};
use fieldcheck_fuzz::{OFFICER, T0, colleague_actor, device_actor, rules, server_record};
use fieldcheck_sync::{
    RecordDoc, Rules, SyncSession,
    batch::{self, Bytes, DocMessage, SyncRequest},
    schema::{CheckResult, Disposal, Location, OfficerId, PhotoHash, PhotoRef, Stamp, Verdict},
};

fn stamp(by: &str, seconds: i64) -> Stamp {
    Stamp { by: OfficerId::parse(by).unwrap(), at: T0 + seconds * 1000 }
}

/// Syncs the device with the server until both are quiet; answers what the device sent.
fn exchange(device: &mut RecordDoc, server: &mut RecordDoc) -> Vec<Vec<u8>> {
    let (mut device_side, mut server_side) = (SyncSession::new(), SyncSession::new());
    let mut sent = Vec::new();
    let mut next = device_side.generate(device);
    while let Some(message) = next.take() {
        sent.push(message.clone());
        let reply = server_side.receive(server, &message, &rules()).expect("the server accepts").reply;
        let Some(reply) = reply else { break };
        next = device_side.receive(device, &reply, &Rules::TrustServer).expect("the device accepts").reply;
    }
    sent
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(name), bytes).unwrap();
}

fn main() {
    let corpus = Path::new("fuzz/corpus");
    let mut server = server_record();
    let mut device = RecordDoc::replica(device_actor());
    let mut messages = exchange(&mut device, &mut server);

    device.set_check_result("fa-01", CheckResult::Pass, &stamp(OFFICER, 1)).unwrap();
    device.set_check_note("fa-02", "carton 4 torn", &stamp(OFFICER, 2)).unwrap();
    let note = fieldcheck_sync::schema::NoteId::parse("n1").unwrap();
    device.put_note(&note, "cold chain intact; seals checked", &stamp(OFFICER, 3)).unwrap();
    let photo = PhotoRef {
        check_item: Some("fa-02".into()),
        caption: "torn carton".into(),
        taken_at: T0 + 4000,
        location: Some(Location { lat: 30.6, lon: 122.0 }),
        withdrawn: false,
    };
    device
        .attach_photo(&PhotoHash::parse(format!("{:064x}", 7)).unwrap(), &photo, &stamp(OFFICER, 4))
        .unwrap();
    device.set_verdict(Verdict::NonConforming { disposal: Disposal::Return }, &stamp(OFFICER, 5)).unwrap();
    device.sign("I inspected these goods.", &stamp(OFFICER, 6)).unwrap();
    device.set_complete(true, &stamp(OFFICER, 7)).unwrap();
    messages.extend(exchange(&mut device, &mut server));

    // Every change at once, as a whole document (what automerge sends a peer far behind), and as
    // compressed change chunks.
    let all_of = |doc: &mut RecordDoc, since: &[automerge::ChangeHash]| {
        let mut plain = automerge::AutoCommit::load(&doc.save()).unwrap();
        plain.get_changes(since)
    };
    let all = all_of(&mut device, &[]);
    let as_message = |changes: ChunkList| {
        Message {
            heads: vec![],
            need: vec![],
            have: vec![],
            changes,
            flags: None,
            version: MessageVersion::V2,
        }
        .encode()
    };
    messages.push(as_message(ChunkList::from(device.save())));
    messages.push(as_message(ChunkList::from(
        all.into_iter().map(|mut c| c.bytes().to_vec()).collect::<Vec<_>>(),
    )));

    // A colleague's change relayed by this device: refused, but well-formed down to the last rule.
    let mut forged = RecordDoc::load(&device.save(), colleague_actor()).unwrap();
    forged.set_check_result("fa-03", CheckResult::Fail, &stamp("officer2", 8)).unwrap();
    let fresh = server_record().heads();
    let relayed = all_of(&mut forged, &fresh).iter().map(|c| c.raw_bytes().to_vec()).collect::<Vec<_>>();
    messages.push(as_message(ChunkList::from(relayed)));

    for (n, message) in messages.iter().enumerate() {
        write(&corpus.join("sync_message"), &format!("seed-{n:02}"), message);
        let body = SyncRequest {
            v: batch::VERSION,
            messages: vec![DocMessage {
                doc: "0123456789abcdef0123456789abcdef".into(),
                data: Bytes(message.clone()),
            }],
            pending: None,
        };
        write(&corpus.join("sync_batch"), &format!("seed-{n:02}"), &batch::encode(&body));
    }

    // Photos: two small camera JPEGs whole (EXIF, thumbnails), the EXIF-bearing heads of two GPS
    // photos, and a tiny PNG and WebP.
    let photos = Path::new("fixtures/photos");
    for (name, keep) in [
        ("Canon_40D.jpg", usize::MAX),
        ("Nikon_D70.jpg", usize::MAX),
        ("gps_DSCN0010.jpg", 16_384),
        ("orientation_landscape_6.jpg", 16_384),
    ] {
        let bytes = fs::read(photos.join(name)).unwrap();
        write(&corpus.join("photo_inspect"), name, &bytes[..bytes.len().min(keep)]);
    }
    let pixels = image::RgbImage::from_fn(8, 8, |x, y| image::Rgb([x as u8 * 30, y as u8 * 30, 128]));
    for (name, format) in [("tiny.png", image::ImageFormat::Png), ("tiny.webp", image::ImageFormat::WebP)] {
        let mut out = std::io::Cursor::new(Vec::new());
        pixels.write_to(&mut out, format).unwrap();
        write(&corpus.join("photo_inspect"), name, out.get_ref());
    }

    for (n, code) in
        ["220252200000017", "3101960001", "91310000MA1FL8TQ2X", "2200", "1\u{0}2\u{7f}"].iter().enumerate()
    {
        write(&corpus.join("codes"), &format!("seed-{n:02}"), code.as_bytes());
    }
    println!("seeds written under {}", corpus.display());
}
