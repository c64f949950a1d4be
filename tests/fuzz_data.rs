//! Fuzzing the CIFAR-10 reader: arbitrary bytes and damaged copies of a
//! valid tiny data set (archive and folder) must load or fail with a
//! `DataError`, never panic; what loads must be self-consistent. The
//! runs are seeded, so a failure reproduces; proptest shrinks it to a
//! small input first. Each property prints how many inputs it ran.

use std::io::Write;
use std::path::Path;

use flate2::write::GzEncoder;
use gdl_gpu::data::cifar10::{
    BATCHES_DIR, IMAGE_BYTES, META_FILE, RECORD_BYTES, TEST_FILE, TRAIN_FILES,
};
use gdl_gpu::data::{Cifar10, DataError, CLASS_NAMES};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Records per batch file: one keeps the archive small (≈ 30 KB of tar),
/// so thousands of cases run in seconds.
const PER_BATCH: usize = 1;

/// The seven files of a valid tiny data set, in reading order.
fn files() -> Vec<(String, Vec<u8>)> {
    let batch = |seed: usize| -> Vec<u8> {
        let mut v = Vec::with_capacity(PER_BATCH * RECORD_BYTES);
        for r in 0..PER_BATCH {
            v.push(((seed + r) % 10) as u8);
            v.extend((0..IMAGE_BYTES).map(|i| ((i * 7 + seed) % 256) as u8));
        }
        v
    };
    let mut v: Vec<(String, Vec<u8>)> = TRAIN_FILES
        .iter()
        .enumerate()
        .map(|(i, f)| (f.to_string(), batch(i)))
        .collect();
    v.push((TEST_FILE.to_string(), batch(7)));
    v.push((
        META_FILE.to_string(),
        format!("{}\n\n", CLASS_NAMES.join("\n")).into_bytes(),
    ));
    v
}

/// The uncompressed tar of `files()` under `cifar-10-batches-bin/`.
fn tar_bytes() -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, bytes) in files() {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, format!("{BATCHES_DIR}/{name}"), &bytes[..])
            .unwrap();
    }
    tar.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Outcomes of one property, printed at its end.
#[derive(Default)]
struct Tally {
    ok: usize,
    err: usize,
}

impl Tally {
    /// Checks one load's result: a loaded set must be consistent, an error
    /// must render a message (Display walks every field).
    fn record(&mut self, r: Result<Cifar10, DataError>) {
        match r {
            Ok(d) => {
                for s in [&d.train, &d.test] {
                    assert_eq!(s.labels.len(), s.len);
                    assert_eq!(s.pixels.len(), s.len * IMAGE_BYTES);
                    assert!(s.labels.iter().all(|&l| l < 10));
                }
                assert_eq!(d.class_names, CLASS_NAMES);
                self.ok += 1;
            }
            Err(e) => {
                assert!(!e.to_string().is_empty());
                self.err += 1;
            }
        }
    }

    fn report(&self, what: &str) {
        println!(
            "fuzz_data: {what}: {} inputs ({} loaded, {} typed errors)",
            self.ok + self.err,
            self.ok,
            self.err
        );
    }
}

/// Runs `test` on `cases` inputs from `strategy` with a fixed seed.
fn fuzz<S: Strategy>(cases: u32, strategy: S, test: impl FnMut(S::Value)) {
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    // The runner wants `Fn`; a panicking case releases the borrow as it unwinds.
    let test = std::cell::RefCell::new(test);
    if let Err(e) = runner.run(&strategy, |v| {
        (test.borrow_mut())(v);
        Ok(())
    }) {
        panic!("{e}");
    }
}

fn load_file(path: &Path, bytes: &[u8]) -> Result<Cifar10, DataError> {
    std::fs::write(path, bytes).unwrap();
    Cifar10::load(path)
}

/// One edit of a byte string; positions are taken modulo its length.
#[derive(Clone, Debug)]
enum Edit {
    Truncate(usize),
    Flip(usize, u8),
    Set(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> + Clone {
    prop_oneof![
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), 1..=255u8).prop_map(|(p, m)| Edit::Flip(p, m)),
        (any::<usize>(), any::<u8>()).prop_map(|(p, v)| Edit::Set(p, v)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..64))
            .prop_map(|(p, v)| Edit::Insert(p, v)),
        (any::<usize>(), 1..4096usize).prop_map(|(p, n)| Edit::Delete(p, n)),
    ]
}

fn apply(bytes: &mut Vec<u8>, edits: &[Edit]) {
    for e in edits {
        let at = |p: usize, len: usize| if len == 0 { 0 } else { p % len };
        let len = bytes.len();
        match e {
            Edit::Truncate(p) => bytes.truncate(at(*p, len + 1)),
            Edit::Flip(p, m) if len > 0 => bytes[at(*p, len)] ^= m,
            Edit::Set(p, v) if len > 0 => bytes[at(*p, len)] = *v,
            Edit::Insert(p, v) => {
                let i = at(*p, len + 1);
                bytes.splice(i..i, v.iter().copied());
            }
            Edit::Delete(p, n) if len > 0 => {
                let i = at(*p, len);
                bytes.drain(i..(i + n).min(len));
            }
            _ => {}
        }
    }
}

