//! gdl-gpu's model files: TOML, a list of layers in Keras's vocabulary.
//!
//! ```toml
//! name = "small"            # optional: the file's stem
//! input = [32, 32, 3]       # optional: CIFAR-10's images
//!
//! [[layers]]
//! type = "Conv2D"           # Keras's class name
//! filters = 16              # Keras's argument names and defaults
//! kernel_size = 3
//! padding = "same"
//! activation = "relu"
//!
//! [[layers]]
//! type = "Add"
//! inputs = ["conv2d", "input_layer"]   # optional: the layer before
//! name = "skip"                        # optional: Keras's automatic name
//! ```

use serde::Deserialize;
use serde_json::{Map, Value};

use super::spec::{LayerSpec, ModelError, ModelSpec};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: Option<String>,
    input: Option<[usize; 3]>,
    input_name: Option<String>,
    layers: Vec<toml::Spanned<toml::Table>>,
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Parses a model file's text; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<ModelSpec, ModelError> {
    let syntax = |message: String| ModelError::Syntax {
        file: file.to_owned(),
        message,
    };
    let f: File = toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map(|s| format!("line {}: ", line_of(text, s.start)))
            .unwrap_or_default();
        syntax(format!(
            "not a valid model file: {at}{}",
            e.message().trim_end()
        ))
    })?;
    if f.layers.is_empty() {
        return Err(syntax("the model has no layers ([[layers]] tables)".into()));
    }
    let mut layers = Vec::new();
    for spanned in f.layers {
        let line = line_of(text, spanned.span().start);
        let table = spanned.into_inner();
        let mut args: Map<String, Value> = match serde_json::to_value(table) {
            Ok(Value::Object(m)) => m,
            _ => return Err(syntax(format!("line {line}: a layer must be a table"))),
        };
        let bad = |what: &str| syntax(format!("line {line}: {what}"));
        let class = match args.remove("type") {
            Some(Value::String(s)) => s,
            Some(v) => {
                return Err(bad(&format!(
                    "\"type\" must be a layer class name (a string), got {v}"
                )))
            }
            None => {
                return Err(bad(
                    "the layer has no \"type\" (its Keras class name, such as \"Conv2D\")",
                ))
            }
        };
        let name = match args.remove("name") {
            None => None,
            Some(Value::String(s)) if !s.is_empty() => Some(s),
            Some(v) => {
                return Err(bad(&format!(
                    "\"name\" must be a non-empty string, got {v}"
                )))
            }
        };
        let inputs = match args.remove("inputs") {
            None => None,
            Some(Value::String(s)) => Some(vec![s]),
            Some(Value::Array(a)) if !a.is_empty() => Some(
                a.into_iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(s),
                        v => Err(bad(&format!("\"inputs\" must list layer names, got {v}"))),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Some(v) => return Err(bad(&format!("\"inputs\" must list layer names, got {v}"))),
        };
        layers.push(LayerSpec {
            class,
            name,
            inputs,
            args,
            line: Some(line),
        });
    }
    let stem = std::path::Path::new(file)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("model");
    Ok(ModelSpec {
        name: f.name.unwrap_or_else(|| stem.to_owned()),
        file: file.to_owned(),
        input_name: f.input_name.unwrap_or_else(|| "input_layer".into()),
        input: f.input.unwrap_or([32, 32, 3]),
        layers,
    })
}

/// `spec` as a model file (the canonical form: `ModelSpec::from_graph`).
pub fn write(spec: &ModelSpec) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "name = {}\n",
        toml_value(&spec.name.clone().into())
    ));
    s.push_str(&format!(
        "input = [{}, {}, {}]\n",
        spec.input[0], spec.input[1], spec.input[2]
    ));
    if spec.input_name != "input_layer" {
        s.push_str(&format!(
            "input_name = {}\n",
            toml_value(&spec.input_name.clone().into())
        ));
    }
    for l in &spec.layers {
        s.push_str(&format!(
            "\n[[layers]]\ntype = {}\n",
            toml_value(&l.class.clone().into())
        ));
        if let Some(n) = &l.name {
            s.push_str(&format!("name = {}\n", toml_value(&n.clone().into())));
        }
        if let Some(i) = &l.inputs {
            let v: Value = i.clone().into();
            s.push_str(&format!("inputs = {}\n", toml_value(&v)));
        }
        for (k, v) in &l.args {
            s.push_str(&format!("{k} = {}\n", toml_value(v)));
        }
    }
    s
}

/// A JSON scalar or list as a TOML value (model arguments are no deeper).
fn toml_value(v: &Value) -> String {
    match v {
        Value::String(s) => Value::String(s.clone()).to_string(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(toml_value).collect::<Vec<_>>().join(", ")
        ),
        Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().unwrap_or(0.0);
            if x.fract() == 0.0 && x.abs() < 1e15 {
                format!("{x:.1}")
            } else {
                format!("{x}")
            }
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_numbers_are_one_based() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 4), 3);
    }
}
