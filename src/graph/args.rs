//! A layer's arguments as a model file gives them (Keras's names and
//! value forms), read one by one by the op that owns them. Every argument
//! taken is remembered, so what is left at the end is an unknown (or
//! misspelled) argument, reported with the ones the layer does take.

use serde_json::{Map, Value};

use super::error::GraphError;

/// The largest size argument a layer takes: with sizes below 2³², window
/// arithmetic cannot overflow; tensors are bounded separately, by
/// `Graph::add`.
pub const MAX_INT: u64 = u32::MAX as u64;

/// The arguments of one layer, in a format-neutral form (TOML and Keras
/// JSON both map onto JSON values).
pub struct Args<'a> {
    layer: &'a str,
    class: &'a str,
    map: Map<String, Value>,
    known: Vec<&'static str>,
}

impl<'a> Args<'a> {
    /// The arguments `map` of layer `layer`, Keras class `class`, none read yet.
    pub fn new(layer: &'a str, class: &'a str, map: Map<String, Value>) -> Self {
        Args {
            layer,
            class,
            map,
            known: Vec::new(),
        }
    }

    /// An error naming this layer and class.
    pub fn error(&self, message: impl Into<String>) -> GraphError {
        GraphError::Layer {
            layer: self.layer.to_owned(),
            class: self.class.to_owned(),
            message: message.into(),
        }
    }

    fn take(&mut self, key: &'static str) -> Option<Value> {
        self.known.push(key);
        self.map.remove(key)
    }

    fn bad(&self, key: &str, expected: &str, got: &Value) -> GraphError {
        self.error(format!("argument {key:?}: expected {expected}, got {got}"))
    }

    fn required<T>(&self, key: &str, v: Option<T>) -> Result<T, GraphError> {
        v.ok_or_else(|| {
            let near = self
                .map
                .keys()
                .find(|k| edit_distance(k, key) <= 2)
                .map(|k| format!(" (there is {k:?}: did you mean {key:?}?)"))
                .unwrap_or_default();
            self.error(format!("argument {key:?} is required{near}"))
        })
    }

    /// A whole number ≥ `min`.
    pub fn int(
        &mut self,
        key: &'static str,
        default: Option<usize>,
        min: usize,
    ) -> Result<usize, GraphError> {
        let Some(v) = self.take(key) else {
            return self.required(key, default);
        };
        match v.as_u64() {
            Some(n) if n as usize >= min && n <= MAX_INT => Ok(n as usize),
            _ => Err(self.bad(key, &format!("a whole number from {min} to {MAX_INT}"), &v)),
        }
    }

    /// A pair of whole numbers ≥ 1, given as one number or a list of two.
    pub fn pair(
        &mut self,
        key: &'static str,
        default: Option<[usize; 2]>,
    ) -> Result<[usize; 2], GraphError> {
        let Some(v) = self.take(key) else {
            return self.required(key, default);
        };
        self.pair_value(key, &v)
    }

