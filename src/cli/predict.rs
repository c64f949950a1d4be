//! `gdl-gpu predict`: classes predicted by a checkpoint, for random test
//! images (with the chapter's figure) or for one image of the user's.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use gdl_gpu::data::cifar10::{IMAGE_BYTES, IMAGE_SIDE};
use gdl_gpu::data::{Cifar10, Split, CLASS_NAMES};
use gdl_gpu::kernels::adam::AdamConfig;
use gdl_gpu::train::checkpoint;
use gdl_gpu::util::Rng;

use super::{make_backend, open_for, parse_model, parse_positive, BackendKind};

#[derive(Debug, Clone, Args)]
pub struct PredictArgs {
    /// Trained weights (written by `train`)
    #[arg(long, value_name = "FILE.safetensors")]
    pub checkpoint: PathBuf,
    /// Model (default: the checkpoint's; an error if it differs): a built-in or a model file
    #[arg(long, value_name = "NAME|PATH", value_parser = parse_model)]
    pub model: Option<String>,
    /// Number of test images to show
    #[arg(short = 'n', long, default_value = "10", value_name = "N", value_parser = parse_positive,
          allow_negative_numbers = true)]
    pub count: usize,
    /// Seed choosing the test images
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub seed: u64,
    /// Where to write the figure [default: predictions.png; with --image, none unless given]
    #[arg(long, value_name = "FILE.png")]
    pub out: Option<PathBuf>,
    /// Classify this image (PNG or JPEG) instead of test images (so -n/--count, --seed and
    /// --data, which choose test images, cannot go with it)
    #[arg(long, value_name = "FILE", conflicts_with_all = ["count", "seed", "data"])]
    pub image: Option<PathBuf>,
    /// CIFAR-10: the archive cifar-10-binary.tar.gz or the folder cifar-10-batches-bin
    /// (default: $GDL_GPU_DATA, else the cache folder, downloading when absent)
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,
    /// Where the ops run
    #[arg(long, value_enum, default_value_t = BackendKind::Auto)]
    pub backend: BackendKind,
    /// Substring of the adapter's name (see `gdl-gpu info`)
    #[arg(long, value_name = "NAME")]
    pub adapter: Option<String>,
    /// Threads of the CPU backend (default: all cores); results do not depend on it
    #[arg(long, value_name = "N", value_parser = super::parse_positive,
          allow_negative_numbers = true)]
    pub threads: Option<usize>,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

