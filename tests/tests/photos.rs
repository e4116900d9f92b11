//! Photo evidence: checked, content-addressed uploads (whole and resumable), EXIF facts, upright thumbnails,
//! and who may upload and read.

use fieldcheck_tests::{
    TestServer,
    photos::{
        assigned_instruction, begin_upload, finish_upload, fixture, get_bytes, put_named, put_photo,
        send_chunk, sha256_hex, upload_offset, upload_resumable,
    },
};
use image::{DynamicImage, GenericImageView};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What `exiftool -n` (12.57) reports for each fixture: DateTimeOriginal, GPSLatitude, GPSLongitude,
/// Orientation, Make, Model, and the stored width × height.
struct Expected {
    file: &'static str,
    captured_at: Option<&'static str>,
    position: Option<(f64, f64)>,
    orientation: Option<u8>,
    make: Option<&'static str>,
    model: Option<&'static str>,
    size: (u32, u32),
}

const EXPECTED: &[Expected] = &[
    Expected {
        file: "Canon_40D.jpg",
        captured_at: Some("2008-05-30T15:56:01"),
        position: None,
        orientation: Some(1),
        make: Some("Canon"),
        model: Some("Canon EOS 40D"),
        size: (100, 68),
    },
    Expected {
        file: "Nikon_D70.jpg",
        captured_at: Some("2008-03-15T09:52:01"),
        position: None,
        orientation: Some(1),
        make: Some("NIKON CORPORATION"),
        model: Some("NIKON D70"),
        size: (100, 66),
    },
    Expected {
        file: "gps_DSCN0010.jpg",
        captured_at: Some("2008-10-22T16:28:39"),
        position: Some((43.4674483333333, 11.8851266666639)),
        orientation: Some(1),
        make: Some("NIKON"),
        model: Some("COOLPIX P6000"),
        size: (640, 480),
    },
    Expected {
        file: "gps_DSCN0012.jpg",
        captured_at: Some("2008-10-22T16:29:49"),
        position: Some((43.4671566666639, 11.8853949999972)),
        orientation: Some(1),
        make: Some("NIKON"),
        model: Some("COOLPIX P6000"),
        size: (640, 480),
    },
    Expected {
        file: "gps_DSCN0021.jpg",
        captured_at: Some("2008-10-22T16:38:20"),
        position: Some((43.4670816666639, 11.8845383333306)),
        orientation: Some(1),
        make: Some("NIKON"),
        model: Some("COOLPIX P6000"),
        size: (640, 480),
    },
    Expected {
        file: "mobile_jolla.jpg",
        captured_at: Some("2014-09-21T16:00:56"),
        position: None,
        orientation: Some(1),
        make: Some("Jolla"),
        model: Some("Jolla"),
        size: (3264, 2448),
    },
    Expected {
        file: "orientation_landscape_6.jpg",
        captured_at: None,
        position: None,
        orientation: Some(6),
        make: None,
        model: None,
        size: (450, 600),
    },
    Expected {
        file: "orientation_portrait_3.jpg",
        captured_at: None,
        position: None,
        orientation: Some(3),
        make: None,
        model: None,
        size: (450, 600),
    },
];

