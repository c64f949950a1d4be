//! The tune cache: one JSON file per adapter under the cache folder, named
//! after the adapter and a hash of its identity, holding the winner of each
//! tuned case by key (`gemm 32x200x3072 NN bias`; other kernel families
//! add keys of their own). The file carries the full identity and the
//! gdl-gpu version that wrote it: a file that is not JSON, or that was
//! written for another adapter or version, is ignored with one warning and
//! rewritten by the next tuning. It is written whole under a temporary name,
//! then renamed, so a reader never sees half a file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use crate::gpu::Gpu;

/// Overrides the folder of tune files (tests point it at a temporary one).
pub const CACHE_ENV: &str = "GDL_GPU_TUNE_CACHE";
/// The layout of the file; a file of another format is foreign.
const FORMAT: u32 = 1;

/// What a tuned choice depends on besides the case: the adapter, its
/// driver, the subgroup feature (`GDL_GPU_DISABLE=subgroups` changes the
/// candidates) and the kernels' version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The adapter's name.
    pub name: String,
    /// PCI vendor id (or the backend's equivalent).
    pub vendor: u32,
    /// PCI device id.
    pub device: u32,
    /// The driver's name.
    pub driver: String,
    /// The driver's version string.
    pub driver_info: String,
    /// Vulkan, Metal, Dx12, Gl.
    pub backend: String,
    /// Subgroup operations enabled, and their smallest and largest size.
    pub subgroups: Option<[u32; 2]>,
    /// The gdl-gpu version (`CARGO_PKG_VERSION`): kernels change between
    /// versions.
    pub version: String,
}

impl Identity {
    /// The identity of the open device.
    pub fn of(gpu: &Gpu) -> Self {
        let i = &gpu.info;
        Identity {
            name: i.name.clone(),
            vendor: i.vendor,
            device: i.device,
            driver: i.driver.clone(),
            driver_info: i.driver_info.clone(),
            backend: format!("{:?}", i.backend),
            subgroups: gpu
                .caps
                .subgroups
                .then_some([i.subgroup_min_size, i.subgroup_max_size]),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }

    /// `<adapter name>-<12 hex digits>.json`: the hash covers everything
    /// but the version, so a new version rewrites its adapter's file
    /// rather than leaving the old one behind.
    fn file_name(&self) -> String {
        let mut h = Md5::new();
        for part in [
            self.name.as_str(),
            &self.vendor.to_string(),
            &self.device.to_string(),
            &self.driver,
            &self.driver_info,
            &self.backend,
            &format!("{:?}", self.subgroups),
        ] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        let hex: String = h.finalize()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let slug: String = self
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        let slug: Vec<&str> = slug.split('-').filter(|s| !s.is_empty()).collect();
        let slug: String = slug.join("-").chars().take(40).collect();
        format!("{slug}-{hex}.json")
    }
}

/// One tuned case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The winner's label (`GemmConfig::label`).
    pub winner: String,
    /// Its time, in microseconds.
    pub winner_us: f64,
    /// The built-in choice's label.
    pub builtin: String,
    /// Its time, in microseconds.
    pub builtin_us: f64,
    /// Candidates tried.
    pub candidates: usize,
    /// How the times were taken ("timestamps", "wall clock").
    pub clock: String,
}

#[derive(Serialize, Deserialize)]
struct File {
    format: u32,
    adapter: Identity,
    entries: BTreeMap<String, serde_json::Value>,
}

/// The cache folder: `$GDL_GPU_TUNE_CACHE`, else `tune` in the user's
/// cache folder (`$XDG_CACHE_HOME/gdl-gpu`, else `~/.cache/gdl-gpu`).
pub fn cache_dir() -> Option<PathBuf> {
    match std::env::var_os(CACHE_ENV).filter(|v| !v.is_empty()) {
        Some(d) => Some(PathBuf::from(d)),
        None => crate::util::user_cache_dir().map(|d| d.join("tune")),
    }
}

/// The entries of one adapter's tune file, as read and as they will be
/// written.
#[derive(Debug)]
pub struct TuneCache {
    /// The file (None without a cache folder: tuning is then not kept).
    pub path: Option<PathBuf>,
    identity: Identity,
    entries: BTreeMap<String, Entry>,
}

