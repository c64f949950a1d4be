//! The JSON Keras 3 writes with `model.to_json()`, Functional or
//! Sequential, read into a `ModelSpec`. Layer names are kept, so checkpoint
//! tensor names match the Keras model's weights ("conv2d/kernel"). What
//! every Keras layer carries (`name`, `trainable`, `dtype`) is checked here;
//! each layer's own arguments are checked by its op, like a TOML file's.

use serde_json::{Map, Value};

use super::spec::{LayerSpec, ModelError, ModelSpec};
use crate::graph::error::GraphError;

/// Reads `model.to_json()` output `text`; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<ModelSpec, ModelError> {
    let syntax = |message: String| ModelError::Syntax {
        file: file.to_owned(),
        message,
    };
    let root: Value = serde_json::from_str(text).map_err(|e| {
        syntax(format!(
            "not valid JSON (line {}, column {}): {e}",
            e.line(),
            e.column()
        ))
    })?;
    let class = root.get("class_name").and_then(Value::as_str).unwrap_or("");
    let sequential = match class {
        "Sequential" => true,
        "Functional" | "Model" => false,
        _ => {
            return Err(syntax(format!(
                "not a Keras model: expected \"class_name\" \"Functional\" or \"Sequential\" (what model.to_json() writes), got {:?}",
                root.get("class_name").unwrap_or(&Value::Null)
            )))
        }
    };
    let config = root.get("config").and_then(Value::as_object);
    let layers = config
        .and_then(|c| c.get("layers"))
        .and_then(Value::as_array)
        .ok_or_else(|| syntax("no \"config\".\"layers\" list".into()))?;
    let model_name = config
        .and_then(|c| c.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("model");
    let mut spec = ModelSpec {
        name: model_name.to_owned(),
        file: file.to_owned(),
        input_name: "input_layer".into(),
        input: [0; 3],
        layers: Vec::new(),
    };
    let layer_err = |name: &str, class: &str, message: String| ModelError::Layer {
        file: file.to_owned(),
        line: None,
        source: GraphError::Layer {
            layer: name.to_owned(),
            class: class.to_owned(),
            message,
        },
    };
    let mut have_input = false;
    for (i, l) in layers.iter().enumerate() {
        let class = l
            .get("class_name")
            .and_then(Value::as_str)
            .ok_or_else(|| syntax(format!("layer {}: no \"class_name\"", i + 1)))?;
        let mut args: Map<String, Value> = l
            .get("config")
            .and_then(Value::as_object)
            .cloned()
            .ok_or_else(|| syntax(format!("layer {} ({class}): no \"config\"", i + 1)))?;
        let name = match args.remove("name") {
            Some(Value::String(s)) => s,
            _ => return Err(syntax(format!("layer {} ({class}): no \"name\"", i + 1))),
        };
        let err = |m: String| layer_err(&name, class, m);
        match args.remove("trainable") {
            None | Some(Value::Bool(true)) => {}
            Some(v) => {
                return Err(err(format!(
                "\"trainable\" = {v} is not supported (frozen layers are not; every layer trains)"
            )))
            }
        }
        check_dtype(args.remove("dtype")).map_err(&err)?;
        if let Some(a) = args.get_mut("activation") {
            *a = activation_name(a).map_err(&err)?;
        }
        if class == "InputLayer" {
            if have_input || i > 0 {
                return Err(err("a model has one input layer, and it comes first".into()));
            }
            spec.input = input_shape(&mut args).map_err(&err)?;
            spec.input_name = name;
            have_input = true;
            for k in ["sparse", "ragged"] {
                if args.remove(k).is_some_and(|v| v != Value::Bool(false)) {
                    return Err(layer_err(
                        &spec.input_name,
                        class,
                        format!("\"{k}\" inputs are not supported"),
                    ));
                }
            }
            args.remove("optional");
            if let Some(k) = args.keys().next() {
                return Err(layer_err(
                    &spec.input_name,
                    class,
                    format!("unknown argument {k:?}"),
                ));
            }
            continue;
        }
        if !have_input {
            // A Sequential model may give its input shape on its first layer.
            let shape = args
                .remove("batch_shape")
                .or_else(|| args.remove("batch_input_shape"))
                .or_else(|| root.get("build_config")?.get("input_shape").cloned())
                .or_else(|| config?.get("build_input_shape").cloned());
            let mut m = Map::new();
            if let Some(s) = shape {
                m.insert("batch_shape".into(), s);
            }
            spec.input = input_shape(&mut m).map_err(&err)?;
            have_input = true;
        }
        let inputs = if sequential {
            None
        } else {
            Some(inbound(l).map_err(&err)?)
        };
        spec.layers.push(LayerSpec {
            class: class.to_owned(),
            name: Some(name),
            inputs,
            args,
            line: None,
        });
    }
    if !sequential {
        check_output(config, &spec).map_err(syntax)?;
    }
    Ok(spec)
}