#[tokio::test]
async fn each_fixtures_exif_time_position_orientation_and_camera_are_read() {
    let server = TestServer::start();
    let instruction = assigned_instruction(&server, &["officer1"]).await;
    let officer = server.login("officer1").await;
    for e in EXPECTED {
        let bytes = fixture(e.file);
        let (status, photo) = put_photo(&officer, instruction, &bytes, "image/jpeg").await;
        assert_eq!(status, 201, "{}: {photo}", e.file);
        let (status, meta) = officer.get(&format!("/api/v1/photos/{}/metadata", sha256_hex(&bytes))).await;
        assert_eq!(status, 200, "{}: {meta}", e.file);
        assert_eq!(meta, photo, "the upload answers the stored metadata");
        assert_eq!(meta["captured_at"].as_str(), e.captured_at, "{} time", e.file);
        match e.position {
            Some((lat, lon)) => {
                let (got_lat, got_lon) =
                    (meta["latitude"].as_f64().unwrap(), meta["longitude"].as_f64().unwrap());
                assert!((got_lat - lat).abs() < 1e-9 && (got_lon - lon).abs() < 1e-9, "{}: {meta}", e.file);
            }
            None => assert!(meta["latitude"].is_null() && meta["longitude"].is_null(), "{}: {meta}", e.file),
        }
        assert_eq!(meta["orientation"].as_u64(), e.orientation.map(u64::from), "{} orientation", e.file);
        assert_eq!(meta["make"].as_str(), e.make, "{} make", e.file);
        assert_eq!(meta["model"].as_str(), e.model, "{} model", e.file);
        assert_eq!(
            (meta["width"].as_u64(), meta["height"].as_u64()),
            (Some(e.size.0.into()), Some(e.size.1.into()))
        );
        assert_eq!(meta["size"].as_u64(), Some(bytes.len() as u64));
        assert_eq!(meta["format"], "jpeg");
        let (status, ct, original) =
            get_bytes(&officer, &format!("/api/v1/photos/{}", sha256_hex(&bytes))).await;
        assert_eq!((status, ct.as_str()), (200, "image/jpeg"));
        assert!(original == bytes, "{}: the original comes back byte for byte", e.file);
    }
}

/// Mean absolute difference per channel between two images of equal size.
fn mean_difference(a: &DynamicImage, b: &DynamicImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let (a, b) = (a.to_rgb8(), b.to_rgb8());
    let total: u64 = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| u64::from(x.abs_diff(*y))).sum();
    total as f64 / a.as_raw().len() as f64
}

