//! CIFAR-10 in the official binary layout: `cifar-10-batches-bin/` holding
//! five training batches, one test batch and the class names. Read from the
//! extracted folder or straight from the `.tar.gz` (streaming, never
//! extracted to disk), validated record by record.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use super::download;
use super::error::{DataError, Result};

/// Width and height of an image in pixels.
pub const IMAGE_SIDE: usize = 32;
/// Colour channels per image: R, G, B.
pub const CHANNELS: usize = 3;
/// Bytes of pixels per image: 32×32 per channel, channels one after another.
pub const IMAGE_BYTES: usize = CHANNELS * IMAGE_SIDE * IMAGE_SIDE;
/// One label byte, then the pixels.
pub const RECORD_BYTES: usize = 1 + IMAGE_BYTES;
/// Classes, labels `0..10`.
pub const NUM_CLASSES: usize = 10;
/// Images in the official training split (five batches of 10,000).
pub const TRAIN_IMAGES: usize = 50_000;
/// Images in the official test split.
pub const TEST_IMAGES: usize = 10_000;

/// Class names indexed by label, as in `batches.meta.txt`.
pub const CLASS_NAMES: [&str; NUM_CLASSES] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// The folder inside the archive (and usually on disk).
pub const BATCHES_DIR: &str = "cifar-10-batches-bin";
/// The five training batch files, in reading order.
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// The test batch file.
pub const TEST_FILE: &str = "test_batch.bin";
/// The class names file: one name per line, in label order.
pub const META_FILE: &str = "batches.meta.txt";

/// What a load reads: everything (training), or only the test batch and
/// the class names (evaluation and prediction never touch the 150 MB of
/// training batches).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Parts {
    All,
    TestOnly,
}

/// Every file a load of `parts` needs, in reading order: training batches,
/// the test batch, the class names.
fn expected_files(parts: Parts) -> Vec<&'static str> {
    let mut v = match parts {
        Parts::All => TRAIN_FILES.to_vec(),
        Parts::TestOnly => Vec::new(),
    };
    v.push(TEST_FILE);
    v.push(META_FILE);
    v
}

/// Images and labels of one split, kept as the u8 bytes on disk: the GPU
/// normalises them, so the host never holds a 4× larger f32 copy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Split {
    /// `len · 3072` bytes; per image CHW (1,024 R, 1,024 G, 1,024 B, row-major).
    pub pixels: Vec<u8>,
    /// `len` class indices, each `0..10`.
    pub labels: Vec<u8>,
    /// Number of images.
    pub len: usize,
}

impl Split {
    /// The 3,072 CHW pixel bytes of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.pixels[i * IMAGE_BYTES..(i + 1) * IMAGE_BYTES]
    }

    /// Appends the records of one batch file after checking them all.
    /// `file` names the source in errors.
    fn append_batch(&mut self, file: &str, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Err(DataError::EmptyBatch {
                file: file.to_owned(),
                record_len: RECORD_BYTES,
            });
        }
        let records = bytes.len() / RECORD_BYTES;
        if bytes.len() % RECORD_BYTES != 0 {
            return Err(DataError::PartialRecord {
                file: file.to_owned(),
                size: bytes.len() as u64,
                record_len: RECORD_BYTES,
                offset: (records * RECORD_BYTES) as u64,
            });
        }
        // Check every label before touching `self`, so a failed batch
        // leaves the split as it was.
        for (record, chunk) in bytes.chunks_exact(RECORD_BYTES).enumerate() {
            if chunk[0] as usize >= NUM_CLASSES {
                return Err(DataError::BadLabel {
                    file: file.to_owned(),
                    record,
                    offset: (record * RECORD_BYTES) as u64,
                    label: chunk[0],
                });
            }
        }
        self.pixels.reserve(records * IMAGE_BYTES);
        self.labels.reserve(records);
        for chunk in bytes.chunks_exact(RECORD_BYTES) {
            self.labels.push(chunk[0]);
            self.pixels.extend_from_slice(&chunk[1..]);
        }
        self.len += records;
        Ok(())
    }
}

/// The whole data set, as loaded by [`Cifar10::load`] and friends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cifar10 {
    /// The 50,000 training images (empty after a test-only load).
    pub train: Split,
    /// The 10,000 test images.
    pub test: Split,
    /// The ten names of `batches.meta.txt`, checked equal to `CLASS_NAMES`.
    pub class_names: Vec<String>,
}

