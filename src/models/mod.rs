//! Models as data: a model is a list of layers in Keras's vocabulary
//! (`ModelSpec`), read from our TOML format (`toml_file`) or from the JSON
//! Keras writes with `model.to_json()` (`keras_json`), and built into a
//! graph (`ModelSpec::build`). The chapter's three models are TOML files
//! embedded in the binary (`assets/models/`).

pub mod keras_json;
pub mod spec;
pub mod toml_file;

use std::path::Path;

pub use spec::{LayerSpec, ModelError, ModelSpec};

use crate::graph::Graph;

/// The built-in models: (name, what it is, its TOML).
pub const BUILTIN: &[(&str, &str, &str)] = &[
    (
        "mlp",
        "dense network 3072→200→150→10",
        include_str!("../../assets/models/mlp.toml"),
    ),
    (
        "conv",
        "the chapter's first convolutional sketch: two strided Conv2D layers",
        include_str!("../../assets/models/conv.toml"),
    ),
    (
        "cnn",
        "four Conv2D/BatchNorm/LeakyReLU blocks, Dense(128), dropout",
        include_str!("../../assets/models/cnn.toml"),
    ),
];

/// The names of the built-in models.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN.iter().map(|b| b.0).collect()
}

/// The spec of built-in model `name`.
pub fn builtin(name: &str) -> Option<ModelSpec> {
    let (_, _, text) = BUILTIN.iter().find(|b| b.0 == name)?;
    Some(
        toml_file::parse(text, &format!("assets/models/{name}.toml"))
            .expect("built-in model files parse (tested)"),
    )
}

/// `--model NAME|PATH`: a built-in's name, or a `.toml` or `.json` file.
pub fn load(arg: &str) -> Result<ModelSpec, ModelError> {
    if let Some(spec) = builtin(arg) {
        return Ok(spec);
    }
    let path = Path::new(arg);
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if !matches!(ext, "toml" | "json") {
        return Err(ModelError::Unknown {
            name: arg.to_owned(),
            builtins: builtin_names().join(", "),
        });
    }
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| ModelError::Io {
        file: file.clone(),
        error,
    })?;
    if ext == "json" {
        keras_json::parse(&text, &file)
    } else {
        toml_file::parse(&text, &file)
    }
}

/// Loads and builds `--model NAME|PATH` for CIFAR-10.
pub fn load_graph(arg: &str) -> Result<Graph, ModelError> {
    load(arg)?.build()
}

/// The graph of built-in model `name`.
pub fn builtin_graph(name: &str) -> Option<Graph> {
    Some(
        builtin(name)?
            .build()
            .expect("built-in models build (tested)"),
    )
}