#[tokio::test]
async fn orientation_six_and_three_thumbnails_come_out_upright() {
    let server = TestServer::start();
    let instruction = assigned_instruction(&server, &["officer1"]).await;
    let officer = server.login("officer1").await;
    // (file, upright size, the turn that makes it upright, a wrong turn of the same size)
    type Turn = fn(&DynamicImage) -> DynamicImage;
    let cases: [(&str, (u32, u32), Turn, Turn); 2] = [
        ("orientation_landscape_6.jpg", (320, 240), DynamicImage::rotate90, DynamicImage::rotate270),
        ("orientation_portrait_3.jpg", (240, 320), DynamicImage::rotate180, |i: &DynamicImage| i.clone()),
    ];
    for (file, size, upright, wrong) in cases {
        let bytes = fixture(file);
        assert_eq!(put_photo(&officer, instruction, &bytes, "image/jpeg").await.0, 201);
        let (status, ct, thumb) =
            get_bytes(&officer, &format!("/api/v1/photos/{}/thumbnail", sha256_hex(&bytes))).await;
        assert_eq!((status, ct.as_str()), (200, "image/jpeg"), "{file}");
        let thumb = image::load_from_memory(&thumb).expect("the thumbnail is a JPEG");
        assert_eq!(thumb.dimensions(), size, "{file}: 320 px on the long edge, upright");

        let stored = image::load_from_memory(&bytes).unwrap().thumbnail(320, 320);
        let right = mean_difference(&thumb, &upright(&stored));
        let wrong = mean_difference(&thumb, &wrong(&stored));
        assert!(right < 6.0, "{file}: differs from the upright reference by {right:.1} per channel");
        assert!(
            wrong > 3.0 * right,
            "{file}: the wrong turn is not clearly worse ({wrong:.1} vs {right:.1})"
        );
    }
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A tiny PNG whose header declares `width` × `height` RGB pixels (the zlib data is empty).
fn png_declaring(width: u32, height: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(&mut png, b"IEND", &[]);
    png
}

/// The photo with an APP1 `Exif` segment right after the start-of-image marker whose TIFF header is noise.
fn with_garbage_exif(jpeg: &[u8]) -> Vec<u8> {
    let payload = b"Exif\0\0QQ\x00\x2a\x00\x00\x00\x08garbage";
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[tokio::test]
async fn the_exif_sample_marked_invalid_is_a_sound_jpeg_and_is_kept_without_exif_facts() {
    // invalid_image00971.jpg carries JFIF and XMP but no EXIF block at all (exiftool 12.57 agrees): the
    // image decodes, so it is kept, and nothing is made up for its EXIF fields.
    let server = TestServer::start();
    let instruction = assigned_instruction(&server, &["officer1"]).await;
    let officer = server.login("officer1").await;
    let (status, photo) =
        put_photo(&officer, instruction, &fixture("invalid_image00971.jpg"), "image/jpeg").await;
    assert_eq!(status, 201, "{photo}");
    assert_eq!((photo["width"].as_u64(), photo["height"].as_u64()), (Some(636), Some(227)));
    for field in ["captured_at", "latitude", "longitude", "orientation", "make", "model"] {
        assert!(photo[field].is_null(), "{field}: {photo}");
    }
}

#[tokio::test]
async fn broken_bombs_and_non_images_are_refused_with_reasons_and_nothing_is_stored() {
    let server = TestServer::start();
    let instruction = assigned_instruction(&server, &["officer1"]).await;
    let officer = server.login("officer1").await;
    let jolla = fixture("mobile_jolla.jpg");
    let cases: Vec<(&str, Vec<u8>, &str, u16, &str)> = vec![
        ("the damaged JPEG", fixture("corrupted.jpg"), "image/jpeg", 422, "corrupt_photo"),
        (
            "a JPEG whose EXIF block is garbage",
            with_garbage_exif(&fixture("invalid_image00971.jpg")),
            "image/jpeg",
            422,
            "malformed_exif",
        ),
        ("a JPEG cut in half", jolla[..jolla.len() / 2].to_vec(), "image/jpeg", 422, "truncated_photo"),
        (
            "a PNG declaring 100000×100000",
            png_declaring(100_000, 100_000),
            "image/png",
            422,
            "photo_dimensions_too_large",
        ),
        (
            "a PNG declaring 16000×16000",
            png_declaring(16_000, 16_000),
            "image/png",
            422,
            "decompression_bomb",
        ),
        (
            "a text file",
            b"Inspection notes: all good.\n".to_vec(),
            "application/octet-stream",
            415,
            "not_a_photo",
        ),
        (
            "a GIF",
            b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec(),
            "application/octet-stream",
            415,
            "unsupported_photo_format",
        ),
        ("a PNG sent as JPEG", png_declaring(1, 1), "image/jpeg", 415, "content_type_mismatch"),
        ("a PNG sent as text", png_declaring(2, 2), "text/plain", 415, "unsupported_photo_format"),
        ("an empty body", Vec::new(), "image/jpeg", 422, "empty_photo"),
    ];
    for (what, bytes, content_type, status, code) in cases {
        let (got, body) = put_photo(&officer, instruction, &bytes, content_type).await;
        assert_eq!((got, body["code"].as_str()), (status, Some(code)), "{what}: {body}");
        assert!(!body["message"].as_str().unwrap_or("").is_empty(), "{what}: a reason is given");
        let sha = sha256_hex(&bytes);
        assert_eq!(officer.get(&format!("/api/v1/photos/{sha}/metadata")).await.0, 404, "{what}: not stored");
        let file = server.data_dir().join("photos").join(&sha[0..2]).join(&sha[2..4]).join(&sha);
        assert!(!file.exists(), "{what}: no file at {}", file.display());
    }
    let leftovers = std::fs::read_dir(server.data_dir().join("photos/tmp")).unwrap().count();
    assert_eq!(leftovers, 0, "refused uploads leave no temporary files");
}

#[tokio::test]
async fn a_body_that_does_not_hash_to_its_name_is_refused() {
    let server = TestServer::start();
    let instruction = assigned_instruction(&server, &["officer1"]).await;
    let officer = server.login("officer1").await;
    let bytes = fixture("Canon_40D.jpg");
    let other = sha256_hex(b"some other photo");
    let (status, body) = put_named(&officer, instruction, &other, &bytes, "image/jpeg").await;
    assert_eq!((status, body["code"].as_str()), (422, Some("hash_mismatch")), "{body}");
    assert_eq!(body["details"]["actual"], sha256_hex(&bytes));
    assert_eq!(officer.get(&format!("/api/v1/photos/{other}/metadata")).await.0, 404);
    assert_eq!(officer.get(&format!("/api/v1/photos/{}/metadata", sha256_hex(&bytes))).await.0, 404);
    let (status, body) = put_named(&officer, instruction, "not-a-hash", &bytes, "image/jpeg").await;
    assert_eq!((status, body["code"].as_str()), (422, Some("invalid_sha256")), "{body}");
}

#[tokio::test]
async fn a_stored_photo_sent_again_as_another_image_type_is_refused_as_a_mismatch() {
    let server = TestServer::start();
    let instruction = assigned_instruction(&server, &["officer1"]).await;
    let officer = server.login("officer1").await;
    let bytes = fixture("Canon_40D.jpg");
    let (status, body) = put_photo(&officer, instruction, &bytes, "image/jpeg").await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = put_photo(&officer, instruction, &bytes, "image/png").await;
    assert_eq!((status, body["code"].as_str()), (415, Some("content_type_mismatch")), "{body}");
    let (status, body) = put_photo(&officer, instruction, &bytes, "application/octet-stream").await;
    assert_eq!(status, 200, "no declared type, nothing to contradict: {body}");
}

#[tokio::test]
async fn uploading_the_same_photo_again_succeeds_and_concurrent_uploads_store_one_copy() {
    let server = TestServer::start();
    let instruction = assigned_instruction(&server, &["officer1", "officer2"]).await;
    let officer1 = server.login("officer1").await;
    let officer2 = server.login("officer2").await;
    let bytes = fixture("gps_DSCN0010.jpg");
    let sha = sha256_hex(&bytes);

    let mut uploads = Vec::new();
    for i in 0..6 {
        let api = if i % 2 == 0 { officer1.clone() } else { officer2.clone() };
        let bytes = bytes.clone();
        uploads.push(tokio::spawn(async move { put_photo(&api, instruction, &bytes, "image/jpeg").await }));
    }
    let mut statuses = Vec::new();
    for u in uploads {
        let (status, body) = u.await.unwrap();
        assert_eq!(body["sha256"], sha.as_str(), "{body}");
        statuses.push(status);
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 201], "exactly one upload stored the photo");
    let (status, _) = put_photo(&officer1, instruction, &bytes, "image/jpeg").await;
    assert_eq!(status, 200, "the same bytes again succeed");

    let shard = server.data_dir().join("photos").join(&sha[0..2]).join(&sha[2..4]);
    let files: Vec<_> = std::fs::read_dir(&shard).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(files, [std::ffi::OsString::from(&sha)], "one copy on disk");
    let (_, ct, stored) = get_bytes(&officer2, &format!("/api/v1/photos/{sha}")).await;
    assert_eq!(ct, "image/jpeg");
    assert!(stored == bytes);
}

#[tokio::test]
async fn an_interrupted_upload_resumes_and_ends_byte_identical() {
    let server = TestServer::start();
    let instruction = assigned_instruction(&server, &["officer1"]).await;
    let officer = server.login("officer1").await;
    let bytes = fixture("mobile_jolla.jpg");

    let (status, started) = begin_upload(&officer, instruction, &bytes).await;
    assert_eq!(status, 201, "{started}");
    assert_eq!(started["offset"], 0);
    let id = started["upload_id"].as_str().unwrap().to_string();

    // A first chunk arrives whole.
    let (status, offset, body) = send_chunk(&officer, &id, 0, bytes[..100_000].to_vec().into()).await;
    assert_eq!((status, offset), (204, Some(100_000)), "{body}");
    // A chunk that starts elsewhere is refused with the right offset.
    let (status, _, body) = send_chunk(&officer, &id, 5, bytes[5..10].to_vec().into()).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("offset_mismatch")));
    assert_eq!(body["details"]["offset"], 100_000);
    // Finishing early is refused.
    let (status, body) = finish_upload(&officer, &id).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("upload_incomplete")), "{body}");

    // The link breaks in the middle of the next chunk: 300 kB go out, then the body fails.
    let sent = bytes[100_000..400_000].to_vec();
    let broken = futures_util::stream::iter(vec![
        Ok::<_, std::io::Error>(sent[..150_000].to_vec()),
        Ok(sent[150_000..].to_vec()),
        Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "the lorry drove out of coverage")),
    ]);
    let headers = [
        ("content-type", "application/offset+octet-stream".to_string()),
        ("upload-offset", "100000".to_string()),
    ];
    let req = reqwest::Client::new()
        .patch(format!("{}/api/v1/photo-uploads/{id}", officer.base))
        .bearer_auth(officer.token.as_deref().unwrap());
    let req = headers.iter().fold(req, |r, (k, v)| r.header(*k, v));
    assert!(req.body(reqwest::Body::wrap_stream(broken)).send().await.is_err(), "the request broke off");

    // The handheld comes back: asks where the upload stands, or simply starts it again.
    let (status, offset) = upload_offset(&officer, &id).await;
    let offset = offset.expect("Upload-Offset header");
    assert_eq!(status, 200);
    assert!((100_000..=400_000).contains(&offset), "kept what arrived, no more: {offset}");
    let (status, again) = begin_upload(&officer, instruction, &bytes).await;
    assert_eq!(
        (status, again["upload_id"].as_str(), again["offset"].as_u64()),
        (200, Some(id.as_str()), Some(offset))
    );

    let (status, photo) = upload_resumable(&officer, instruction, &bytes, 256 * 1024).await;
    assert_eq!(status, 201, "{photo}");
    assert_eq!(photo["captured_at"], "2014-09-21T16:00:56");
    let (status, _, stored) = get_bytes(&officer, &format!("/api/v1/photos/{}", sha256_hex(&bytes))).await;
    assert_eq!(status, 200);
    assert!(stored == bytes, "the stored photo is byte-identical");
    assert_eq!(upload_offset(&officer, &id).await.0, 404, "the finished upload is gone");
    let (status, done) = begin_upload(&officer, instruction, &bytes).await;
    assert_eq!((status, done["complete"].as_bool()), (200, Some(true)), "nothing left to send: {done}");
}

