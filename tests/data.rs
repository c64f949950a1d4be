//! CIFAR-10 loading and downloading, on tiny data sets built here (3
//! records per batch) and, when present, on the shared copy of the real
//! archive. No adapter needed.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use gdl_gpu::data::cifar10::{
    BATCHES_DIR, IMAGE_BYTES, META_FILE, RECORD_BYTES, TEST_FILE, TRAIN_FILES,
};
use gdl_gpu::data::download::{self, Source, ARCHIVE_NAME};
use gdl_gpu::data::{Cifar10, DataError, CLASS_NAMES};
use gdl_gpu::util::Rng;

const PER_BATCH: usize = 3;

/// One batch file's bytes: records with labels `(seed + i) % 10` and
/// random pixels.
fn batch(seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut bytes = Vec::with_capacity(PER_BATCH * RECORD_BYTES);
    for i in 0..PER_BATCH {
        bytes.push(((seed as usize + i) % 10) as u8);
        bytes.extend((0..IMAGE_BYTES).map(|_| rng.below(256) as u8));
    }
    bytes
}

fn meta() -> Vec<u8> {
    // As the official file: names, then blank lines.
    format!("{}\n\n", CLASS_NAMES.join("\n")).into_bytes()
}

/// The seven files of a valid tiny data set, in reading order.
fn files() -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = TRAIN_FILES
        .iter()
        .enumerate()
        .map(|(i, f)| (f.to_string(), batch(i as u64 + 1)))
        .collect();
    v.push((TEST_FILE.to_string(), batch(100)));
    v.push((META_FILE.to_string(), meta()));
    v
}

/// Writes `files` into `root/cifar-10-batches-bin/`, returns that folder.
fn write_folder(root: &Path, files: &[(String, Vec<u8>)]) -> PathBuf {
    let dir = root.join(BATCHES_DIR);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    dir
}

/// A `.tar.gz` holding `files` under `prefix` (plus a readme, as the
/// official one).
fn archive_bytes(files: &[(String, Vec<u8>)], prefix: &str) -> Vec<u8> {
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    let mut add = |name: String, bytes: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, name, bytes).unwrap();
    };
    add(format!("{prefix}readme.html"), b"<html></html>");
    for (name, bytes) in files {
        add(format!("{prefix}{name}"), bytes);
    }
    tar.into_inner().unwrap().finish().unwrap()
}

fn write_archive(root: &Path, files: &[(String, Vec<u8>)]) -> PathBuf {
    let p = root.join(ARCHIVE_NAME);
    std::fs::write(&p, archive_bytes(files, &format!("{BATCHES_DIR}/"))).unwrap();
    p
}

fn check_tiny(d: &Cifar10) {
    assert_eq!(d.train.len, 5 * PER_BATCH);
    assert_eq!(d.test.len, PER_BATCH);
    assert_eq!(d.train.pixels.len(), 5 * PER_BATCH * IMAGE_BYTES);
    assert_eq!(d.train.labels.len(), 5 * PER_BATCH);
    assert_eq!(d.class_names, CLASS_NAMES);
    // Batches in order, records in order, label then CHW pixels verbatim.
    for (b, _) in TRAIN_FILES.iter().enumerate() {
        let raw = batch(b as u64 + 1);
        for r in 0..PER_BATCH {
            let i = b * PER_BATCH + r;
            let rec = &raw[r * RECORD_BYTES..(r + 1) * RECORD_BYTES];
            assert_eq!(d.train.labels[i], rec[0], "train label {i}");
            assert_eq!(d.train.image(i), &rec[1..], "train image {i}");
        }
    }
    let raw = batch(100);
    assert_eq!(d.test.labels, [0, 1, 2]);
    assert_eq!(d.test.image(2), &raw[2 * RECORD_BYTES + 1..]);
}

/// The error's message, which every malformed case is checked by.
fn load_err(p: &Path) -> String {
    match Cifar10::load(p) {
        Ok(_) => panic!("{} loaded but should not", p.display()),
        Err(e) => e.to_string(),
    }
}

#[track_caller]
fn assert_has(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "message {msg:?} lacks {p:?}");
    }
}