/// The user's image as a one-image split: resized to 32×32 RGB and laid
/// out CHW u8 like CIFAR-10's records, so it takes the dataset's path.
pub fn image_split(path: &Path) -> anyhow::Result<Split> {
    let img = image::ImageReader::open(path)
        .with_context(|| format!("cannot open {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("cannot read {}", path.display()))?
        .decode()
        .with_context(|| format!("{}: not a readable PNG or JPEG image", path.display()))?;
    let side = IMAGE_SIDE as u32;
    let rgb = image::imageops::resize(
        &img.to_rgb8(),
        side,
        side,
        image::imageops::FilterType::Triangle,
    );
    let plane = IMAGE_SIDE * IMAGE_SIDE;
    let mut pixels = vec![0u8; IMAGE_BYTES];
    for (i, p) in rgb.pixels().enumerate() {
        for c in 0..3 {
            pixels[c * plane + i] = p.0[c];
        }
    }
    Ok(Split {
        pixels,
        // Unused by prediction; any valid class.
        labels: vec![0],
        len: 1,
    })
}

/// The figure of test images when --out is not given.
const DEFAULT_FIGURE: &str = "predictions.png";

/// Writes a figure whole to a temporary name beside `path`, then renames
/// it: an interrupted run never leaves a half-written image. The format
/// follows `path`'s extension.
fn save_figure(fig: &image::RgbImage, path: &Path) -> anyhow::Result<()> {
    let format = image::ImageFormat::from_path(path).with_context(|| {
        format!(
            "--out {}: expected an image file name ending in .png (or .jpg)",
            path.display()
        )
    })?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create folder {}", dir.display()))?;
    }
    gdl_gpu::render::save_image(fig, path, format)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Classes by falling probability.
fn ranked(probs: &[f32]) -> Vec<(usize, f32)> {
    let mut r: Vec<(usize, f32)> = probs.iter().copied().enumerate().collect();
    r.sort_by(|a, b| b.1.total_cmp(&a.1));
    r
}

fn argmax(probs: &[f32]) -> usize {
    ranked(probs)[0].0
}

pub fn run(args: &PredictArgs) -> anyhow::Result<()> {
    let (info, graph) = super::checkpoint_model(&args.checkpoint, args.model.as_deref())?;
    let ck = checkpoint::load(&args.checkpoint, &graph)?;
    // The adapter before the data: a missing driver fails before a download.
    let gpu = open_for(args.backend, args.adapter.as_deref())?;
    let (split, indices) = match &args.image {
        Some(path) => (image_split(path)?, Vec::new()),
        None => {
            let test = Cifar10::load_test_or_download(args.data.as_deref())?;
            let n = args.count.min(test.len);
            let mut order: Vec<usize> = (0..test.len).collect();
            Rng::new(args.seed).shuffle(&mut order);
            order.truncate(n);
            let mut s = Split::default();
            for &i in &order {
                s.pixels.extend_from_slice(test.image(i));
                s.labels.push(test.labels[i]);
            }
            s.len = n;
            (s, order)
        }
    };
    let adam = AdamConfig {
        lr: ck.lr,
        ..AdamConfig::default()
    };
    let mut backend = make_backend(
        gpu.as_ref(),
        &graph,
        &split,
        &split,
        adam,
        ck.seed,
        &ck.values,
        gdl_gpu::tune::Policy::Cached,
    )?;
    let probs = backend.predict()?;

    if let Some(path) = &args.image {
        let top = ranked(&probs[0]);
        // The one-image figure, where --out asks for it: the image as the
        // network saw it (32×32), its prediction and that class's probability.
        if let Some(out) = &args.out {
            let captions = [[
                format!("pred = {}", CLASS_NAMES[top[0].0]),
                format!("p = {:.1}%", 100.0 * top[0].1),
            ]];
            save_figure(
                &gdl_gpu::render::predictions_figure(&[split.image(0)], IMAGE_SIDE, &captions),
                out,
            )?;
        }
        if args.json {
            let v = serde_json::json!({
                "image": path.display().to_string(),
                "model": info.model,
                "predicted": CLASS_NAMES[top[0].0],
                "classes": top.iter().map(|&(c, p)| serde_json::json!({
                    "class": CLASS_NAMES[c], "probability": p,
                })).collect::<Vec<_>>(),
                "figure": args.out.as_ref().map(|p| p.display().to_string()),
            });
            println!("{v}");
        } else {
            println!("{}: {}", path.display(), CLASS_NAMES[top[0].0]);
            for &(c, p) in top.iter().take(5) {
                println!("  {:<11}{:>7.2}%", CLASS_NAMES[c], 100.0 * p);
            }
            if let Some(out) = &args.out {
                println!("figure written to {}", out.display());
            }
        }
        return Ok(());
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_FIGURE));

    let images: Vec<&[u8]> = (0..split.len).map(|i| split.image(i)).collect();
    let captions: Vec<[String; 2]> = probs
        .iter()
        .zip(&split.labels)
        .map(|(p, &l)| {
            [
                format!("pred = {}", CLASS_NAMES[argmax(p)]),
                format!("act = {}", CLASS_NAMES[l as usize]),
            ]
        })
        .collect();
    save_figure(
        &gdl_gpu::render::predictions_figure(&images, IMAGE_SIDE, &captions),
        &out,
    )?;

    if args.json {
        let rows: Vec<_> = probs
            .iter()
            .zip(&split.labels)
            .zip(&indices)
            .map(|((p, &l), &i)| {
                serde_json::json!({
                    "test_index": i,
                    "actual": CLASS_NAMES[l as usize],
                    "predicted": CLASS_NAMES[argmax(p)],
                    "probabilities": CLASS_NAMES.iter().zip(p)
                        .map(|(c, &x)| ((*c).to_owned(), serde_json::json!(x)))
                        .collect::<serde_json::Map<_, _>>(),
                })
            })
            .collect();
        let v = serde_json::json!({
            "model": info.model,
            "figure": out.display().to_string(),
            "predictions": rows,
        });
        println!("{v}");
    } else {
        print!("{:>6}  {:<11}{:<11}", "image", "actual", "predicted");
        for c in CLASS_NAMES {
            print!("{:>7}", &c[..c.len().min(5)]);
        }
        println!();
        for ((p, &l), &i) in probs.iter().zip(&split.labels).zip(&indices) {
            print!(
                "{i:>6}  {:<11}{:<11}",
                CLASS_NAMES[l as usize],
                CLASS_NAMES[argmax(p)]
            );
            for x in p {
                print!("{:>7.3}", x);
            }
            println!();
        }
        let right = probs
            .iter()
            .zip(&split.labels)
            .filter(|(p, &l)| argmax(p) == l as usize)
            .count();
        println!(
            "{right}/{} right; figure written to {}",
            split.len,
            out.display()
        );
    }
    Ok(())
}