#[tokio::test]
async fn a_resumable_upload_of_the_wrong_bytes_is_refused_at_the_finish() {
    let server = TestServer::start();
    let instruction = assigned_instruction(&server, &["officer1"]).await;
    let officer = server.login("officer1").await;
    let bytes = fixture("Nikon_D70.jpg");
    let (_, started) = begin_upload(&officer, instruction, &bytes).await;
    let id = started["upload_id"].as_str().unwrap().to_string();
    let mut wrong = bytes.clone();
    wrong[bytes.len() / 2] ^= 0xFF;
    let (status, _, _) = send_chunk(&officer, &id, 0, wrong.into()).await;
    assert_eq!(status, 204);
    let (status, body) = finish_upload(&officer, &id).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("hash_mismatch")), "{body}");
    assert_eq!(officer.get(&format!("/api/v1/photos/{}/metadata", sha256_hex(&bytes))).await.0, 404);
    let (status, _, body) = send_chunk(&officer, &id, 0, b"more".to_vec().into()).await;
    assert_eq!(status, 404, "the refused upload is over: {body:?}");
}

#[tokio::test]
async fn oversized_photos_are_refused_before_they_are_stored() {
    let server = TestServer::start();
    let instruction = assigned_instruction(&server, &["officer1"]).await;
    let officer = server.login("officer1").await;
    let (status, body) = officer
        .post(
            &format!("/api/v1/photos/{}/uploads", "a".repeat(64)),
            json!({"instruction_id": instruction, "size": 25 * 1024 * 1024 + 1}),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (413, Some("photo_too_large")), "{body}");
    // The declared length is enough for a refusal: the server answers before reading the body. (A client
    // library would still be sending it and see a broken pipe, so this speaks HTTP by hand.)
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "PUT /api/v1/photos/{}?instruction={instruction} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {}\r\n\
         content-type: image/jpeg\r\ncontent-length: {}\r\n\r\n",
        "b".repeat(64),
        officer.token.as_deref().unwrap(),
        25 * 1024 * 1024 + 1
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tcp.read(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("photo_too_large"), "{answer}");
}