#[test]
fn loads_folder_parent_archive_and_archive_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_folder(tmp.path(), &files());
    check_tiny(&Cifar10::load(&dir).unwrap());
    check_tiny(&Cifar10::load(tmp.path()).unwrap());

    let tmp2 = tempfile::tempdir().unwrap();
    let archive = write_archive(tmp2.path(), &files());
    check_tiny(&Cifar10::load(&archive).unwrap());
    check_tiny(&Cifar10::load(tmp2.path()).unwrap());
    assert_eq!(
        Cifar10::load(&dir).unwrap(),
        Cifar10::load(&archive).unwrap()
    );
}

#[test]
fn archive_with_dot_slash_prefix_and_crlf_names() {
    let tmp = tempfile::tempdir().unwrap();
    let mut f = files();
    f.last_mut().unwrap().1 = format!("{}\r\n", CLASS_NAMES.join("\r\n")).into_bytes();
    let p = tmp.path().join("x.tar.gz");
    std::fs::write(&p, archive_bytes(&f, &format!("./{BATCHES_DIR}/"))).unwrap();
    check_tiny(&Cifar10::load(&p).unwrap());
}

#[test]
fn missing_path_and_files() {
    let tmp = tempfile::tempdir().unwrap();
    let nothing = tmp.path().join("nope");
    assert_has(&load_err(&nothing), &["nope", "no such file"]);

    // An empty folder: says what it looked for.
    assert_has(
        &load_err(tmp.path()),
        &["missing CIFAR-10 files", BATCHES_DIR, ARCHIVE_NAME],
    );

    let mut f = files();
    f.retain(|(n, _)| n != "data_batch_3.bin" && n != META_FILE);
    let dir = write_folder(tmp.path(), &f);
    let msg = load_err(&dir);
    assert_has(&msg, &["data_batch_3.bin", META_FILE]);
    assert!(!msg.contains("data_batch_1.bin"), "{msg}");
}

#[test]
fn partial_record_names_file_and_offset() {
    for (name, archive) in [("data_batch_2.bin", false), (TEST_FILE, true)] {
        let tmp = tempfile::tempdir().unwrap();
        let mut f = files();
        let entry = f.iter_mut().find(|(n, _)| n == name).unwrap();
        entry.1.truncate(2 * RECORD_BYTES + 100);
        let p = if archive {
            write_archive(tmp.path(), &f)
        } else {
            write_folder(tmp.path(), &f)
        };
        let msg = load_err(&p);
        let size = (2 * RECORD_BYTES + 100).to_string();
        let offset = format!("byte offset {}", 2 * RECORD_BYTES);
        assert_has(&msg, &[name, &size, &offset, "100 stray bytes"]);
        if archive {
            assert_has(&msg, &[ARCHIVE_NAME, "member"]);
        }
    }
}

#[test]
fn empty_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let mut f = files();
    f[4].1.clear();
    let msg = load_err(&write_folder(tmp.path(), &f));
    assert_has(&msg, &["data_batch_5.bin", "empty"]);
}

#[test]
fn bad_label_names_record_and_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let mut f = files();
    f[1].1[2 * RECORD_BYTES] = 10;
    let dir = write_folder(tmp.path(), &f);
    let msg = load_err(&dir);
    let offset = format!("byte offset {}", 2 * RECORD_BYTES);
    assert_has(&msg, &["data_batch_2.bin", "record 2", &offset, "label 10"]);

    let tmp = tempfile::tempdir().unwrap();
    let mut f = files();
    f[5].1[0] = 255;
    let msg = load_err(&write_archive(tmp.path(), &f));
    assert_has(&msg, &[TEST_FILE, "record 0", "byte offset 0", "label 255"]);
}

#[test]
fn bad_class_names() {
    let cases: [(&[u8], &[&str]); 4] = [
        (
            b"airplane\nautomobile\nbird\n",
            &["3 class names, expected 10"],
        ),
        (
            b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\ntractor\n",
            &["11 class names"],
        ),
        (
            b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\ntruck\nship\n",
            &["line 9", "\"truck\"", "expected \"ship\""],
        ),
        (b"\xff\xfe\n", &["not UTF-8"]),
    ];
    for (content, parts) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let mut f = files();
        f[6].1 = content.to_vec();
        let msg = load_err(&write_folder(tmp.path(), &f));
        assert_has(&msg, &[META_FILE, "class names"]);
        assert_has(&msg, parts);
    }
}

