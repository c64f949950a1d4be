//! Finding CIFAR-10 when no path is given: the data folder
//! (`$GDL_GPU_DATA`, else the user's cache), and fetching the official
//! archive into it when absent. A download is written under a temporary
//! name, MD5-checked, and only then renamed, so the final name never holds
//! a partial or corrupt file.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use md5::{Digest, Md5};

use super::cifar10::{Cifar10, BATCHES_DIR};
use super::error::{DataError, Result};

/// File name of the binary archive, downloaded or looked for in a folder.
pub const ARCHIVE_NAME: &str = "cifar-10-binary.tar.gz";
/// Where the official archive is fetched from.
pub const OFFICIAL_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
/// Lower-case hex MD5 of the official archive.
pub const OFFICIAL_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";

/// Where the data lives and where to fetch it from when it does not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// A folder, or (from `$GDL_GPU_DATA`) possibly the archive itself.
    pub dir: PathBuf,
    /// Where to download the archive from when `dir` lacks the data.
    pub url: String,
    /// Lower-case hex MD5 of the archive.
    pub md5: String,
    /// Draw a progress bar on stderr (indicatif hides it off a terminal).
    pub progress: bool,
}

impl Source {
    /// The default folder and the official URL and checksum.
    pub fn official() -> Result<Source> {
        Ok(Source {
            dir: data_dir()?,
            url: OFFICIAL_URL.to_owned(),
            md5: OFFICIAL_MD5.to_owned(),
            progress: true,
        })
    }
}

/// `$GDL_GPU_DATA`, else `$XDG_CACHE_HOME/gdl-gpu`, else `~/.cache/gdl-gpu`.
pub fn data_dir() -> Result<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(d) = var("GDL_GPU_DATA") {
        return Ok(PathBuf::from(d));
    }
    crate::util::user_cache_dir().ok_or(DataError::NoCacheDir)
}

/// Loads from `source.dir` when the data is there (extracted folder or
/// archive), otherwise downloads the archive into it first. A failed
/// download becomes `DataError::Offline`, which says how to supply the file.
pub fn load_or_download_with(source: &Source) -> Result<Cifar10> {
    Cifar10::load(&locate_or_download(source)?)
}

/// The path to load from `source.dir` (the folder, or the archive
/// `$GDL_GPU_DATA` names), downloading the archive into it first when the
/// data is not there; what to read of it is the caller's choice.
pub fn locate_or_download(source: &Source) -> Result<PathBuf> {
    let dir = &source.dir;
    // `$GDL_GPU_DATA` may name the archive itself.
    if dir.is_file() {
        return Ok(dir.clone());
    }
    let archive = dir.join(ARCHIVE_NAME);
    if dir.join(BATCHES_DIR).is_dir() || archive.is_file() {
        return Ok(dir.clone());
    }
    let offline = |cause: DataError| DataError::Offline {
        dir: dir.clone(),
        url: source.url.clone(),
        cause: Box::new(cause),
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| {
            offline(DataError::Io {
                path: dir.display().to_string(),
                source: e,
            })
        })
        .and_then(|()| {
            fetch(&source.url, &source.md5, &archive, source.progress).map_err(offline)
        })?;
    Ok(archive)
}

/// Removes the temporary file on every exit but a successful rename.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Downloads `url` to `dest`, checking the body's length against
/// Content-Length and its MD5 against `md5_hex`. The body goes to
/// `dest.part-<pid>` first; `dest` appears only, complete and verified,
/// by rename (atomic on one file system).
pub fn fetch(url: &str, md5_hex: &str, dest: &Path, progress: bool) -> Result<()> {
    let dl = |message: String| DataError::Download {
        url: url.to_owned(),
        message,
    };
    let file_name = dest
        .file_name()
        .ok_or_else(|| dl(format!("destination {} has no file name", dest.display())))?;
    let mut part_name = file_name.to_owned();
    part_name.push(format!(".part-{}", std::process::id()));
    let mut temp = TempFile {
        path: dest.with_file_name(part_name),
        keep: false,
    };
    let io = |p: &Path, e: std::io::Error| DataError::Io {
        path: p.display().to_string(),
        source: e,
    };

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        // A stalled transfer fails instead of hanging forever.
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut response = agent.get(url).call().map_err(|e| dl(e.to_string()))?;
    let expected = response.body().content_length();

    let bar = if progress {
        eprintln!("downloading {url}\n         to {}", dest.display());
        let bar = indicatif::ProgressBar::new(expected.unwrap_or(0));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };

    let file = File::create(&temp.path).map_err(|e| io(&temp.path, e))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut body = response.body_mut().as_reader();
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut got: u64 = 0;
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                bar.abandon();
                // ureq reports a body shorter than Content-Length as an
                // error; say so plainly.
                return Err(match expected {
                    Some(expected) if got < expected => DataError::Truncated {
                        url: url.to_owned(),
                        got,
                        expected,
                    },
                    _ => dl(format!("after {got} bytes: {e}")),
                });
            }
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(|e| io(&temp.path, e))?;
        got += n as u64;
        bar.set_position(got);
    }
    bar.finish_and_clear();
    if let Some(expected) = expected {
        if got != expected {
            return Err(DataError::Truncated {
                url: url.to_owned(),
                got,
                expected,
            });
        }
    }
    let file = out
        .into_inner()
        .map_err(|e| io(&temp.path, e.into_error()))?;
    file.sync_all().map_err(|e| io(&temp.path, e))?;
    drop(file);

    let digest: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if !digest.eq_ignore_ascii_case(md5_hex) {
        return Err(DataError::Checksum {
            url: url.to_owned(),
            expected: md5_hex.to_ascii_lowercase(),
            got: digest,
        });
    }
    std::fs::rename(&temp.path, dest).map_err(|e| io(dest, e))?;
    temp.keep = true;
    Ok(())
}
