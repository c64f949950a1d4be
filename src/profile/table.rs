//! The text form of a profile: a table with columns sized to fit, then the
//! totals.

use super::Profile;

/// "1.23 MB", "456 kB".
fn human(bytes: f64) -> String {
    let units = ["B", "kB", "MB", "GB"];
    let mut v = bytes;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} {}", units[u])
    } else {
        format!("{v:.2} {}", units[u])
    }
}

fn us(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// `rows` as columns padded to their widest cell (by characters); columns
/// listed in `right` are right-aligned.
fn table(header: &[&str], rows: &[Vec<String>], right: &[usize]) -> String {
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| -> String {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let pad = " ".repeat(w[i] - c.chars().count());
                if right.contains(&i) {
                    format!("{pad}{c}")
                } else {
                    format!("{c}{pad}")
                }
            })
            .collect();
        parts.join("  ").trim_end().to_owned() + "\n"
    };
    let mut out = line(header.iter().map(|h| (*h).to_owned()).collect());
    let total: usize = w.iter().sum::<usize>() + 2 * (w.len() - 1);
    out.push_str(&"-".repeat(total));
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.clone()));
    }
    out
}

/// The table (columns sized to fit) and the totals below it.
pub fn render_text(p: &Profile) -> String {
    let gpu = p.totals.dispatches.is_some();
    let mut header = vec!["#", "layer", "phase", "kernel", "shape"];
    if gpu {
        header.push("disp");
    }
    header.extend(["median µs", "share", "rate"]);
    let rows: Vec<Vec<String>> = p
        .rows
        .iter()
        .map(|r| {
            let mut v = vec![
                r.index.to_string(),
                r.layer.clone(),
                r.phase.name().to_owned(),
                r.kernel_variant(),
                r.shape.clone(),
            ];
            if gpu {
                v.push(r.dispatches.unwrap_or(0).to_string());
            }
            v.push(us(r.median_us));
            v.push(format!("{:.1}%", r.share));
            v.push(match (r.gflops(), r.gbps()) {
                (Some(f), _) => format!("{f:.2} GFLOP/s"),
                (None, Some(b)) => format!("{b:.2} GB/s"),
                _ => "–".into(),
            });
            v
        })
        .collect();
    let n = header.len();
    let right = if gpu {
        vec![0, 5, 6, 7, 8]
    } else {
        vec![0, 5, 6, 7]
    };
    debug_assert_eq!(right.last(), Some(&(n - 1)));
    let mut out = format!(
        "Profile of {}, batch {}, on {}: median of {} timed steps after {} warm-up\n\
         Timing: {} [{}]\n\
         Shapes: M×N×K (op(A) M×K, op(B) K×N) for GEMMs; rates: GFLOP/s for GEMMs, else GB/s of the tensors read and written\n\n",
        p.model,
        p.batch,
        p.backend,
        p.steps,
        p.warmup,
        p.method.describe(),
        p.method.name()
    );
    out.push_str(&table(&header, &rows, &right));
    let t = &p.totals;
    out.push('\n');
    if !p.silent_layers.is_empty() {
        out.push_str(&format!(
            "Layers without instructions (views of their input): {}\n",
            p.silent_layers.join(", ")
        ));
    }
    if !p.fused_layers.is_empty() {
        out.push_str(&format!(
            "Layers fused into another's kernel: {}\n",
            p.fused_layers.join(", ")
        ));
    }
    match (t.dispatches, t.submits, t.profiled_submits) {
        (Some(d), Some(s), Some(ps)) => out.push_str(&format!(
            "Per step: {} instructions, {d} dispatches, {s} submit as training records it ({ps} in a timed step of this profile)\n",
            t.instructions
        )),
        _ => out.push_str(&format!(
            "Per step: {} instructions (the CPU backend: no dispatches or submits)\n",
            t.instructions
        )),
    }
    out.push_str(&format!(
        "Moved: {} (the tensors each instruction reads and writes, each once); {:.3} GFLOP in GEMMs\n",
        human(t.bytes as f64),
        t.flops * 1e-9
    ));
    let pct = |v: f64| {
        if t.step_wall_us > 0.0 {
            100.0 * v / t.step_wall_us
        } else {
            0.0
        }
    };
    out.push_str(&format!(
        "Step wall time (median of {} plain steps): {} µs; sum of instruction times: {} µs ({:.1}%); overhead: {} µs ({:.1}%)\n",
        p.steps,
        us(t.step_wall_us),
        us(t.instructions_us),
        pct(t.instructions_us),
        us(t.overhead_us),
        pct(t.overhead_us),
    ));
    if t.overhead_us < 0.0 {
        out.push_str(
            "(negative: the timed steps took longer than the plain ones: run-to-run variation, or what timing adds, such as timestamps, passes or submits between instructions)\n",
        );
    }
    out
}
