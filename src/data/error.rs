//! Typed errors of the data layer. Every message names the file (and, for
//! bad contents, the record and byte offset) so a user can find the fault
//! without a debugger.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{0}: no such file or folder")]
    NotFound(PathBuf),

    #[error(
        "{dir}: missing CIFAR-10 files: {} (expected the folder cifar-10-batches-bin/ of the \
         binary version, or the archive cifar-10-binary.tar.gz)",
        missing.join(", ")
    )]
    MissingFiles { dir: PathBuf, missing: Vec<String> },

    /// `detail` says what was found instead of the gzip magic bytes.
    #[error("{path}: not a gzip archive ({detail})")]
    NotGzip { path: PathBuf, detail: String },

    #[error("{path}: corrupt or truncated archive: {source}")]
    Archive {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{archive}: archive lacks the CIFAR-10 members {}", missing.join(", "))]
    MissingMembers {
        archive: PathBuf,
        missing: Vec<String>,
    },

    #[error("{file}: empty file (expected records of {record_len} bytes)")]
    EmptyBatch { file: String, record_len: usize },

    #[error(
        "{file}: size {size} bytes is not a whole number of {record_len}-byte records \
         ({} stray bytes from byte offset {offset})",
        size - offset
    )]
    PartialRecord {
        file: String,
        size: u64,
        record_len: usize,
        offset: u64,
    },

    #[error(
        "{file}: record {record} (byte offset {offset}) has label {label}; labels must be 0..=9"
    )]
    BadLabel {
        file: String,
        record: usize,
        offset: u64,
        label: u8,
    },

    #[error("{file}: bad class names file: {message}")]
    ClassNames { file: String, message: String },

    #[error("downloading {url}: {message}")]
    Download { url: String, message: String },

    #[error("downloading {url}: transfer ended after {got} of {expected} bytes")]
    Truncated {
        url: String,
        got: u64,
        expected: u64,
    },

    #[error("downloading {url}: MD5 checksum {got} does not match the expected {expected}")]
    Checksum {
        url: String,
        expected: String,
        got: String,
    },

    #[error(
        "CIFAR-10 is not in {dir} and could not be downloaded ({cause}). Download {url} by hand \
         and put it in {dir} (or set $GDL_GPU_DATA to the folder holding it), or pass \
         --data PATH with PATH the archive cifar-10-binary.tar.gz or the extracted folder \
         cifar-10-batches-bin"
    )]
    Offline {
        dir: PathBuf,
        url: String,
        cause: Box<DataError>,
    },

    #[error("no cache folder: neither $GDL_GPU_DATA, $XDG_CACHE_HOME nor $HOME is set; pass --data PATH")]
    NoCacheDir,
}

pub type Result<T, E = DataError> = std::result::Result<T, E>;