/// Parses `batches.meta.txt`: ten names, one per line; the official file
/// ends in blank lines, which are ignored, as are `\r` line ends. The names
/// must be CIFAR-10's in CIFAR-10's order, since labels index them.
fn parse_class_names(file: &str, bytes: &[u8]) -> Result<Vec<String>> {
    let bad = |message: String| DataError::ClassNames {
        file: file.to_owned(),
        message,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| bad(format!("not UTF-8 text ({e})")))?;
    let names: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
        .collect();
    if names.len() != NUM_CLASSES {
        return Err(bad(format!(
            "{} class names, expected {NUM_CLASSES} ({})",
            names.len(),
            CLASS_NAMES.join(", ")
        )));
    }
    for ((line, got), want) in names.iter().zip(CLASS_NAMES) {
        if *got != want {
            return Err(bad(format!("line {line} is {got:?}, expected {want:?}")));
        }
    }
    Ok(names.into_iter().map(|(_, n)| n.to_owned()).collect())
}

/// Collects the files of `parts` (from a folder or an archive) into the
/// dataset.
struct Builder {
    parts: Parts,
    train: [Option<Vec<u8>>; 5],
    test: Option<Vec<u8>>,
    meta: Option<Vec<u8>>,
}

impl Builder {
    fn new(parts: Parts) -> Builder {
        Builder {
            parts,
            train: Default::default(),
            test: None,
            meta: None,
        }
    }

    /// Where file `name` goes; None for a file this load does not read.
    fn slot(&mut self, name: &str) -> Option<&mut Option<Vec<u8>>> {
        if let Some(i) = TRAIN_FILES.iter().position(|f| *f == name) {
            return (self.parts == Parts::All).then_some(&mut self.train[i]);
        }
        match name {
            TEST_FILE => Some(&mut self.test),
            META_FILE => Some(&mut self.meta),
            _ => None,
        }
    }

    fn missing(&mut self, prefix: &str) -> Vec<String> {
        expected_files(self.parts)
            .into_iter()
            .filter(|f| self.slot(f).is_some_and(|s| s.is_none()))
            .map(|f| format!("{prefix}{f}"))
            .collect()
    }

    /// `source` turns a file name into the name used in errors.
    fn finish(self, source: impl Fn(&str) -> String) -> Result<Cifar10> {
        let mut train = Split::default();
        if self.parts == Parts::All {
            for (name, bytes) in TRAIN_FILES.iter().zip(&self.train) {
                train.append_batch(&source(name), bytes.as_deref().unwrap_or_default())?;
            }
        }
        let mut test = Split::default();
        test.append_batch(&source(TEST_FILE), self.test.as_deref().unwrap_or_default())?;
        let class_names =
            parse_class_names(&source(META_FILE), self.meta.as_deref().unwrap_or_default())?;
        Ok(Cifar10 {
            train,
            test,
            class_names,
        })
    }
}

impl Cifar10 {
    /// PATH is the folder `cifar-10-batches-bin/`, a folder containing it
    /// (or containing `cifar-10-binary.tar.gz`), or the archive itself, read
    /// directly with streaming decompression.
    pub fn load(path: &Path) -> Result<Cifar10> {
        load_parts(path, Parts::All)
    }

    /// Reads `cifar-10-binary.tar.gz`'s bytes from `reader` (the archive
    /// path of [`Cifar10::load`] without the file); `name` names it in
    /// errors. For fuzzing and for archives held in memory.
    pub fn from_archive(name: &Path, reader: impl BufRead) -> Result<Cifar10> {
        read_archive(name, reader, Parts::All)
    }

    /// The test split alone, from the same places as [`Cifar10::load`]:
    /// only `test_batch.bin` and the class names are read (a folder needs
    /// no training batches; an archive's are streamed past, not kept).
    pub fn load_test(path: &Path) -> Result<Split> {
        Ok(load_parts(path, Parts::TestOnly)?.test)
    }

    /// [`Cifar10::load_test`] from PATH when given, otherwise from where
    /// [`Cifar10::load_or_download`] looks, downloading likewise.
    pub fn load_test_or_download(path: Option<&Path>) -> Result<Split> {
        match path {
            Some(p) => Self::load_test(p),
            None => Self::load_test(&download::locate_or_download(
                &download::Source::official()?
            )?),
        }
    }

    /// Loads from PATH when given; otherwise from `$GDL_GPU_DATA`, else the
    /// cache folder (`$XDG_CACHE_HOME/gdl-gpu` or `~/.cache/gdl-gpu`),
    /// downloading the official archive there (MD5-checked) when absent.
    pub fn load_or_download(path: Option<&Path>) -> Result<Cifar10> {
        match path {
            Some(p) => Self::load(p),
            None => download::load_or_download_with(&download::Source::official()?),
        }
    }

