//! `gdl-gpu bench --compare`: several JSON reports (one per adapter) as one
//! table, rows = kernel and shape, columns = adapters, each cell the rate and
//! its speed relative to the first report.

use std::path::{Path, PathBuf};

use serde_json::Value;
use thiserror::Error;

/// Why a report could not be read.
#[derive(Debug, Error)]
pub enum CompareError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The report file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not JSON.
    #[error("{path}: not JSON: {source}")]
    Json {
        /// The report file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The JSON is not a bench report.
    #[error("{path}: not a gdl-gpu bench report: {message}")]
    Format {
        /// The report file.
        path: PathBuf,
        /// What is missing or wrong.
        message: String,
    },
}

/// One result row of a report.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Kernel name, e.g. `gemm_tiled`.
    pub kernel: String,
    /// Shape description, e.g. `32x8x8x64 global`.
    pub shape: String,
    /// The measured rate, in `unit`.
    pub rate: f64,
    /// The rate's unit, e.g. `GFLOP/s`, `GB/s`, `µs`.
    pub unit: String,
    /// Whether a larger rate is better (throughput) or worse (latency).
    pub higher_is_better: bool,
}

/// What `compare` needs of one report.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// `llvmpipe (LLVM 15.0.6, 256 bits) [Vulkan]`.
    pub adapter: String,
    /// "0.1.0 (abc1234)", or "?" when the report predates the field.
    pub build: String,
    /// When the report was made, as the report wrote it.
    pub date: String,
    /// Its results, in file order.
    pub rows: Vec<Row>,
}

impl Report {
    /// Reads a report from JSON `text`; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Report, CompareError> {
        let v: Value = serde_json::from_str(text).map_err(|source| CompareError::Json {
            path: path.to_owned(),
            source,
        })?;
        let bad = |message: String| CompareError::Format {
            path: path.to_owned(),
            message,
        };
        let adapter = v
            .get("adapter")
            .ok_or_else(|| bad("no \"adapter\" object".into()))?;
        let name = adapter
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no adapter \"name\"".into()))?;
        let backend = adapter
            .get("backend")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let build = match v.get("gdl_gpu") {
            Some(g) => format!(
                "{} ({})",
                g.get("version").and_then(Value::as_str).unwrap_or("?"),
                g.get("git_revision").and_then(Value::as_str).unwrap_or("?")
            ),
            None => v
                .get("gdl_gpu_version")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned(),
        };
        let results = v
            .get("results")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no \"results\" array".into()))?;
        let rows = results
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let text = |key: &str| {
                    r.get(key)
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .ok_or_else(|| bad(format!("result {i} has no string {key:?}")))
                };
                let rate = r
                    .get("rate")
                    .and_then(Value::as_f64)
                    .ok_or_else(|| bad(format!("result {i} has no number \"rate\"")))?;
                let unit = text("unit")?;
                // Reports written before the field had only rates.
                let higher_is_better = r
                    .get("higher_is_better")
                    .and_then(Value::as_bool)
                    .unwrap_or(!unit.starts_with("µs"));
                Ok(Row {
                    kernel: text("kernel")?,
                    shape: text("shape")?,
                    rate,
                    unit,
                    higher_is_better,
                })
            })
            .collect::<Result<_, CompareError>>()?;
        Ok(Report {
            adapter: format!("{name} [{backend}]"),
            build,
            date: v
                .get("date")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned(),
            rows,
        })
    }

    /// Reads and parses the report file at `path`.
    pub fn load(path: &Path) -> Result<Report, CompareError> {
        let text = std::fs::read_to_string(path).map_err(|source| CompareError::Io {
            path: path.to_owned(),
            source,
        })?;
        Report::parse(path, &text)
    }
}

/// Speed of `this` relative to `base`: above 1 is faster, whichever way
/// the unit runs. None when either is not a positive finite number.
pub fn speedup(base: &Row, this: &Row) -> Option<f64> {
    let ok = |x: f64| x.is_finite() && x > 0.0;
    if !ok(base.rate) || !ok(this.rate) || base.unit != this.unit {
        return None;
    }
    Some(if base.higher_is_better {
        this.rate / base.rate
    } else {
        base.rate / this.rate
    })
}

/// The table: a legend of the reports (column letters A, B, …), then one
/// line per kernel and shape in the order first seen. A cell is the rate,
/// and for columns after the first its speed relative to the first, e.g.
/// "×2.50" means 2.5 times as fast ("×?" when units differ or a rate is
/// not positive). "-" marks a row a report lacks.
pub fn format_comparison(reports: &[(PathBuf, Report)]) -> String {
    let letter = |i: usize| {
        if i < 26 {
            char::from(b'A' + i as u8).to_string()
        } else {
            format!("R{}", i + 1)
        }
    };
    let mut s = String::new();
    for (i, (path, r)) in reports.iter().enumerate() {
        s.push_str(&format!(
            "{}: {} | gdl-gpu {} | {} | {}\n",
            letter(i),
            r.adapter,
            r.build,
            r.date,
            path.display()
        ));
    }
    s.push_str("cells: rate (×speed relative to A; above 1 is faster)\n");

    let mut keys: Vec<(&str, &str)> = Vec::new();
    for (_, r) in reports {
        for row in &r.rows {
            let k = (row.kernel.as_str(), row.shape.as_str());
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    let find = |r: &'_ Report, k: (&str, &str)| -> Option<Row> {
        r.rows
            .iter()
            .find(|row| (row.kernel.as_str(), row.shape.as_str()) == k)
            .cloned()
    };
    const CELL: usize = 22;
    s.push_str(&format!("{:<28} {:<34} {:<12}", "kernel", "shape", "unit"));
    for i in 0..reports.len() {
        s.push_str(&format!(" {:>CELL$}", letter(i)));
    }
    s.push('\n');
    for k in keys {
        let base = reports.first().and_then(|(_, r)| find(r, k));
        let unit = reports
            .iter()
            .find_map(|(_, r)| find(r, k))
            .map(|r| r.unit)
            .unwrap_or_default();
        s.push_str(&format!("{:<28} {:<34} {:<12}", k.0, k.1, unit));
        for (i, (_, r)) in reports.iter().enumerate() {
            let cell = match find(r, k) {
                None => "-".to_owned(),
                Some(row) => {
                    let ratio = match (&base, i) {
                        (_, 0) => String::new(),
                        (Some(b), _) => speedup(b, &row)
                            .map(|x| format!(" (×{x:.2})"))
                            .unwrap_or_else(|| " (×?)".into()),
                        // Nothing to compare with: the rate alone.
                        (None, _) => String::new(),
                    };
                    // A differing unit would make the column misleading.
                    let unit = if row.unit == unit {
                        String::new()
                    } else {
                        format!(" {}", row.unit)
                    };
                    format!("{}{unit}{ratio}", fmt_rate(row.rate))
                }
            };
            s.push_str(&format!(" {cell:>CELL$}"));
        }
        s.push('\n');
    }
    s
}

/// Three significant digits or so, without an exponent for usual values.
fn fmt_rate(x: f64) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    let a = x.abs();
    if a >= 1000.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 0.01 || a == 0.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.2e}")
    }
}