#[test]
fn not_gzip_and_corrupt_archives() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("plain.tar.gz");
    std::fs::write(&p, b"PK\x03\x04 not gzip").unwrap();
    assert_has(
        &load_err(&p),
        &["plain.tar.gz", "not a gzip archive", "50 4b 03 04"],
    );

    std::fs::write(&p, b"").unwrap();
    assert_has(&load_err(&p), &["not a gzip archive", "the file is empty"]);

    // Truncated mid-stream: the decoder fails, reported as such.
    let full = archive_bytes(&files(), &format!("{BATCHES_DIR}/"));
    std::fs::write(&p, &full[..full.len() / 2]).unwrap();
    assert_has(
        &load_err(&p),
        &["plain.tar.gz", "corrupt or truncated archive"],
    );

    // Valid gzip whose content is not a tar.
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&[7u8; 3000]).unwrap();
    std::fs::write(&p, gz.finish().unwrap()).unwrap();
    let msg = load_err(&p);
    assert!(
        msg.contains("corrupt or truncated archive") || msg.contains("lacks the CIFAR-10 members"),
        "{msg}"
    );
}

#[test]
fn tar_without_expected_members() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("a.tar.gz");
    // Right files, wrong folder: not accepted.
    std::fs::write(&p, archive_bytes(&files(), "other/")).unwrap();
    let msg = load_err(&p);
    assert_has(
        &msg,
        &[
            "lacks the CIFAR-10 members",
            "cifar-10-batches-bin/data_batch_1.bin",
        ],
    );

    let mut f = files();
    f.remove(5);
    std::fs::write(&p, archive_bytes(&f, &format!("{BATCHES_DIR}/"))).unwrap();
    let msg = load_err(&p);
    assert_has(&msg, &["cifar-10-batches-bin/test_batch.bin"]);
    assert!(!msg.contains("data_batch_1.bin"), "{msg}");
}

// ---- downloading, against a local HTTP server ----

/// What the test server answers for every request.
#[derive(Clone)]
struct Reply {
    status: u16,
    body: Vec<u8>,
    /// Content-Length to announce; defaults to the body's length.
    length: Option<usize>,
}

/// Serves `reply` on 127.0.0.1 to any number of requests; returns the URL.
fn serve(reply: Reply) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            // Read the request head; its content does not matter.
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match s.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let len = reply.length.unwrap_or(reply.body.len());
            let reason = if reply.status == 200 { "OK" } else { "Error" };
            let _ = write!(
                s,
                "HTTP/1.1 {} {reason}\r\nContent-Length: {len}\r\n\
                 Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                reply.status
            );
            let _ = s.write_all(&reply.body);
            let _ = s.flush();
            // Dropping the stream closes it, ending a short body early.
        }
    });
    format!("http://{addr}/{ARCHIVE_NAME}")
}

fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest;
    md5::Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Only the final archive may ever appear, and only on success.
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn download_success_then_cached() {
    let body = archive_bytes(&files(), &format!("{BATCHES_DIR}/"));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let src = Source {
        dir: dir.clone(),
        url: serve(Reply {
            status: 200,
            body: body.clone(),
            length: None,
        }),
        md5: md5_hex(&body),
        progress: false,
    };
    check_tiny(&download::load_or_download_with(&src).unwrap());
    assert_eq!(leftovers(&dir), [ARCHIVE_NAME]);
    assert_eq!(std::fs::read(dir.join(ARCHIVE_NAME)).unwrap(), body);

    // Second time it is read from the cache: a dead URL does not matter.
    let cached = Source {
        url: "http://127.0.0.1:1/never".into(),
        ..src
    };
    check_tiny(&download::load_or_download_with(&cached).unwrap());
}

#[test]
fn download_wrong_checksum_leaves_nothing() {
    let body = archive_bytes(&files(), &format!("{BATCHES_DIR}/"));
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join(ARCHIVE_NAME);
    let url = serve(Reply {
        status: 200,
        body,
        length: None,
    });
    let wrong = "00000000000000000000000000000000";
    let msg = download::fetch(&url, wrong, &dest, false)
        .unwrap_err()
        .to_string();
    assert_has(&msg, &["MD5", wrong, &url]);
    assert!(
        leftovers(tmp.path()).is_empty(),
        "{:?}",
        leftovers(tmp.path())
    );
}

