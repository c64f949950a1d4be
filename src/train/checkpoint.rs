//! Checkpoints in the safetensors format, so the weights load anywhere
//! (`safetensors.torch.load_file`): every parameter by its Keras-style name
//! and shape, unpadded (`conv2d/kernel` `[3, 3, 3, 32]`), BatchNorm moving
//! statistics by theirs, Adam's moments as `optimizer/m/<name>` and
//! `optimizer/v/<name>`. The scalars (model name, epoch, Adam step, seed,
//! learning rate, batch size) live in the `__metadata__` string map, with
//! the model itself as a model file (`model_file`), so a checkpoint needs
//! nothing else to be evaluated or resumed.
//!
//! A checkpoint is written to a temporary file in the target folder and
//! renamed over the target, so an interrupted write never leaves a broken
//! checkpoint behind.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use thiserror::Error;

use super::backend::ModelValues;
use crate::graph::params::ParamLayout;
use crate::graph::Graph;
use crate::models::{self, toml_file, ModelSpec};

/// Written into `__metadata__["format"]`; a file without it is not ours.
pub const FORMAT: &str = "gdl-gpu checkpoint 1";

/// Why a checkpoint could not be written or read.
#[derive(Debug, Error)]
pub enum CheckpointError {
    /// The I/O error is shown in the message rather than chained as a
    /// source, so `{:#}` does not print it twice.
    #[error("{path}: {error}")]
    Io {
        /// The file (or its temporary sibling, or its folder).
        path: PathBuf,
        /// The operating system's error.
        error: std::io::Error,
    },
    /// Not safetensors at all, or truncated, or a corrupt header.
    #[error("{path}: not a readable safetensors checkpoint: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        message: String,
    },
    /// A safetensors file missing (or with a bad) gdl-gpu metadata entry.
    #[error("{path}: checkpoint metadata {key:?}: {message}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// The `__metadata__` key.
        key: &'static str,
        /// What is wrong with its value (absent, unparsable).
        message: String,
    },
    /// [`load`] was given a graph of another name than the checkpoint's.
    #[error("{path}: checkpoint of model {found:?}, but model {expected:?} was asked for")]
    ModelMismatch {
        /// The file.
        path: PathBuf,
        /// The graph's name.
        expected: String,
        /// The checkpoint's model name.
        found: String,
    },
    /// A tensor missing, extra, or of the wrong shape or type.
    #[error("{path}: tensor {name:?}: {message}")]
    Tensor {
        /// The file.
        path: PathBuf,
        /// The tensor's name (`conv2d/kernel`, `optimizer/m/...`).
        name: String,
        /// What is wrong with it.
        message: String,
    },
}

/// A result whose error defaults to [`CheckpointError`].
pub type Result<T, E = CheckpointError> = std::result::Result<T, E>;

/// Everything needed to resume training or to predict.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// The model's name (the graph's).
    pub model: String,
    /// Epochs completed.
    pub epoch: usize,
    /// Steps already taken in epoch `epoch` (0-based) when the run was
    /// interrupted mid-epoch; 0 at an epoch boundary.
    pub epoch_step: usize,
    /// The run's seed (initial weights, shuffling, dropout).
    pub seed: u64,
    /// Adam's learning rate.
    pub lr: f32,
    /// Batch size, in examples.
    pub batch: usize,
    /// Weights, state, Adam moments and step.
    pub values: ModelValues,
}

/// The metadata of a checkpoint, read without its tensors being checked.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointInfo {
    /// The model's name (the graph's).
    pub model: String,
    /// The model the checkpoint was written for: its `model_file`, or for a
    /// checkpoint written before models were files, the built-in by name.
    pub spec: ModelSpec,
    /// Epochs completed.
    pub epoch: usize,
    /// Steps already taken in the epoch after `epoch`; 0 at an epoch boundary.
    pub epoch_step: usize,
    /// The run's seed.
    pub seed: u64,
    /// Adam's learning rate.
    pub lr: f32,
    /// Batch size, in examples.
    pub batch: usize,
    /// Adam steps taken.
    pub adam_step: u64,
    /// The model's name and its layers with their Keras classes,
    /// `<model> (<layer>:<class> -> ...)`.
    pub description: String,
}