#[tokio::test]
async fn only_assigned_officers_upload_and_only_the_units_supervisors_and_admins_read() {
    let server = TestServer::start();
    let instruction = assigned_instruction(&server, &["officer1"]).await;
    // Small enough to sit in the socket buffers: refused requests are answered before their body is read.
    let bytes = fixture("Canon_40D.jpg");
    let sha = sha256_hex(&bytes);

    // officer2 works at the same site but is not assigned; the enterprise owns the goods, not the evidence.
    let officer2 = server.login("officer2").await;
    let (status, body) = put_photo(&officer2, instruction, &bytes, "image/jpeg").await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")), "{body}");
    let (status, body) = begin_upload(&officer2, instruction, &bytes).await;
    assert_eq!(status, 404, "{body}");
    let enterprise = server.login("ent1-operator").await;
    assert_eq!(put_photo(&enterprise, instruction, &bytes, "image/jpeg").await.0, 403);
    let supervisor = server.login("supervisor1").await;
    assert_eq!(
        put_photo(&supervisor, instruction, &bytes, "image/jpeg").await.0,
        403,
        "supervisors read, not upload"
    );

    let officer1 = server.login("officer1").await;
    assert_eq!(put_photo(&officer1, instruction, &bytes, "image/jpeg").await.0, 201);
    // A resumable upload belongs to whoever started it.
    let other = fixture("gps_DSCN0021.jpg");
    let (_, started) = begin_upload(&officer1, instruction, &other).await;
    let upload = started["upload_id"].as_str().unwrap();
    assert_eq!(upload_offset(&officer2, upload).await.0, 404);

    let readers: [(&str, u16); 7] = [
        ("officer1", 200),
        ("supervisor1", 200),
        ("admin", 200),
        ("officer2", 404),
        ("supervisor2", 404),
        ("reviewer1", 404),
        ("ent1-operator", 404),
    ];
    for (who, expected) in readers {
        let api = server.login(who).await;
        for path in [
            format!("/api/v1/photos/{sha}"),
            format!("/api/v1/photos/{sha}/thumbnail"),
            format!("/api/v1/photos/{sha}/metadata"),
        ] {
            let (status, _, body) = get_bytes(&api, &path).await;
            assert_eq!(
                status,
                expected,
                "{who} GET {path}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            );
        }
    }
    // Seeing a photo by its hash needs its bytes: an officer of a second instruction who knows the hash
    // cannot link it to theirs without uploading it.
    let second = assigned_instruction(&server, &["officer2"]).await;
    let (status, body) = officer2
        .post(
            &format!("/api/v1/photos/{sha}/uploads"),
            json!({"instruction_id": second, "size": bytes.len()}),
        )
        .await;
    assert_eq!((status, body["complete"].clone()), (201, Value::Bool(false)), "{body}");
    assert_eq!(officer2.get(&format!("/api/v1/photos/{sha}/metadata")).await.0, 404);
    assert_eq!(put_photo(&officer2, second, &bytes, "image/jpeg").await.0, 200, "with the bytes, it links");
    assert_eq!(officer2.get(&format!("/api/v1/photos/{sha}/metadata")).await.0, 200);
}

#[tokio::test]
async fn a_killed_server_shows_no_half_photo_and_keeps_the_bytes_of_an_unfinished_upload() {
    let mut server = TestServer::start();
    let instruction = assigned_instruction(&server, &["officer1"]).await;
    let officer = server.login("officer1").await;
    let bytes = fixture("mobile_jolla.jpg");
    let sha = sha256_hex(&bytes);
    let (_, started) = begin_upload(&officer, instruction, &bytes).await;
    let id = started["upload_id"].as_str().unwrap().to_string();
    let (status, offset, _) = send_chunk(&officer, &id, 0, bytes[..500_000].to_vec().into()).await;
    assert_eq!((status, offset), (204, Some(500_000)));

    server.kill();
    server.restart();
    let officer = server.login("officer1").await;
    assert_eq!(officer.get(&format!("/api/v1/photos/{sha}/metadata")).await.0, 404, "no half photo");
    assert_eq!(upload_offset(&officer, &id).await, (200, Some(500_000)), "acknowledged bytes survive");
    let (status, photo) = upload_resumable(&officer, instruction, &bytes, 1 << 20).await;
    assert_eq!(status, 201, "{photo}");
    let (_, _, stored) = get_bytes(&officer, &format!("/api/v1/photos/{sha}")).await;
    assert!(stored == bytes);
}