    /// Number of classes: the length of `class_names`, 10.
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }
}

/// PATH as [`Cifar10::load`] takes it, reading the files of `parts`.
fn load_parts(path: &Path, parts: Parts) -> Result<Cifar10> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => DataError::NotFound(path.to_owned()),
        _ => io_err(path, e),
    })?;
    if !meta.is_dir() {
        return load_archive(path, parts);
    }
    let holds_batches = expected_files(parts).iter().any(|f| path.join(f).exists());
    if holds_batches {
        return load_folder(path, parts);
    }
    let inner = path.join(BATCHES_DIR);
    if inner.is_dir() {
        return load_folder(&inner, parts);
    }
    let archive = path.join(download::ARCHIVE_NAME);
    if archive.is_file() {
        return load_archive(&archive, parts);
    }
    Err(DataError::MissingFiles {
        dir: path.to_owned(),
        missing: vec![format!("{BATCHES_DIR}/"), download::ARCHIVE_NAME.to_owned()],
    })
}

fn io_err(path: &Path, source: std::io::Error) -> DataError {
    DataError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn load_folder(dir: &Path, parts: Parts) -> Result<Cifar10> {
    let mut b = Builder::new(parts);
    let missing = b.missing("");
    let absent: Vec<String> = missing
        .into_iter()
        .filter(|f| !dir.join(f).is_file())
        .collect();
    if !absent.is_empty() {
        return Err(DataError::MissingFiles {
            dir: dir.to_owned(),
            missing: absent,
        });
    }
    for name in expected_files(parts) {
        let p = dir.join(name);
        let bytes = std::fs::read(&p).map_err(|e| io_err(&p, e))?;
        *b.slot(name).expect("expected file has a slot") = Some(bytes);
    }
    b.finish(|name| dir.join(name).display().to_string())
}

/// Streams the archive once: gunzip → untar, keeping only the seven
/// members, so the 160 MiB of data are never written to disk.
fn load_archive(path: &Path, parts: Parts) -> Result<Cifar10> {
    let file = File::open(path).map_err(|e| io_err(path, e))?;
    read_archive(path, BufReader::with_capacity(1 << 20, file), parts)
}

/// The archive's bytes from `reader`; `path` names it in errors.
fn read_archive(path: &Path, mut reader: impl BufRead, parts: Parts) -> Result<Cifar10> {
    let head = reader.fill_buf().map_err(|e| io_err(path, e))?;
    if head.len() < 2 || head[..2] != [0x1f, 0x8b] {
        let magic = head
            .iter()
            .take(4)
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ");
        return Err(DataError::NotGzip {
            path: path.to_owned(),
            detail: if magic.is_empty() {
                "the file is empty".into()
            } else {
                format!("starts with bytes {magic}, expected 1f 8b")
            },
        });
    }
    let corrupt = |source: std::io::Error| DataError::Archive {
        path: path.to_owned(),
        source,
    };
    let mut archive = tar::Archive::new(flate2::bufread::MultiGzDecoder::new(reader));
    let mut b = Builder::new(parts);
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let member = entry.path().map_err(corrupt)?.into_owned();
        // Only `[./]cifar-10-batches-bin/<name>` counts; the official archive
        // also holds a readme, skipped.
        let mut parts = member.components().rev();
        let name = parts.next().and_then(|c| c.as_os_str().to_str());
        let parent = parts.next().and_then(|c| c.as_os_str().to_str());
        let rest_is_root = parts.all(|c| matches!(c, std::path::Component::CurDir));
        let slot = match (name, parent) {
            (Some(name), Some(BATCHES_DIR)) if rest_is_root => b.slot(name),
            _ => None,
        };
        if let Some(slot) = slot {
            // Capacity from the header, capped: a forged size must not
            // allocate gigabytes before a byte is read.
            let mut bytes = Vec::with_capacity(entry.size().min(64 << 20) as usize);
            entry.read_to_end(&mut bytes).map_err(corrupt)?;
            *slot = Some(bytes);
        }
    }
    let missing = b.missing(&format!("{BATCHES_DIR}/"));
    if !missing.is_empty() {
        return Err(DataError::MissingMembers {
            archive: path.to_owned(),
            missing,
        });
    }
    let shown = path.display().to_string();
    b.finish(|name| format!("{shown} (member {BATCHES_DIR}/{name})"))
}