/// float32 only, as a string or a DTypePolicy.
fn check_dtype(v: Option<Value>) -> Result<(), String> {
    let name = match &v {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::String(s)) => s.as_str(),
        Some(Value::Object(o)) => o
            .get("config")
            .and_then(|c| c.get("name"))
            .and_then(Value::as_str)
            .unwrap_or(""),
        Some(_) => "",
    };
    if name == "float32" {
        Ok(())
    } else {
        Err(format!(
            "\"dtype\" = {} is not supported (gdl-gpu computes in float32)",
            v.unwrap_or(Value::Null)
        ))
    }
}

/// An activation as a name: Keras writes a string, or a serialized function.
fn activation_name(v: &Value) -> Result<Value, String> {
    match v {
        Value::String(_) => Ok(v.clone()),
        Value::Object(o) => match (o.get("class_name"), o.get("config")) {
            (Some(Value::String(c)), Some(Value::String(f))) if c == "function" => {
                Ok(Value::String(f.clone()))
            }
            _ => Err(format!("\"activation\" = {v} is not a built-in activation")),
        },
        _ => Err(format!("\"activation\" = {v} is not a built-in activation")),
    }
}

/// `batch_shape` [null, h, w, c] → [h, w, c].
fn input_shape(args: &mut Map<String, Value>) -> Result<[usize; 3], String> {
    let v = args
        .remove("batch_shape")
        .or_else(|| args.remove("batch_input_shape"))
        .ok_or("no input shape (\"batch_shape\")")?;
    let dims: Option<Vec<usize>> = v.as_array().filter(|a| a.len() == 4).and_then(|a| {
        a[1..]
            .iter()
            .map(|d| d.as_u64().map(|n| n as usize))
            .collect()
    });
    match dims.as_deref() {
        Some(&[h, w, c]) => Ok([h, w, c]),
        _ => Err(format!(
            "the input must be images [batch, height, width, channels]; got batch_shape {v}"
        )),
    }
}

/// The names of the layers a Functional layer reads.
fn inbound(layer: &Value) -> Result<Vec<String>, String> {
    let nodes = layer
        .get("inbound_nodes")
        .and_then(Value::as_array)
        .ok_or("no \"inbound_nodes\"")?;
    let [node] = nodes.as_slice() else {
        return Err(format!(
            "called {} times; a layer shared between several calls is not supported",
            nodes.len()
        ));
    };
    let args = node
        .get("args")
        .and_then(Value::as_array)
        .ok_or("an inbound node without \"args\"")?;
    let mut names = Vec::new();
    for a in args {
        match a {
            Value::Array(list) => {
                for t in list {
                    names.push(tensor_source(t)?);
                }
            }
            t => names.push(tensor_source(t)?),
        }
    }
    if names.is_empty() {
        return Err("an inbound node that reads no tensor".into());
    }
    Ok(names)
}

fn tensor_source(t: &Value) -> Result<String, String> {
    let h = t
        .get("config")
        .and_then(|c| c.get("keras_history"))
        .and_then(Value::as_array)
        .ok_or_else(|| format!("an input that is not a Keras tensor: {t}"))?;
    match (
        h.first().and_then(Value::as_str),
        h.get(1).and_then(Value::as_u64),
    ) {
        (Some(name), Some(0)) => Ok(name.to_owned()),
        (Some(name), _) => Err(format!(
            "reads a later call of layer {name:?}; shared layers are not supported"
        )),
        _ => Err(format!("a malformed keras_history {h:?}")),
    }
}

/// The model's one output must be its last layer (where the softmax is).
fn check_output(config: Option<&Map<String, Value>>, spec: &ModelSpec) -> Result<(), String> {
    let Some(out) = config.and_then(|c| c.get("output_layers")) else {
        return Ok(());
    };
    // One output is a flat [name, node, tensor]; several are a list of them.
    let names: Vec<&str> = match out.as_array() {
        Some(a) if a.first().is_some_and(Value::is_string) => {
            a.first().and_then(Value::as_str).into_iter().collect()
        }
        Some(a) => a
            .iter()
            .filter_map(|x| x.get(0).and_then(Value::as_str))
            .collect(),
        None => Vec::new(),
    };
    let last = spec.layers.last().and_then(|l| l.name.as_deref());
    match names.as_slice() {
        [one] if Some(*one) == last => Ok(()),
        [one] => Err(format!(
            "the output layer {one:?} must be the last layer listed (it is {:?})",
            last.unwrap_or("")
        )),
        _ => Err(format!(
            "a model with {} outputs; gdl-gpu trains classifiers with one",
            names.len()
        )),
    }
}
