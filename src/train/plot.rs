//! Training curves: loss and accuracy per epoch, train and test, drawn as a
//! PNG in the run folder. Rendered in memory by plotters' bitmap backend
//! with DejaVu Sans compiled into the binary (no system fonts, so a headless
//! server draws the same picture as a desktop), written as PNG by
//! [`crate::render::save_image`].

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use thiserror::Error;

use super::fit::EpochReport;
use crate::render::{save_image, SaveError};

/// Width of the picture in pixels: two panels side by side.
pub const PLOT_WIDTH: u32 = 1200;
/// Height of the picture in pixels.
pub const PLOT_HEIGHT: u32 = 450;

const TRAIN_COLOR: RGBColor = RGBColor(31, 119, 180);
const TEST_COLOR: RGBColor = RGBColor(255, 127, 14);

/// Why the training plot could not be drawn or written.
#[derive(Debug, Error)]
pub enum PlotError {
    /// The drawing library refused (bad coordinates, font missing).
    #[error("drawing the training plot: {0}")]
    Draw(String),
    /// The PNG encoder refused the picture.
    #[error("encoding the training plot as PNG: {0}")]
    Encode(image::ImageError),
    /// Writing the file failed (a missing folder, no permission, a full disk).
    #[error("{path}: {source}")]
    Io {
        /// The file being written: the temporary one, or the plot on rename.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

fn draw_err<E: std::fmt::Display>(e: E) -> PlotError {
    PlotError::Draw(e.to_string())
}

/// Registers the embedded font under every family name plotters may ask
/// for; plotters keeps it in a global table, so once per process.
fn register_fonts() -> Result<(), PlotError> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE.get_or_init(|| {
        ["sans-serif", "serif", "monospace"].iter().all(|family| {
            plotters::style::register_font(family, FontStyle::Normal, dejavu::sans::regular())
                .is_ok()
        })
    });
    if ok {
        Ok(())
    } else {
        Err(PlotError::Draw("the embedded font does not parse".into()))
    }
}

/// One panel's series: (label, colour, points).
type Series<'a> = [(&'a str, RGBColor, Vec<(f64, f64)>); 2];

fn panel(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    title: &str,
    y_label: &str,
    x_range: std::ops::Range<f64>,
    y_range: std::ops::Range<f64>,
    series: &Series<'_>,
    legend: SeriesLabelPosition,
) -> Result<(), PlotError> {
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x_range, y_range)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_label)
        .x_labels(10)
        // Epochs are whole numbers; plotters may put ticks between them.
        .x_label_formatter(&|x| {
            if x.fract() == 0.0 {
                format!("{x:.0}")
            } else {
                String::new()
            }
        })
        .light_line_style(RGBColor(236, 236, 236))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(draw_err)?;
    for (label, color, points) in series {
        let color = *color;
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(draw_err)?
            .label(*label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
        // Markers, so a single epoch still shows up.
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(draw_err)?;
    }
    chart
        .configure_series_labels()
        .position(legend)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(draw_err)?;
    Ok(())
}

/// Renders the curves to RGB8 pixels, `PLOT_WIDTH × PLOT_HEIGHT`.
pub fn render_training_plot(reports: &[EpochReport]) -> Result<Vec<u8>, PlotError> {
    register_fonts()?;
    let mut pixels = vec![0u8; (PLOT_WIDTH * PLOT_HEIGHT * 3) as usize];
    {
        let root =
            BitMapBackend::with_buffer(&mut pixels, (PLOT_WIDTH, PLOT_HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let (left, right) = root.split_horizontally(PLOT_WIDTH / 2);

        let points = |f: &dyn Fn(&EpochReport) -> f64| -> Vec<(f64, f64)> {
            reports
                .iter()
                .map(|r| (r.epoch as f64, f(r)))
                // A diverged epoch would wreck the axis range; it is
                // reported elsewhere (fit stops on a non-finite loss).
                .filter(|(_, y)| y.is_finite())
                .collect()
        };
        let first = reports.iter().map(|r| r.epoch).min().unwrap_or(1) as f64;
        let last = reports.iter().map(|r| r.epoch).max().unwrap_or(1) as f64;
        // Half an epoch of margin each side keeps the end markers inside.
        let x_range = first - 0.5..last.max(first + 1.0) + 0.5;

        let loss: Series<'_> = [
            ("train", TRAIN_COLOR, points(&|r| r.train.loss())),
            ("test", TEST_COLOR, points(&|r| r.test.loss())),
        ];
        let max_loss = loss
            .iter()
            .flat_map(|(_, _, p)| p.iter().map(|&(_, y)| y))
            .fold(0.0f64, f64::max);
        let loss_top = if max_loss > 0.0 { max_loss * 1.1 } else { 1.0 };
        // Legends go where the curves usually are not: loss falls, accuracy rises.
        panel(
            &left,
            "Loss",
            "loss",
            x_range.clone(),
            0.0..loss_top,
            &loss,
            SeriesLabelPosition::UpperRight,
        )?;

        let accuracy: Series<'_> = [
            ("train", TRAIN_COLOR, points(&|r| r.train.accuracy())),
            ("test", TEST_COLOR, points(&|r| r.test.accuracy())),
        ];
        panel(
            &right,
            "Accuracy",
            "accuracy",
            x_range,
            0.0..1.0,
            &accuracy,
            SeriesLabelPosition::LowerRight,
        )?;
        root.present().map_err(draw_err)?;
    }
    Ok(pixels)
}

/// Draws loss and accuracy per epoch (train and test) to the PNG `path`.
/// Written to a temporary name and renamed, so a viewer refreshing the file
/// during training never sees half a picture.
pub fn write_training_plot(path: &Path, reports: &[EpochReport]) -> Result<(), PlotError> {
    let pixels = render_training_plot(reports)?;
    let img = image::RgbImage::from_raw(PLOT_WIDTH, PLOT_HEIGHT, pixels)
        .expect("the plot buffer is PLOT_WIDTH × PLOT_HEIGHT RGB8");
    save_image(&img, path, image::ImageFormat::Png).map_err(|e| match e {
        SaveError::Encode { source, .. } => PlotError::Encode(source),
        SaveError::Io { path, source } => PlotError::Io { path, source },
    })
}