#[test]
fn download_truncated_leaves_nothing() {
    let body = archive_bytes(&files(), &format!("{BATCHES_DIR}/"));
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join(ARCHIVE_NAME);
    let n = body.len();
    let url = serve(Reply {
        status: 200,
        body: body.clone(),
        length: Some(n + 1000),
    });
    let err = download::fetch(&url, &md5_hex(&body), &dest, false).unwrap_err();
    match &err {
        DataError::Truncated { got, expected, .. } => {
            assert!(*got <= n as u64, "{err}");
            assert_eq!(*expected, (n + 1000) as u64);
        }
        other => panic!("expected a truncation error, got {other}"),
    }
    assert!(
        leftovers(tmp.path()).is_empty(),
        "{:?}",
        leftovers(tmp.path())
    );
}

#[test]
fn download_server_error_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join(ARCHIVE_NAME);
    let url = serve(Reply {
        status: 500,
        body: b"internal error".to_vec(),
        length: None,
    });
    let msg = download::fetch(&url, download::OFFICIAL_MD5, &dest, false)
        .unwrap_err()
        .to_string();
    assert_has(&msg, &[&url, "500"]);
    assert!(
        leftovers(tmp.path()).is_empty(),
        "{:?}",
        leftovers(tmp.path())
    );
}

#[test]
fn offline_error_says_where_to_put_the_file() {
    // A port nothing listens on: bind, note it, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let src = Source {
        dir: dir.clone(),
        url: format!("http://127.0.0.1:{port}/{ARCHIVE_NAME}"),
        md5: download::OFFICIAL_MD5.into(),
        progress: false,
    };
    let err = download::load_or_download_with(&src).unwrap_err();
    assert!(matches!(err, DataError::Offline { .. }), "{err}");
    let msg = err.to_string();
    assert_has(
        &msg,
        &[
            &dir.display().to_string(),
            &src.url,
            "--data",
            "GDL_GPU_DATA",
        ],
    );
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
}

#[test]
fn explicit_path_never_downloads() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nowhere");
    let msg = Cifar10::load_or_download(Some(&missing))
        .unwrap_err()
        .to_string();
    assert_has(&msg, &["nowhere", "no such file"]);
    assert!(!missing.exists());
}

/// The shared copy of CIFAR-10 (see its README): checked when present,
/// never written beside.
#[test]
fn real_archive_when_present() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("shared/data/cifar-10-binary.tar.gz");
    if !p.is_file() {
        eprintln!("skipped: {} is absent", p.display());
        return;
    }
    let t = std::time::Instant::now();
    let d = Cifar10::load(&p).unwrap();
    eprintln!("loaded {} in {:.2?}", p.display(), t.elapsed());
    assert_eq!(d.train.len, 50_000);
    assert_eq!(d.test.len, 10_000);
    assert_eq!(d.train.pixels.len(), 50_000 * IMAGE_BYTES);
    assert_eq!(d.test.pixels.len(), 10_000 * IMAGE_BYTES);
    assert_eq!(d.class_names, CLASS_NAMES);
    assert_eq!(&d.train.labels[..5], [6, 9, 9, 4, 1]);
    for (j, &l) in d.test.labels.iter().enumerate() {
        assert_eq!(l as usize, j % 10, "test record {j}");
    }
    // Every class appears 5,000 times in training.
    let mut counts = [0usize; 10];
    for &l in &d.train.labels {
        counts[l as usize] += 1;
    }
    assert_eq!(counts, [5000; 10]);
}

/// The test split alone, from a folder without training batches and from
/// an archive (whose training members are streamed past), equals the
/// full load's; missing test files are still named.
#[test]
fn test_split_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let all = files();
    let full = Cifar10::load(&write_folder(&tmp.path().join("full"), &all)).unwrap();
    let only: Vec<_> = all
        .iter()
        .filter(|(n, _)| !TRAIN_FILES.contains(&n.as_str()))
        .cloned()
        .collect();
    let folder = write_folder(&tmp.path().join("only"), &only);
    assert_eq!(Cifar10::load_test(&folder).unwrap(), full.test);
    // Its parent and the archive too.
    assert_eq!(
        Cifar10::load_test(folder.parent().unwrap()).unwrap(),
        full.test
    );
    let archive = write_archive(tmp.path(), &all);
    assert_eq!(Cifar10::load_test(&archive).unwrap(), full.test);
    assert_eq!(full.test.len, PER_BATCH);
    // The full load of the folder without training batches names them.
    assert_has(&load_err(&folder), &["data_batch_1.bin"]);
    std::fs::remove_file(folder.join(TEST_FILE)).unwrap();
    let e = Cifar10::load_test(&folder).unwrap_err().to_string();
    assert_has(&e, &[TEST_FILE]);
    assert!(!e.contains("data_batch"), "{e}");
}
