//! The training plot: a real PNG of the promised size, with curves drawn.

use gdl_gpu::train::plot::{write_training_plot, PLOT_HEIGHT, PLOT_WIDTH};
use gdl_gpu::train::{EpochReport, Metrics};

fn report(epoch: usize, loss: f64, acc: f64) -> EpochReport {
    let m = |loss: f64, acc: f64| Metrics {
        loss_sum: loss * 1000.0,
        correct: (acc * 1000.0) as u64,
        examples: 1000,
    };
    EpochReport {
        epoch,
        train: m(loss, acc),
        test: m(loss * 1.1, acc * 0.95),
        train_seconds: 1.0,
        eval_seconds: 0.1,
        images_per_sec: 1000.0,
    }
}

/// Decodes the PNG at `path` into (width, height, RGB pixels).
fn decode(path: &std::path::Path) -> (u32, u32, Vec<u8>) {
    let reader = image::ImageReader::open(path).unwrap();
    assert_eq!(reader.format(), Some(image::ImageFormat::Png));
    let img = reader.decode().unwrap();
    assert_eq!(img.color(), image::ColorType::Rgb8);
    let (w, h) = (img.width(), img.height());
    (w, h, img.into_rgb8().into_raw())
}

/// Pixels of exactly `rgb`.
fn count(pixels: &[u8], rgb: [u8; 3]) -> usize {
    pixels.chunks_exact(3).filter(|p| *p == rgb).count()
}

#[test]
fn plot_of_synthetic_reports_is_a_png_with_curves() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("training.png");
    let reports: Vec<EpochReport> = (1..=12)
        .map(|e| report(e, 2.0 / e as f64, 0.3 + 0.04 * e as f64))
        .collect();
    write_training_plot(&path, &reports).unwrap();
    let (w, h, px) = decode(&path);
    assert_eq!((w, h), (PLOT_WIDTH, PLOT_HEIGHT));
    let total = (w * h) as usize;
    let white = count(&px, [255, 255, 255]);
    assert!(white < total, "the picture is blank");
    // Both series colours appear: lines with markers are many pixels each.
    let train = count(&px, [31, 119, 180]);
    let test = count(&px, [255, 127, 14]);
    assert!(
        train > 500 && test > 500,
        "train {train} / test {test} pixels"
    );
    // Text and axes are black-ish: the embedded font drew something.
    let dark = px
        .chunks_exact(3)
        .filter(|p| p.iter().all(|&c| c < 80))
        .count();
    assert!(dark > 1000, "only {dark} dark pixels: no text or axes");
    // The temporary file was renamed away.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("training.png")]);
}

#[test]
fn plot_handles_one_epoch_none_and_a_diverged_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.png");
    write_training_plot(&path, &[report(1, 1.5, 0.4)]).unwrap();
    assert_eq!(decode(&path).0, PLOT_WIDTH);
    write_training_plot(&path, &[]).unwrap();
    assert_eq!(decode(&path).1, PLOT_HEIGHT);
    let mut bad = report(2, 1.0, 0.5);
    bad.test.loss_sum = f64::NAN;
    write_training_plot(&path, &[report(1, 1.5, 0.4), bad]).unwrap();
    assert_eq!(decode(&path).0, PLOT_WIDTH);
}

#[test]
fn plot_to_an_unwritable_path_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/folder/p.png");
    let err = write_training_plot(&path, &[report(1, 1.0, 0.5)]).unwrap_err();
    assert!(matches!(err, gdl_gpu::train::PlotError::Io { .. }), "{err}");
    assert!(err.to_string().contains("p.png"), "{err}");
}

/// A valid CIFAR-10 folder of one record per batch file.
fn tiny_cifar(root: &std::path::Path) -> std::path::PathBuf {
    use gdl_gpu::data::cifar10::{BATCHES_DIR, IMAGE_BYTES, META_FILE, TEST_FILE, TRAIN_FILES};
    let dir = root.join(BATCHES_DIR);
    std::fs::create_dir_all(&dir).unwrap();
    let record = |label: u8| -> Vec<u8> {
        std::iter::once(label)
            .chain((0..IMAGE_BYTES).map(|i| (i * 13 % 256) as u8))
            .collect()
    };
    for (i, f) in TRAIN_FILES.iter().enumerate() {
        std::fs::write(dir.join(f), record(i as u8)).unwrap();
    }
    std::fs::write(dir.join(TEST_FILE), record(3)).unwrap();
    let names = gdl_gpu::data::CLASS_NAMES.join("\n");
    std::fs::write(dir.join(META_FILE), names).unwrap();
    dir
}

#[test]
fn train_draws_the_plot_in_its_run_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_cifar(tmp.path());
    let run = tmp.path().join("run");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gdl-gpu"))
        // The built-in kernel choice: no tuning time, and no writes to the user's tune cache.
        .env("GDL_GPU_TUNE", "off")
        .args([
            "train",
            "--model",
            "mlp",
            "--backend",
            "cpu",
            "--epochs",
            "3",
        ])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 3);
    let (w, h, px) = decode(&run.join("training.png"));
    assert_eq!((w, h), (PLOT_WIDTH, PLOT_HEIGHT));
    assert!(count(&px, [31, 119, 180]) > 100, "no train curve");
    assert!(!run.join("training.png.tmp").exists());
}