#[test]
fn arbitrary_bytes_as_an_archive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.tar.gz");
    let mut t = Tally::default();
    let bytes = prop::collection::vec(any::<u8>(), 0..2048);
    fuzz(300, bytes.clone(), |b| t.record(load_file(&path, &b)));
    // Past the magic-bytes check: gzip headers over garbage.
    fuzz(
        300,
        bytes.clone().prop_map(|b| [&[0x1f, 0x8b][..], &b].concat()),
        |b| t.record(load_file(&path, &b)),
    );
    // Valid gzip of garbage: the tar reader sees it all.
    fuzz(300, bytes.prop_map(|b| gzip(&b)), |b| {
        t.record(load_file(&path, &b))
    });
    t.report("arbitrary bytes as archive");
    assert_eq!(t.ok, 0, "garbage loaded as CIFAR-10");
}

#[test]
fn damaged_archives() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cifar-10-binary.tar.gz");
    let tar = tar_bytes();
    let gz = gzip(&tar);
    let mut t = Tally::default();
    t.record(load_file(&path, &gz));
    assert_eq!(t.ok, 1, "the undamaged archive must load");
    let edits = prop::collection::vec(edit(), 1..6);
    // Damage to the compressed stream (the gzip checksums see most of it).
    fuzz(500, edits.clone(), |e| {
        let mut b = gz.clone();
        apply(&mut b, &e);
        t.record(load_file(&path, &b));
    });
    // Damage to the tar inside an intact gzip stream: headers, sizes,
    // member contents, truncations at any point.
    fuzz(700, edits, |e| {
        let mut b = tar.clone();
        apply(&mut b, &e);
        t.record(load_file(&path, &gzip(&b)));
    });
    t.report("damaged archives");
    assert!(t.err > 500, "edits should mostly break the archive");
}

/// Offsets of the 512-byte headers in `tar_bytes()`.
fn header_offsets(tar: &[u8]) -> Vec<usize> {
    let mut v = Vec::new();
    let mut at = 0;
    while at + 512 <= tar.len() && tar[at] != 0 {
        v.push(at);
        let size_field = std::str::from_utf8(&tar[at + 124..at + 136]).unwrap();
        let size =
            usize::from_str_radix(size_field.trim_matches(|c| c == '\0' || c == ' '), 8).unwrap();
        at += 512 + size.div_ceil(512) * 512;
    }
    v
}

#[test]
fn forged_tar_headers_with_valid_checksums() {
    // The tar checksum rejects random header damage, so forge headers that
    // pass it: any size (up to u64::MAX in 11 octal digits' worth and
    // beyond), any type flag, any name byte.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cifar-10-binary.tar.gz");
    let tar = tar_bytes();
    let headers = header_offsets(&tar);
    assert_eq!(headers.len(), 7);
    let mut t = Tally::default();
    let forge = (
        0..headers.len(),
        prop_oneof![
            any::<u64>().prop_map(|s| s & 0o777_7777_7777),
            0u64..(2 * RECORD_BYTES as u64),
            any::<u64>(),
        ],
        // Type flag and a name byte: often left alone, so the size forgery
        // reaches the reader rather than the member being skipped.
        prop::option::of(any::<u8>()),
        prop::option::of((0..100usize, any::<u8>())),
    );
    fuzz(600, forge, |(member, size, kind, name)| {
        let mut b = tar.clone();
        let h = headers[member];
        let mut header = tar::Header::new_gnu();
        header.as_mut_bytes().copy_from_slice(&b[h..h + 512]);
        header.set_size(size);
        if let Some(kind) = kind {
            header.as_mut_bytes()[156] = kind;
        }
        if let Some((at, byte)) = name {
            header.as_mut_bytes()[at] = byte;
        }
        header.set_cksum();
        b[h..h + 512].copy_from_slice(header.as_bytes());
        t.record(load_file(&path, &gzip(&b)));
    });
    t.report("forged tar headers");
}

/// What happens to one of the seven files.
#[derive(Clone, Debug)]
enum FileFate {
    Missing,
    Edited(Vec<Edit>),
    /// A whole number of records, each label arbitrary.
    Records(Vec<u8>),
}

fn fate() -> impl Strategy<Value = FileFate> + Clone {
    // Labels mostly valid, so whole-record files often load.
    let label = prop_oneof![3 => 0..10u8, 1 => any::<u8>()];
    prop_oneof![
        1 => Just(FileFate::Missing),
        3 => prop::collection::vec(edit(), 1..4).prop_map(FileFate::Edited),
        2 => prop::collection::vec(label, 0..4).prop_map(FileFate::Records),
    ]
}

#[test]
fn damaged_folders() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join(BATCHES_DIR);
    let valid = files();
    let mut t = Tally::default();
    // One to three files damaged (one fault is the usual case), the rest intact.
    let damage = prop::collection::vec((0..valid.len(), fate()), 1..=3);
    fuzz(800, damage, |damage| {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in &valid {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        for (file, fate) in &damage {
            let (name, bytes) = &valid[*file];
            let p = dir.join(name);
            match fate {
                FileFate::Missing => {
                    let _ = std::fs::remove_file(&p);
                }
                FileFate::Edited(e) => {
                    let mut b = bytes.clone();
                    apply(&mut b, e);
                    std::fs::write(&p, b).unwrap();
                }
                FileFate::Records(labels) => {
                    // Whole records even in place of the class names.
                    let pixels = &valid[0].1[1..RECORD_BYTES];
                    let b: Vec<u8> = labels
                        .iter()
                        .flat_map(|&l| std::iter::once(l).chain(pixels.iter().copied()))
                        .collect();
                    std::fs::write(&p, b).unwrap();
                }
            }
        }
        // Through both entry points: the folder and its parent.
        t.record(Cifar10::load(&dir));
        t.record(Cifar10::load(root.path()));
    });
    t.report("damaged folders");
    assert!(t.ok > 100 && t.err > 500, "both outcomes exercised");
}