    /// Like `pair`, but `null` (Keras's "same as another argument") gives None.
    pub fn optional_pair(&mut self, key: &'static str) -> Result<Option<[usize; 2]>, GraphError> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => self.pair_value(key, &v).map(Some),
        }
    }

    fn pair_value(&self, key: &str, v: &Value) -> Result<[usize; 2], GraphError> {
        let one = |x: &Value| {
            x.as_u64()
                .filter(|&n| (1..=MAX_INT).contains(&n))
                .map(|n| n as usize)
        };
        let pair = match v {
            Value::Array(a) if a.len() == 2 => one(&a[0]).zip(one(&a[1])).map(|(a, b)| [a, b]),
            x => one(x).map(|n| [n, n]),
        };
        pair.ok_or_else(|| {
            self.bad(
                key,
                "a whole number ≥ 1 or a list of two [height, width]",
                v,
            )
        })
    }

    /// A list of whole numbers (−1 allowed where `allow_minus_one`).
    pub fn int_list(&mut self, key: &'static str) -> Result<Vec<i64>, GraphError> {
        let v = self.take(key);
        let v = self.required(key, v)?;
        let list = v.as_array().and_then(|a| {
            a.iter()
                .map(|x| {
                    x.as_i64()
                        .filter(|&n| (1..=MAX_INT as i64).contains(&n) || n == -1)
                })
                .collect::<Option<Vec<i64>>>()
        });
        list.ok_or_else(|| self.bad(key, "a list of whole numbers ≥ 1 (or one −1)", &v))
    }

    /// Number `key` as f32, or `default` when absent; anything but a finite number is an error.
    pub fn float(&mut self, key: &'static str, default: f32) -> Result<f32, GraphError> {
        match self.take(key) {
            None => Ok(default),
            Some(v) => match v.as_f64() {
                Some(x) if x.is_finite() => Ok(x as f32),
                _ => Err(self.bad(key, "a number", &v)),
            },
        }
    }

    /// Boolean `key`, or `default` when absent.
    pub fn boolean(&mut self, key: &'static str, default: bool) -> Result<bool, GraphError> {
        match self.take(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(b),
            Some(v) => Err(self.bad(key, "true or false", &v)),
        }
    }

    /// String `key`, or `default` when absent.
    pub fn string(&mut self, key: &'static str, default: &str) -> Result<String, GraphError> {
        match self.take(key) {
            None => Ok(default.to_owned()),
            Some(Value::String(s)) => Ok(s),
            Some(v) => Err(self.bad(key, "a string", &v)),
        }
    }

    /// One of `choices` (compared case-insensitively, as Keras does for padding).
    pub fn choice(
        &mut self,
        key: &'static str,
        default: &'static str,
        choices: &[&'static str],
    ) -> Result<&'static str, GraphError> {
        let s = self.string(key, default)?;
        choices
            .iter()
            .find(|c| c.eq_ignore_ascii_case(&s))
            .copied()
            .ok_or_else(|| {
                self.error(format!(
                    "argument {key:?}: expected one of {}, got {s:?}",
                    quoted(choices)
                ))
            })
    }

    /// An argument gdl-gpu takes only at Keras's default: absent, or equal
    /// to `default` (JSON `null` counts as absent where `default` is null).
    pub fn default_only(
        &mut self,
        key: &'static str,
        default: Value,
        what: &str,
    ) -> Result<(), GraphError> {
        match self.take(key) {
            None => Ok(()),
            Some(v) if v == default => Ok(()),
            Some(Value::Array(a)) if a.iter().all(|x| *x == default) => Ok(()),
            Some(v) => Err(self.error(format!(
                "argument {key:?} = {v} is not supported (gdl-gpu supports only {what})"
            ))),
        }
    }

    /// Regularizers and constraints: only none.
    pub fn none_only(&mut self, keys: &[&'static str]) -> Result<(), GraphError> {
        for &k in keys {
            self.default_only(k, Value::Null, "null: none")?;
        }
        Ok(())
    }

    /// An initializer: only `class` (Keras's class name, or its snake_case
    /// string form), with no seed.
    pub fn initializer(&mut self, key: &'static str, class: &str) -> Result<(), GraphError> {
        let Some(v) = self.take(key) else {
            return Ok(());
        };
        let snake = snake_case(class);
        let ok = match &v {
            Value::String(s) => s == class || *s == snake,
            Value::Object(o) => {
                o.get("class_name").and_then(Value::as_str) == Some(class)
                    && o.get("config")
                        .and_then(Value::as_object)
                        .is_none_or(|c| c.get("seed").is_none_or(Value::is_null))
            }
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(self.error(format!(
                "argument {key:?} = {v} is not supported (gdl-gpu initializes it only with {snake:?}, Keras's default)"
            )))
        }
    }

    /// Nothing may be left: an argument not taken is unknown to this layer.
    pub fn finish(self) -> Result<(), GraphError> {
        let Some(key) = self.map.keys().next() else {
            return Ok(());
        };
        let hint = self
            .known
            .iter()
            .filter(|k| edit_distance(k, key) <= 2)
            .min_by_key(|k| edit_distance(k, key))
            .map(|k| format!(" (did you mean {k:?}?)"))
            .unwrap_or_default();
        let takes = if self.known.is_empty() {
            "it takes no arguments".to_owned()
        } else {
            format!("it takes {}", quoted(&self.known))
        };
        Err(self.error(format!("unknown argument {key:?}{hint}; {takes}")))
    }
}

/// "GlorotUniform" → "glorot_uniform".
fn snake_case(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn quoted(v: &[&str]) -> String {
    v.iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Levenshtein distance, for "did you mean" hints.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

/// Builds an argument map for `to_args` (the canonical description).
#[derive(Default)]
pub struct ArgsOut(pub Map<String, Value>);

impl ArgsOut {
    /// Adds `key` = `v`.
    pub fn set(mut self, key: &str, v: impl Into<Value>) -> Self {
        self.0.insert(key.to_owned(), v.into());
        self
    }

    /// An f32 by its shortest decimal form (0.2, not 0.20000000298…).
    pub fn float(self, key: &str, x: f32) -> Self {
        let v: f64 = x.to_string().parse().unwrap_or(x as f64);
        self.set(key, v)
    }

    /// A pair, written as one number when both agree.
    pub fn pair(self, key: &str, p: [usize; 2]) -> Self {
        if p[0] == p[1] {
            self.set(key, p[0])
        } else {
            self.set(key, vec![p[0], p[1]])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance() {
        assert_eq!(edit_distance("filters", "filtres"), 2);
        assert_eq!(edit_distance("units", "unit"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn unknown_argument_names_the_close_one() {
        let mut m = Map::new();
        m.insert("filtres".into(), 3.into());
        let mut a = Args::new("conv2d", "Conv2D", m);
        assert!(a.int("filters", None, 1).is_err());
        let e = a.finish().unwrap_err().to_string();
        assert!(
            e.contains("\"filtres\"") && e.contains("did you mean \"filters\""),
            "{e}"
        );
    }
}
