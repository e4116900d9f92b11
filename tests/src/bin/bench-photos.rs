//! Photo ingest throughput against the real server: whole uploads of the phone-sized fixture
//! (`mobile_jolla.jpg`, 3264×2448, ~0.8 MB), each made distinct by a JPEG comment segment so that every
//! upload is new work (hash, decode under limits, EXIF, thumbnail, durable write, SQLite row).
//!
//! Build in release first: `cargo build --release --workspace --bins`, then
//! `target/release/bench-photos [photos per run] [runs]`. Prints photos/s and MB/s per run and the medians,
//! for one upload at a time and for four in flight.

use std::time::Instant;

use fieldcheck_tests::{
    TestServer,
    photos::{assigned_instruction, fixture, put_photo},
};

/// The photo with a comment segment (`FF FE`, length, text) right after the start-of-image marker.
fn variant(base: &[u8], tag: &str) -> Vec<u8> {
    let text = format!("fieldcheck bench {tag}");
    let len = u16::try_from(text.len() + 2).expect("short comment");
    let mut out = Vec::with_capacity(base.len() + text.len() + 4);
    out.extend_from_slice(&base[..2]);
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&base[2..]);
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let per_run: usize = args.next().map_or(30, |a| a.parse().expect("photos per run"));
    let runs: usize = args.next().map_or(3, |a| a.parse().expect("runs"));
    let base = fixture("mobile_jolla.jpg");
    let server = TestServer::start();
    let instruction = assigned_instruction(&server, &["officer1"]).await;
    let officer = server.login("officer1").await;

    println!("photo: mobile_jolla.jpg, {} bytes; {per_run} uploads per run, {runs} runs", base.len());
    for in_flight in [1usize, 4] {
        let (mut photos_s, mut mb_s) = (Vec::new(), Vec::new());
        for run in 0..runs {
            let photos: Vec<Vec<u8>> =
                (0..per_run).map(|i| variant(&base, &format!("{in_flight}-{run}-{i}"))).collect();
            let bytes: usize = photos.iter().map(Vec::len).sum();
            let started = Instant::now();
            let mut queue = photos.into_iter();
            let mut workers = Vec::new();
            let chunks: Vec<Vec<Vec<u8>>> = {
                let mut c = vec![Vec::new(); in_flight];
                for (i, p) in queue.by_ref().enumerate() {
                    c[i % in_flight].push(p);
                }
                c
            };
            for chunk in chunks {
                let api = officer.clone();
                workers.push(tokio::spawn(async move {
                    for p in chunk {
                        let (status, body) = put_photo(&api, instruction, &p, "image/jpeg").await;
                        assert_eq!(status, 201, "{body}");
                        assert_eq!(body["captured_at"], "2014-09-21T16:00:56", "EXIF still read: {body}");
                    }
                }));
            }
            for w in workers {
                w.await.expect("upload worker");
            }
            let secs = started.elapsed().as_secs_f64();
            let (p, m) = (per_run as f64 / secs, bytes as f64 / 1e6 / secs);
            println!("in flight {in_flight}, run {}: {secs:.2} s, {p:.1} photos/s, {m:.1} MB/s", run + 1);
            photos_s.push(p);
            mb_s.push(m);
        }
        println!("in flight {in_flight}: median {:.1} photos/s, {:.1} MB/s", median(photos_s), median(mb_s));
    }
}
