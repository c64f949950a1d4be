//! Models as data: the built-in model files, Keras's own JSON for the same
//! models (fixtures written by Keras 3, `tests/fixtures/keras/`), the
//! canonical round trip, and the errors a bad model file gets. No adapter.

use gdl_gpu::graph::Graph;
use gdl_gpu::models::{self, keras_json, toml_file, ModelSpec};
use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keras");

fn fixture(name: &str) -> Graph {
    let path = format!("{FIXTURES}/{name}");
    models::load_graph(&path).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn expected() -> Value {
    let text = std::fs::read_to_string(format!("{FIXTURES}/expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// (name, class, shape, parameter shapes) of every node.
type Layout = Vec<(String, String, Vec<usize>, Vec<(String, Vec<usize>)>)>;

fn layout(g: &Graph) -> Layout {
    g.nodes
        .iter()
        .map(|n| {
            (
                n.name.clone(),
                n.op.kind().to_owned(),
                n.shape.clone(),
                n.params
                    .iter()
                    .map(|p| (p.name.to_owned(), p.shape.clone()))
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn builtins_have_keras_parameter_counts_and_names() {
    let counts = |name| models::builtin_graph(name).unwrap().param_counts();
    assert_eq!(counts("mlp"), (646_260, 0));
    assert_eq!(counts("cnn"), (591_914, 640));
    // conv: 4·4·3·10+10 + 3·3·10·20+20 + 8·8·20·10+10
    assert_eq!(counts("conv"), (490 + 1820 + 12_810, 0));
    let mlp = models::builtin_graph("mlp").unwrap();
    let names: Vec<&str> = mlp.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names,
        ["input_layer", "flatten", "dense", "dense_1", "dense_2"]
    );
}

/// Keras's JSON of each chapter model builds the very graph of the
/// built-in: names, classes, shapes and parameters, layer by layer.
#[test]
fn keras_fixtures_build_the_builtin_graphs() {
    for (file, builtin) in [
        ("mlp.json", "mlp"),
        ("mlp_sequential.json", "mlp"),
        ("conv.json", "conv"),
        ("cnn.json", "cnn"),
    ] {
        let g = fixture(file);
        let b = models::builtin_graph(builtin).unwrap();
        assert_eq!(layout(&g), layout(&b), "{file} against {builtin}");
    }
}

/// Every fixture, the residual one included, against what Keras itself
/// reported for it: per layer its name, class, output shape and parameter
/// count, each weight's name and shape, and the model's totals.
#[test]
fn keras_fixtures_match_what_keras_reported() {
    let exp = expected();
    let models = exp["models"].as_object().unwrap();
    assert!(models.len() >= 5);
    for (file, m) in models {
        let g = fixture(file);
        let layers = m["layers"].as_array().unwrap();
        assert_eq!(g.nodes.len(), layers.len(), "{file}: layer count");
        for (n, l) in g.nodes.iter().zip(layers) {
            assert_eq!(n.name, l["name"].as_str().unwrap(), "{file}");
            assert_eq!(n.op.kind(), l["class_name"].as_str().unwrap(), "{file}");
            let shape: Vec<usize> = serde_json::from_value(l["output_shape"].clone()).unwrap();
            assert_eq!(n.shape, shape, "{file}: {}", n.name);
            let count: usize = n.params.iter().map(|p| p.len()).sum();
            assert_eq!(
                count as u64,
                l["params"].as_u64().unwrap(),
                "{file}: {}",
                n.name
            );
            let weights: Vec<(String, Vec<usize>)> = l["weights"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| {
                    (
                        w["name"].as_str().unwrap().to_owned(),
                        serde_json::from_value(w["shape"].clone()).unwrap(),
                    )
                })
                .collect();
            let ours: Vec<(String, Vec<usize>)> = n
                .params
                .iter()
                .map(|p| (p.name.to_owned(), p.shape.clone()))
                .collect();
            assert_eq!(ours, weights, "{file}: {} weights", n.name);
        }
        let (t, nt) = g.param_counts();
        assert_eq!(t as u64, m["trainable_params"].as_u64().unwrap(), "{file}");
        assert_eq!(
            nt as u64,
            m["non_trainable_params"].as_u64().unwrap(),
            "{file}"
        );
    }
}

/// The canonical description of a graph builds the same graph again.
#[test]
fn canonical_model_files_round_trip() {
    let mut graphs: Vec<Graph> = models::builtin_names()
        .into_iter()
        .map(|n| models::builtin_graph(n).unwrap())
        .collect();
    graphs.push(fixture("residual.json"));
    graphs.push(fixture("cnn.json"));
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/models/examples/residual.toml"
    );
    graphs.push(models::load_graph(example).unwrap());
    for g in graphs {
        let text = toml_file::write(&ModelSpec::from_graph(&g));
        let again = toml_file::parse(&text, "canonical.toml")
            .and_then(|s| s.build())
            .unwrap_or_else(|e| panic!("{}: {e}\n{text}", g.name));
        assert_eq!(layout(&again), layout(&g), "{}:\n{text}", g.name);
        let inputs = |g: &Graph| g.nodes.iter().map(|n| n.inputs.clone()).collect::<Vec<_>>();
        assert_eq!(inputs(&again), inputs(&g), "{}", g.name);
        let ops = |g: &Graph| g.nodes.iter().map(|n| n.op.clone()).collect::<Vec<_>>();
        assert_eq!(ops(&again), ops(&g), "{}", g.name);
    }
}

#[test]
fn example_model_is_a_residual_cnn_with_pooling() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/models/examples/residual.toml"
    );
    let g = models::load_graph(example).unwrap();
    let kinds: Vec<&str> = g.nodes.iter().map(|n| n.op.kind()).collect();
    assert!(kinds.contains(&"Add") && kinds.contains(&"MaxPooling2D"));
    assert!(kinds.contains(&"GlobalAveragePooling2D"));
    // Conv kernels (no biases): the stem 3·3·3·16, block 1 2·3·3·16·16,
    // block 2 3·3·16·32 + 3·3·32·32 and its 1×1 shortcut 16·32; three
    // BatchNorms of 16 and three of 32 (γ, β trainable, the moving
    // statistics not); Dense 32→10.
    let conv = 3 * 3 * 3 * 16 + 2 * 3 * 3 * 16 * 16 + 3 * 3 * 16 * 32 + 3 * 3 * 32 * 32 + 16 * 32;
    let bn = 3 * 2 * 16 + 3 * 2 * 32;
    assert_eq!(g.param_counts(), (conv + bn + 330, bn));
}

/// A model file with the head and input a test needs, around `layers`.
fn toml_model(layers: &str) -> String {
    format!("name = \"bad\"\n\n{layers}")
}

fn toml_error(text: &str) -> String {
    match toml_file::parse(text, "bad.toml").and_then(|s| s.build()) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

const HEAD: &str = "[[layers]]\ntype = \"Flatten\"\n\n[[layers]]\ntype = \"Dense\"\nunits = 10\nactivation = \"softmax\"\n";

#[test]
fn bad_model_files_get_errors_naming_file_line_layer_and_expectation() {
    let conv = |args: &str| {
        toml_model(&format!(
            "[[layers]]\ntype = \"Conv2D\"\nkernel_size = 3\n{args}\n\n{HEAD}"
        ))
    };
    let cases: Vec<(String, Vec<&str>)> = vec![
        ("layers = [".into(), vec!["bad.toml", "not a valid model file", "line 1"]),
        ("name = \"x\"\n".into(), vec!["bad.toml", "layers"]),
        (
            toml_model(&format!("[[layers]]\ntype = \"Conv3D\"\n\n{HEAD}")),
            vec!["bad.toml:3", "conv3d (Conv3D)", "unknown layer type \"Conv3D\"", "Conv2D"],
        ),
        (
            conv("filtres = 8"),
            vec!["bad.toml:3", "Conv2D", "did you mean \"filters\""],
        ),
        (
            conv("filters = 8\nfiltres = 8"),
            vec!["bad.toml:3", "unknown argument \"filtres\""],
        ),
        (conv("filters = \"8\""), vec!["bad.toml:3", "\"filters\"", "whole number"]),
        (conv("filters = 0"), vec!["bad.toml:3", "\"filters\"", "from 1 to"]),
        (conv("filters = 8\nstrides = 0"), vec!["\"strides\"", "≥ 1"]),
        (conv("filters = 8\npadding = \"full\""), vec!["\"padding\"", "\"valid\", \"same\""]),
        (conv("filters = 8\nactivation = \"swish\""), vec!["unknown activation \"swish\""]),
        (
            toml_model(&format!("[[layers]]\ntype = \"Dropout\"\nrate = 1.0\n\n{HEAD}")),
            vec!["bad.toml:3", "Dropout", "\"rate\"", "[0, 1)"],
        ),
        (
            toml_model("[[layers]]\ntype = \"Dense\"\nunits = 10\nactivation = \"softmax\"\n"),
            vec!["bad.toml:3", "dense (Dense)", "add Flatten first", "[32, 32, 3]"],
        ),
        (
            toml_model(&format!(
                "[[layers]]\ntype = \"Conv2D\"\nfilters = 4\nkernel_size = 3\n\n[[layers]]\ntype = \"Add\"\ninputs = [\"conv2d\", \"input_layer\"]\n\n{HEAD}"
            )),
            vec!["bad.toml:8", "add (Add)", "inputs of one shape", "[30, 30, 4] and [32, 32, 3]"],
        ),
        (
            toml_model(&format!("[[layers]]\ntype = \"MaxPooling2D\"\npool_size = 33\n\n{HEAD}")),
            vec!["bad.toml:3", "MaxPooling2D", "at least as large as the pool"],
        ),
        (
            toml_model(&format!("[[layers]]\ntype = \"Flatten\"\ninputs = [\"nowhere\"]\n\n{HEAD}")),
            vec!["bad.toml:3", "input \"nowhere\" names no layer"],
        ),
        (
            toml_model(&format!(
                "[[layers]]\ntype = \"Flatten\"\ninputs = [\"later\"]\n\n[[layers]]\ntype = \"Flatten\"\nname = \"later\"\ninputs = [\"input_layer\"]\n\n{HEAD}"
            )),
            vec!["bad.toml:3", "\"later\" is a later layer"],
        ),
        (
            toml_model(&format!(
                "[[layers]]\ntype = \"Conv2D\"\nfilters = 4\nkernel_size = 3\n\n[[layers]]\ntype = \"Flatten\"\ninputs = [\"input_layer\"]\n\n{}",
                &HEAD[HEAD.find("[[layers]]\ntype = \"Dense\"").unwrap()..]
            )),
            vec!["bad.toml:3", "conv2d (Conv2D)", "not used by any later layer"],
        ),
        (
            toml_model("[[layers]]\ntype = \"Flatten\"\n\n[[layers]]\ntype = \"Dense\"\nunits = 7\nactivation = \"softmax\"\n"),
            vec!["bad.toml:6", "10 class probabilities", "[7]"],
        ),
        (
            toml_model("[[layers]]\ntype = \"Flatten\"\n\n[[layers]]\ntype = \"Dense\"\nunits = 10\n"),
            vec!["bad.toml:6", "must end in a softmax"],
        ),
        (
            toml_model(&format!("[[layers]]\ntype = \"Softmax\"\n\n{HEAD}")),
            vec!["bad.toml:3", "softmax (Softmax)", "only on the output layer"],
        ),
        (
            toml_model(&format!("[[layers]]\ntype = \"Reshape\"\ntarget_shape = [5, -1]\n\n{HEAD}")),
            vec!["Reshape", "3072 elements fit target_shape [5, -1]"],
        ),
        (
            format!("input = [28, 28, 1]\n{HEAD}"),
            vec!["bad.toml", "CIFAR-10's images", "[28, 28, 1]"],
        ),
        (
            toml_model("[[layers]]\ntype = \"Flatten\"\nname = \"dup\"\n\n[[layers]]\ntype = \"Dense\"\nname = \"dup\"\nunits = 10\nactivation = \"softmax\"\n"),
            vec!["bad.toml:7", "dup (Dense)", "already has this name"],
        ),
    ];
    for (text, want) in cases {
        let e = toml_error(&text);
        for w in want {
            assert!(e.contains(w), "error {e:?} lacks {w:?} for:\n{text}");
        }
    }
}

fn json_error(text: &str) -> String {
    match keras_json::parse(text, "bad.json").and_then(|s| s.build()) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// The residual fixture with one layer's config changed.
fn residual_with(layer: &str, key: &str, value: Value) -> String {
    let text = std::fs::read_to_string(format!("{FIXTURES}/residual.json")).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    let layers = v["config"]["layers"].as_array_mut().unwrap();
    let l = layers
        .iter_mut()
        .find(|l| l["config"]["name"] == layer)
        .unwrap();
    l["config"][key] = value;
    v.to_string()
}

#[test]
fn unsupported_keras_arguments_are_named_never_ignored() {
    let reg = serde_json::json!({"module": "keras.regularizers", "class_name": "L2", "config": {"l2": 0.01}});
    let cases = [
        (
            residual_with("conv2d_1", "dilation_rate", serde_json::json!([2, 2])),
            vec!["conv2d_1 (Conv2D)", "\"dilation_rate\"", "[2,2]"],
        ),
        (
            residual_with("conv2d_1", "groups", 2.into()),
            vec!["conv2d_1 (Conv2D)", "\"groups\""],
        ),
        (
            residual_with("dense", "kernel_regularizer", reg),
            vec!["dense (Dense)", "\"kernel_regularizer\""],
        ),
        (
            residual_with("conv2d", "data_format", "channels_first".into()),
            vec!["\"data_format\""],
        ),
        (
            residual_with("dense", "activation", "swish".into()),
            vec!["dense (Dense)", "unknown activation \"swish\""],
        ),
        (
            residual_with("batch_normalization", "center", false.into()),
            vec!["batch_normalization (BatchNormalization)", "\"center\""],
        ),
        (
            residual_with("dropout", "noise_shape", serde_json::json!([1, 16])),
            vec!["dropout (Dropout)", "\"noise_shape\""],
        ),
        (
            residual_with("conv2d", "trainable", false.into()),
            vec!["conv2d (Conv2D)", "\"trainable\""],
        ),
        (
            residual_with(
                "conv2d",
                "kernel_initializer",
                serde_json::json!({"module": "keras.initializers", "class_name": "HeNormal", "config": {"seed": null}}),
            ),
            vec!["\"kernel_initializer\"", "glorot_uniform"],
        ),
        (
            residual_with("conv2d", "quantum", 1.into()),
            vec!["unknown argument \"quantum\""],
        ),
        (
            "{\"class_name\": \"Functional\",".into(),
            vec!["bad.json", "not valid JSON", "line 1"],
        ),
        (
            "{\"class_name\": \"Tokenizer\"}".into(),
            vec!["bad.json", "not a Keras model"],
        ),
    ];
    for (text, want) in cases {
        let e = json_error(&text);
        assert!(e.contains("bad.json"), "{e}");
        for w in want {
            assert!(e.contains(w), "error {e:?} lacks {w:?}");
        }
    }
}