impl TuneCache {
    /// The file of `gpu`'s adapter in `dir` (normally [`cache_dir`]), read
    /// if present.
    pub fn open(gpu: &Gpu, dir: Option<&Path>) -> Self {
        let identity = Identity::of(gpu);
        let path = dir.map(|d| d.join(identity.file_name()));
        let entries = match &path {
            Some(p) => read(p, &identity),
            None => {
                eprintln!(
                    "warning: no cache folder (neither {CACHE_ENV}, XDG_CACHE_HOME nor HOME is set): GEMM tuning will not be kept"
                );
                BTreeMap::new()
            }
        };
        TuneCache {
            path,
            identity,
            entries,
        }
    }

    /// The entry for `key`, if any.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// Drops the entry for `key` (one that turned out unusable here) with
    /// one warning line: it is rewritten when the case is tuned again.
    pub fn reject(&mut self, key: &str, why: &str) {
        if self.entries.remove(key).is_some() {
            eprintln!(
                "warning: ignoring the tune cache's entry {key:?} in {}: {why}; it will be tuned again",
                self.shown()
            );
        }
    }

    /// Sets the entry for `key`.
    pub fn insert(&mut self, key: String, entry: Entry) {
        self.entries.insert(key, entry);
    }

    fn shown(&self) -> String {
        self.path
            .as_deref()
            .map_or_else(|| "(no file)".into(), |p| p.display().to_string())
    }

    /// Writes the file (temporary name, then rename). Failing to is a
    /// warning, not an error: the run goes on with what it tuned.
    pub fn save(&self) {
        let Some(path) = &self.path else { return };
        if let Err(e) = write(path, &self.identity, &self.entries) {
            eprintln!(
                "warning: cannot write the tune cache {}: {e}; the next run will tune again",
                path.display()
            );
        }
    }
}

/// The usable entries of `path`; anything else is warned about once.
fn read(path: &Path, identity: &Identity) -> BTreeMap<String, Entry> {
    let warn = |why: String| {
        eprintln!(
            "warning: ignoring the tune cache {}: {why}; it will be rewritten",
            path.display()
        );
        BTreeMap::new()
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return BTreeMap::new(),
        Err(e) => return warn(format!("cannot read it ({e})")),
    };
    let file: File = match serde_json::from_str(&text) {
        Ok(f) => f,
        Err(e) => return warn(format!("not a tune file of format {FORMAT} ({e})")),
    };
    if file.format != FORMAT {
        return warn(format!(
            "format {}, this gdl-gpu reads {FORMAT}",
            file.format
        ));
    }
    if file.adapter != *identity {
        return warn(format!(
            "written for {} (driver {} {}, {}, gdl-gpu {}), not for this adapter and version",
            file.adapter.name,
            file.adapter.driver,
            file.adapter.driver_info,
            file.adapter.backend,
            file.adapter.version
        ));
    }
    let mut bad = Vec::new();
    let mut out = BTreeMap::new();
    for (key, v) in file.entries {
        match serde_json::from_value::<Entry>(v) {
            Ok(e) => {
                out.insert(key, e);
            }
            Err(_) => bad.push(key),
        }
    }
    if !bad.is_empty() {
        eprintln!(
            "warning: ignoring {} malformed entr{} of the tune cache {} ({}); they will be tuned again",
            bad.len(),
            if bad.len() == 1 { "y" } else { "ies" },
            path.display(),
            bad.join(", ")
        );
    }
    out
}

fn write(
    path: &Path,
    identity: &Identity,
    entries: &BTreeMap<String, Entry>,
) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = File {
        format: FORMAT,
        adapter: identity.clone(),
        entries: entries
            .iter()
            .map(|(k, e)| Ok((k.clone(), serde_json::to_value(e)?)))
            .collect::<serde_json::Result<_>>()?,
    };
    let text = serde_json::to_string_pretty(&file)?;
    // The process id keeps two runs tuning at once off each other's
    // temporary file; the rename makes the last one win whole.
    let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
