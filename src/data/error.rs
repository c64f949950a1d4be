//! Typed errors of the data layer. Every message names the file (and, for
//! bad contents, the record and byte offset) so a user can find the fault
//! without a debugger.

use std::path::PathBuf;

use thiserror::Error;

/// Why CIFAR-10 could not be loaded or downloaded.
#[derive(Debug, Error)]
pub enum DataError {
    /// Reading a file or creating the data folder failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder, as shown to the user (it may name an archive member).
        path: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The path given to a load does not exist.
    #[error("{0}: no such file or folder")]
    NotFound(PathBuf),

    #[error(
        "{dir}: missing CIFAR-10 files: {} (expected the folder cifar-10-batches-bin/ of the \
         binary version, or the archive cifar-10-binary.tar.gz)",
        missing.join(", ")
    )]
    /// A folder holds neither the batch files, nor `cifar-10-batches-bin/`,
    /// nor the archive; or it holds only some of the batch files.
    MissingFiles {
        /// The folder searched.
        dir: PathBuf,
        /// File names (or `cifar-10-batches-bin/`) that are absent.
        missing: Vec<String>,
    },

    /// A file given as the archive does not start with the gzip magic bytes.
    #[error("{path}: not a gzip archive ({detail})")]
    NotGzip {
        /// The file.
        path: PathBuf,
        /// What was found instead: the first bytes in hex, or that it is empty.
        detail: String,
    },

    /// The gzip stream or the tar inside it is damaged or cut short.
    #[error("{path}: corrupt or truncated archive: {source}")]
    Archive {
        /// The archive.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: std::io::Error,
    },

    #[error("{archive}: archive lacks the CIFAR-10 members {}", missing.join(", "))]
    /// The archive was read to the end without some needed member.
    MissingMembers {
        /// The archive.
        archive: PathBuf,
        /// Member paths, `cifar-10-batches-bin/<name>`, that are absent.
        missing: Vec<String>,
    },

    #[error("{file}: empty file (expected records of {record_len} bytes)")]
    /// A batch file has no bytes.
    EmptyBatch {
        /// The file (or archive member), as shown to the user.
        file: String,
        /// Bytes per record, label included: 3,073.
        record_len: usize,
    },

    #[error(
        "{file}: size {size} bytes is not a whole number of {record_len}-byte records \
         ({} stray bytes from byte offset {offset})",
        size - offset
    )]
    /// A batch file's size is not a multiple of the record size.
    PartialRecord {
        /// The file (or archive member), as shown to the user.
        file: String,
        /// Its size in bytes.
        size: u64,
        /// Bytes per record, label included: 3,073.
        record_len: usize,
        /// Byte offset where the incomplete last record starts.
        offset: u64,
    },

    #[error(
        "{file}: record {record} (byte offset {offset}) has label {label}; labels must be 0..=9"
    )]
    /// A record's label byte is not a class index (10 or more).
    BadLabel {
        /// The file (or archive member), as shown to the user.
        file: String,
        /// Index of the record in the file, from 0.
        record: usize,
        /// Byte offset of the record (its label byte).
        offset: u64,
        /// The byte found.
        label: u8,
    },

    #[error("{file}: bad class names file: {message}")]
    /// `batches.meta.txt` is not UTF-8, or its names are not CIFAR-10's
    /// ten in CIFAR-10's order.
    ClassNames {
        /// The file (or archive member), as shown to the user.
        file: String,
        /// What is wrong with it.
        message: String,
    },

    #[error("downloading {url}: {message}")]
    /// The HTTP request failed, or the server answered with an error status.
    Download {
        /// The URL requested.
        url: String,
        /// The client's or server's error.
        message: String,
    },

    #[error("downloading {url}: transfer ended after {got} of {expected} bytes")]
    /// The body ended before the length the server announced.
    Truncated {
        /// The URL requested.
        url: String,
        /// Bytes received.
        got: u64,
        /// Bytes announced (`Content-Length`).
        expected: u64,
    },

    #[error("downloading {url}: MD5 checksum {got} does not match the expected {expected}")]
    /// The downloaded file's MD5 differs from the expected one; the file is
    /// deleted.
    Checksum {
        /// The URL requested.
        url: String,
        /// Lower-case hex MD5 expected.
        expected: String,
        /// Lower-case hex MD5 of what arrived.
        got: String,
    },

    #[error(
        "CIFAR-10 is not in {dir} and could not be downloaded ({cause}). Download {url} by hand \
         and put it in {dir} (or set $GDL_GPU_DATA to the folder holding it), or pass \
         --data PATH with PATH the archive cifar-10-binary.tar.gz or the extracted folder \
         cifar-10-batches-bin"
    )]
    /// The data was not on disk and fetching it failed; the message says how
    /// to supply it by hand.
    Offline {
        /// The data folder the archive was to be written to.
        dir: PathBuf,
        /// The URL tried.
        url: String,
        /// Why the download failed.
        cause: Box<DataError>,
    },

    #[error("no cache folder: neither $GDL_GPU_DATA, $XDG_CACHE_HOME nor $HOME is set; pass --data PATH")]
    /// No path was given and no environment variable names a data folder.
    NoCacheDir,
}

/// A result whose error defaults to [`DataError`].
pub type Result<T, E = DataError> = std::result::Result<T, E>;