fn bytes_of(v: &[f32]) -> &[u8] {
    bytemuck::cast_slice(v)
}

/// Writes `ck` (for `graph`) to `path`, atomically.
pub fn save(path: &Path, graph: &Graph, ck: &Checkpoint) -> Result<()> {
    let io = |p: &Path, error| CheckpointError::Io {
        path: p.to_owned(),
        error,
    };
    let layout = ParamLayout::new(graph);
    let v = &ck.values;
    assert_eq!(v.trainable.len(), layout.trainable_len, "trainable length");
    assert_eq!(v.state.len(), layout.state_len, "state length");
    // (name, shape, data) of every tensor, then views over them.
    let mut parts: Vec<(String, &[usize], &[f32])> = Vec::new();
    for e in &layout.entries {
        let r = e.offset..e.offset + e.spec.len();
        let shape = e.spec.shape.as_slice();
        if e.spec.trainable {
            parts.push((e.name.clone(), shape, &v.trainable[r.clone()]));
            parts.push((
                format!("optimizer/m/{}", e.name),
                shape,
                &v.adam_m[r.clone()],
            ));
            parts.push((format!("optimizer/v/{}", e.name), shape, &v.adam_v[r]));
        } else {
            parts.push((e.name.clone(), shape, &v.state[r]));
        }
    }
    let tensors: Vec<(String, TensorView<'_>)> = parts
        .into_iter()
        .map(|(name, shape, data)| {
            let view = TensorView::new(Dtype::F32, shape.to_vec(), bytes_of(data))
                .expect("shape and data agree by construction");
            (name, view)
        })
        .collect();
    let meta: HashMap<String, String> = [
        ("format", FORMAT.to_owned()),
        ("gdl_gpu_version", env!("CARGO_PKG_VERSION").to_owned()),
        ("model", ck.model.clone()),
        (
            "model_file",
            toml_file::write(&ModelSpec::from_graph(graph)),
        ),
        ("description", describe(graph)),
        ("epoch", ck.epoch.to_string()),
        ("epoch_step", ck.epoch_step.to_string()),
        ("adam_step", v.step.to_string()),
        ("seed", ck.seed.to_string()),
        ("lr", ck.lr.to_string()),
        ("batch_size", ck.batch.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let bytes =
        safetensors::serialize(tensors, Some(meta)).map_err(|e| CheckpointError::Format {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    let tmp = temp_path(path);
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        std::io::Write::write_all(&mut f, &bytes)?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(&tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(path, e)
    })
}

/// `<name>.tmp` beside `path`: same folder, so the rename is atomic.
fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Checks now that `path` can be written (creating its folder), so a bad
/// --save path fails before training rather than after the first epoch.
pub fn check_writable(path: &Path) -> Result<()> {
    let io = |p: &Path, error| CheckpointError::Io {
        path: p.to_owned(),
        error,
    };
    if path.is_dir() {
        return Err(io(
            path,
            std::io::Error::new(std::io::ErrorKind::IsADirectory, "is a folder"),
        ));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    let tmp = temp_path(path);
    std::fs::write(&tmp, b"").map_err(|e| io(&tmp, e))?;
    let _ = std::fs::remove_file(&tmp);
    Ok(())
}

/// One line per layer with parameters, e.g. "dense [3072, 200]+[200]".
fn describe(graph: &Graph) -> String {
    let layers: Vec<String> = graph
        .nodes
        .iter()
        .map(|n| format!("{}:{}", n.name, n.op.kind()))
        .collect();
    format!("{} ({})", graph.name, layers.join(" -> "))
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|error| CheckpointError::Io {
        path: path.to_owned(),
        error,
    })
}

/// Parses the safetensors header, turning the library's errors into a
/// message that says what is wrong with the file.
fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<SafeTensors<'a>> {
    let bad = |message: String| CheckpointError::Format {
        path: path.to_owned(),
        message,
    };
    if bytes.len() < 8 {
        return Err(bad(format!(
            "{} bytes, shorter than the 8-byte safetensors header length",
            bytes.len()
        )));
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    if n > bytes.len() as u64 - 8 {
        return Err(bad(format!(
            "header claims {n} bytes but the file has {} after the length: truncated, or not \
             safetensors",
            bytes.len() - 8
        )));
    }
    SafeTensors::deserialize(bytes).map_err(|e| {
        use safetensors::SafeTensorError as E;
        bad(match e {
            E::MetadataIncompleteBuffer => {
                "the tensor data is shorter than the header says: truncated file".into()
            }
            E::InvalidHeader(_) | E::InvalidHeaderDeserialization(_) | E::HeaderTooSmall => {
                format!("header is not safetensors JSON ({e})")
            }
            other => other.to_string(),
        })
    })
}

fn info_from(path: &Path, bytes: &[u8]) -> Result<CheckpointInfo> {
    let st = parse(path, bytes)?;
    drop(st);
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| CheckpointError::Format {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let empty = HashMap::new();
    let map = meta.metadata().as_ref().unwrap_or(&empty);
    let get = |key: &'static str| -> Result<&str> {
        map.get(key)
            .map(String::as_str)
            .ok_or_else(|| CheckpointError::Metadata {
                path: path.to_owned(),
                key,
                message: "missing (not a gdl-gpu checkpoint?)".into(),
            })
    };
    fn num<T: std::str::FromStr>(path: &Path, key: &'static str, s: &str) -> Result<T> {
        s.parse().map_err(|_| CheckpointError::Metadata {
            path: path.to_owned(),
            key,
            message: format!("{s:?} is not a number"),
        })
    }
    let format = get("format")?;
    if format != FORMAT {
        return Err(CheckpointError::Metadata {
            path: path.to_owned(),
            key: "format",
            message: format!("{format:?}, expected {FORMAT:?}"),
        });
    }
    let model = get("model")?.to_owned();
    let spec =
        match map.get("model_file") {
            Some(text) => toml_file::parse(text, &format!("{} (model_file)", path.display()))
                .map_err(|e| CheckpointError::Metadata {
                    path: path.to_owned(),
                    key: "model_file",
                    message: e.to_string(),
                })?,
            None => models::builtin(&model).ok_or_else(|| CheckpointError::Metadata {
                path: path.to_owned(),
                key: "model",
                message: format!("unknown model {model:?} and no model_file"),
            })?,
        };
    let lr: f32 = num(path, "lr", get("lr")?)?;
    let batch: usize = num(path, "batch_size", get("batch_size")?)?;
    if !(lr.is_finite() && lr > 0.0) || batch == 0 {
        return Err(CheckpointError::Metadata {
            path: path.to_owned(),
            key: if batch == 0 { "batch_size" } else { "lr" },
            message: "must be positive".into(),
        });
    }
    Ok(CheckpointInfo {
        model,
        spec,
        epoch: num(path, "epoch", get("epoch")?)?,
        epoch_step: num(path, "epoch_step", get("epoch_step")?)?,
        seed: num(path, "seed", get("seed")?)?,
        lr,
        batch,
        adam_step: num(path, "adam_step", get("adam_step")?)?,
        description: get("description")?.to_owned(),
    })
}

impl CheckpointInfo {
    /// The checkpoint's model as a graph.
    pub fn graph(&self, path: &Path) -> Result<Graph> {
        self.spec.build().map_err(|e| CheckpointError::Metadata {
            path: path.to_owned(),
            key: "model_file",
            message: e.to_string(),
        })
    }
}

/// The checkpoint's metadata (model, epoch, …), so `eval` and
/// `predict` need no --model. Checks the file is a whole safetensors file.
pub fn peek(path: &Path) -> Result<CheckpointInfo> {
    peek_bytes(path, &read(path)?)
}

/// [`peek`] of a checkpoint's bytes; `path` names it in errors.
pub fn peek_bytes(path: &Path, bytes: &[u8]) -> Result<CheckpointInfo> {
    info_from(path, bytes)
}

/// Loads a checkpoint for `graph`: every tensor the model has must be there
/// with its shape, as f32, and nothing else.
pub fn load(path: &Path, graph: &Graph) -> Result<Checkpoint> {
    from_bytes(path, &read(path)?, graph)
}

/// [`load`] of a checkpoint's bytes; `path` names it in errors. For
/// fuzzing and for checkpoints held in memory.
pub fn from_bytes(path: &Path, bytes: &[u8], graph: &Graph) -> Result<Checkpoint> {
    let info = info_from(path, bytes)?;
    if info.model != graph.name {
        return Err(CheckpointError::ModelMismatch {
            path: path.to_owned(),
            expected: graph.name.clone(),
            found: info.model,
        });
    }
    let st = parse(path, bytes)?;
    let layout = ParamLayout::new(graph);
    let mut values = ModelValues {
        trainable: vec![0.0; layout.trainable_len],
        state: vec![0.0; layout.state_len],
        adam_m: vec![0.0; layout.trainable_len],
        adam_v: vec![0.0; layout.trainable_len],
        step: info.adam_step,
    };
    let mut expected = 0usize;
    for e in &layout.entries {
        let r = e.offset..e.offset + e.spec.len();
        let mut slots: Vec<(String, &mut [f32])> = Vec::new();
        if e.spec.trainable {
            let (t, m, v) = (
                &mut values.trainable[r.clone()],
                &mut values.adam_m[r.clone()],
                &mut values.adam_v[r],
            );
            slots.push((e.name.clone(), t));
            slots.push((format!("optimizer/m/{}", e.name), m));
            slots.push((format!("optimizer/v/{}", e.name), v));
        } else {
            slots.push((e.name.clone(), &mut values.state[r]));
        }
        for (name, dst) in slots {
            expected += 1;
            let tensor_err = |message: String| CheckpointError::Tensor {
                path: path.to_owned(),
                name: name.clone(),
                message,
            };
            let t = st.tensor(&name).map_err(|_| {
                tensor_err(format!(
                    "missing (the model {} expects it; is this a checkpoint of another model?)",
                    graph.name
                ))
            })?;
            if t.dtype() != Dtype::F32 {
                return Err(tensor_err(format!("type {:?}, expected F32", t.dtype())));
            }
            if t.shape() != e.spec.shape.as_slice() {
                return Err(tensor_err(format!(
                    "shape {:?}, the model expects {:?}",
                    t.shape(),
                    e.spec.shape
                )));
            }
            // The data need not be 4-byte aligned in the file buffer.
            for (d, c) in dst.iter_mut().zip(t.data().chunks_exact(4)) {
                *d = f32::from_le_bytes(c.try_into().expect("4 bytes"));
            }
        }
    }
    if st.len() != expected {
        let mut extra: Vec<&str> = st
            .names()
            .into_iter()
            .filter(|n| {
                !layout.entries.iter().any(|e| {
                    *n == e.name
                        || *n == format!("optimizer/m/{}", e.name)
                        || *n == format!("optimizer/v/{}", e.name)
                })
            })
            .collect();
        extra.sort_unstable();
        return Err(CheckpointError::Tensor {
            path: path.to_owned(),
            name: extra.first().map_or_else(String::new, |s| s.to_string()),
            message: format!(
                "not a tensor of model {} ({} unexpected tensors)",
                graph.name,
                extra.len()
            ),
        });
    }
    Ok(Checkpoint {
        model: info.model,
        epoch: info.epoch,
        epoch_step: info.epoch_step,
        seed: info.seed,
        lr: info.lr,
        batch: info.batch,
        values,
    })
}
