//! Pictures: the chapter's prediction figure (test images in a row, each
//! with its predicted and actual class under it), captioned in DejaVu Sans
//! compiled into the binary (no system fonts, so every machine draws the
//! same figure), and [`save_image`], the one writer of both that figure and
//! the training plot.

use std::path::{Path, PathBuf};

use ab_glyph::{point, Font, FontRef, PxScale, PxScaleFont, ScaleFont};
use image::{ImageFormat, Rgb, RgbImage};
use thiserror::Error;

use crate::data::CLASS_NAMES;

/// Each image pixel becomes a SCALE×SCALE block (nearest neighbour): a
/// 32×32 CIFAR image is too small to see otherwise.
pub const SCALE: usize = 4;
/// Caption font size: pixels per em.
pub const TEXT_PX: f32 = 16.0;
/// Pixels of white around the figure and between columns.
pub const PAD: usize = 8;
/// Pixels between the image and the first caption, and between captions.
const LINE_GAP: usize = 4;

/// DejaVu Sans at [`TEXT_PX`].
fn caption_font() -> PxScaleFont<FontRef<'static>> {
    FontRef::try_from_slice(dejavu::sans::regular())
        .expect("the embedded DejaVu Sans parses")
        .into_scaled(PxScale::from(TEXT_PX))
}

/// The pen's advance over `text`, in pixels (kerning included).
fn text_width(font: &PxScaleFont<FontRef<'static>>, text: &str) -> f32 {
    let mut width = 0.0;
    let mut prev = None;
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(p) = prev {
            width += font.kern(p, id);
        }
        width += font.h_advance(id);
        prev = Some(id);
    }
    width
}

/// Pixels from a caption line's top to its baseline.
fn ascent(font: &PxScaleFont<FontRef<'static>>) -> usize {
    font.ascent().ceil() as usize
}

/// Pixel height of one caption line: ascent plus descent.
fn line_height(font: &PxScaleFont<FontRef<'static>>) -> usize {
    ascent(font) + (-font.descent()).ceil() as usize
}

/// Width of one image's column: the image or the widest caption, whichever
/// is wider (at least `pred = <class>` for every class), plus [`PAD`].
fn cell_width(
    font: &PxScaleFont<FontRef<'static>>,
    side: usize,
    captions: &[[String; 2]],
) -> usize {
    let standard = CLASS_NAMES
        .iter()
        .map(|name| text_width(font, &format!("pred = {name}")));
    let given = captions.iter().flatten().map(|c| text_width(font, c));
    let widest = standard.chain(given).fold(0.0f32, f32::max);
    (side * SCALE).max(widest.ceil() as usize) + PAD
}

/// Top row of caption `line` (0 or 1) in a figure of `side`×`side` images.
fn caption_top(font: &PxScaleFont<FontRef<'static>>, side: usize, line: usize) -> usize {
    PAD + side * SCALE + LINE_GAP + line * (line_height(font) + LINE_GAP)
}

/// Pixel size (width, height) of the figure of `n` images of
/// `side`×`side`, for captions no wider than `pred = <class>` (the widest
/// is `pred = automobile`); [`predictions_figure`] widens the columns for
/// longer ones.
pub fn figure_size(n: usize, side: usize) -> (u32, u32) {
    let font = caption_font();
    let w = PAD + n * cell_width(&font, side, &[]);
    let h = caption_top(&font, side, 2) - LINE_GAP + PAD;
    (w as u32, h as u32)
}

/// Draws `text` in black with its pen starting at `x` on the pixel row
/// boundary `baseline`, darkening each pixel by the glyphs' coverage
/// (antialiased); what falls outside `img` is clipped.
fn draw_text(
    img: &mut RgbImage,
    font: &PxScaleFont<FontRef<'static>>,
    text: &str,
    x: f32,
    baseline: f32,
) {
    let mut pen = x;
    let mut prev = None;
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(p) = prev {
            pen += font.kern(p, id);
        }
        prev = Some(id);
        let glyph = id.with_scale_and_position(font.scale(), point(pen, baseline));
        pen += font.h_advance(id);
        let Some(outline) = font.outline_glyph(glyph) else {
            continue; // a space
        };
        let bounds = outline.px_bounds();
        outline.draw(|gx, gy, coverage| {
            let px = bounds.min.x as i64 + gx as i64;
            let py = bounds.min.y as i64 + gy as i64;
            if px < 0 || py < 0 || px >= img.width() as i64 || py >= img.height() as i64 {
                return;
            }
            let keep = 1.0 - coverage.clamp(0.0, 1.0);
            let p = img.get_pixel_mut(px as u32, py as u32);
            for ch in &mut p.0 {
                *ch = (f32::from(*ch) * keep).round() as u8;
            }
        });
    }
}

/// The figure: the CHW u8 `images` (3 planes of `side`×`side`) in a row on
/// white, each scaled by [`SCALE`] and centred over its two caption lines
/// (`captions[i]`, centred, black DejaVu Sans at [`TEXT_PX`]). Panics
/// unless there is one caption pair per image and each image holds
/// `3 · side²` bytes.
pub fn predictions_figure(images: &[&[u8]], side: usize, captions: &[[String; 2]]) -> RgbImage {
    assert_eq!(images.len(), captions.len(), "one caption pair per image");
    let font = caption_font();
    let cell = cell_width(&font, side, captions);
    let (_, h) = figure_size(images.len(), side);
    let w = PAD + images.len() * cell;
    let mut img = RgbImage::from_pixel(w as u32, h, Rgb([255, 255, 255]));
    let plane = side * side;
    for (k, (chw, lines)) in images.iter().zip(captions).enumerate() {
        assert_eq!(chw.len(), 3 * plane, "CHW image of side {side}");
        let x0 = PAD + k * cell + (cell - PAD - side * SCALE) / 2;
        for y in 0..side * SCALE {
            for x in 0..side * SCALE {
                let p = (y / SCALE) * side + x / SCALE;
                let rgb = [chw[p], chw[plane + p], chw[2 * plane + p]];
                img.put_pixel((x0 + x) as u32, (PAD + y) as u32, Rgb(rgb));
            }
        }
        for (i, line) in lines.iter().enumerate() {
            let (x, baseline) = caption_origin(&font, side, cell, k, i, line);
            draw_text(&mut img, &font, line, x, baseline);
        }
    }
    img
}

/// Where caption `line` (0 or 1) of column `k` starts its pen, and its
/// baseline (a whole pixel row), for columns `cell` wide.
fn caption_origin(
    font: &PxScaleFont<FontRef<'static>>,
    side: usize,
    cell: usize,
    k: usize,
    line: usize,
    text: &str,
) -> (f32, f32) {
    let inner = (cell - PAD) as f32;
    // A whole-pixel start keeps every column's captions rendered alike.
    let x = (PAD + k * cell) as f32 + ((inner - text_width(font, text)) / 2.0).round();
    let baseline = caption_top(font, side, line) + ascent(font);
    (x, baseline as f32)
}

/// Why [`save_image`] failed.
#[derive(Debug, Error)]
pub enum SaveError {
    /// The encoder refused the picture (or the format cannot hold RGB8).
    #[error("encoding {path}: {source}")]
    Encode {
        /// The file that was to be written.
        path: PathBuf,
        /// The encoder's error.
        #[source]
        source: image::ImageError,
    },
    /// Writing the temporary file or renaming it failed (a missing folder,
    /// no permission, a full disk).
    #[error("{path}: {source}")]
    Io {
        /// The file being written: the temporary one, or `path` on rename.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// Encodes `img` as `format` (PNG; JPEG for a `.jpg` figure) and writes it
/// to `path`, through a temporary file beside it that is renamed over
/// `path`, so a viewer never sees half a picture; the temporary file is
/// removed on failure. The folder must exist.
pub fn save_image(img: &RgbImage, path: &Path, format: ImageFormat) -> Result<(), SaveError> {
    let mut encoded = std::io::Cursor::new(Vec::new());
    img.write_to(&mut encoded, format)
        .map_err(|source| SaveError::Encode {
            path: path.to_owned(),
            source,
        })?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
    tmp_name.push(format!(".part-{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let written = std::fs::write(&tmp, encoded.get_ref())
        .map_err(|source| SaveError::Io {
            path: tmp.clone(),
            source,
        })
        .and_then(|()| {
            std::fs::rename(&tmp, path).map_err(|source| SaveError::Io {
                path: path.to_owned(),
                source,
            })
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 32×32 CHW image of one colour.
    fn flat(rgb: [u8; 3]) -> Vec<u8> {
        rgb.iter().flat_map(|&c| [c; 32 * 32]).collect()
    }

    fn captions() -> Vec<[String; 2]> {
        vec![
            ["pred = frog".into(), "act = dog".into()],
            ["airplane".into(), "act = cat".into()],
        ]
    }

    /// Pixels darker than mid-grey in columns `xs` and rows `ys`.
    fn dark(img: &RgbImage, xs: std::ops::Range<u32>, ys: std::ops::Range<u32>) -> usize {
        ys.flat_map(|y| xs.clone().map(move |x| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y).0.iter().all(|&c| c < 128))
            .count()
    }

    #[test]
    fn captions_are_dark_antialiased_text_with_descenders_below_the_baseline() {
        let (red, blue) = (flat([200, 30, 30]), flat([30, 30, 200]));
        let caps = captions();
        let img = predictions_figure(&[&red, &blue], 32, &caps);
        assert_eq!(img.dimensions(), figure_size(2, 32));

        let font = caption_font();
        let cell = cell_width(&font, 32, &caps);
        let text_top = caption_top(&font, 32, 0) as u32;
        // Under the images: only greys, from white through antialiased
        // edges to black ink.
        let mut shades = std::collections::BTreeSet::new();
        for y in text_top..img.height() {
            for x in 0..img.width() {
                let [r, g, b] = img.get_pixel(x, y).0;
                assert!(
                    r == g && g == b,
                    "colour ({r}, {g}, {b}) in a caption at ({x}, {y})"
                );
                shades.insert(r);
            }
        }
        assert!(
            shades.contains(&255) && shades.first() < Some(&40),
            "{shades:?}"
        );
        assert!(
            shades.len() > 20,
            "no antialiasing: {} shades",
            shades.len()
        );
        let white = (text_top..img.height())
            .flat_map(|y| (0..img.width()).map(move |x| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y).0 == [255; 3])
            .count() as u32;
        assert!(
            white > (img.height() - text_top) * img.width() * 3 / 4,
            "mostly white"
        );

        // The columns a prefix `before` .. `before + glyphs` of caption
        // `line` of column `k` occupies, give or take a pixel of ink.
        let span = |k: usize, line: usize, before: &str, glyphs: &str| {
            let text = &caps[k][line];
            let (x, _) = caption_origin(&font, 32, cell, k, line, text);
            let a = x + text_width(&font, before);
            let b = x + text_width(&font, &format!("{before}{glyphs}"));
            (a.floor() as u32 + 1)..(b.ceil() as u32 - 1)
        };
        let baseline = |line: usize| {
            let (_, b) = caption_origin(&font, 32, cell, 0, line, "");
            b as u32
        };
        // The lowest row of caption `line` holding a dark pixel in columns
        // `xs`. Round letters overshoot the baseline by a fraction of a
        // pixel, too little to darken the row under it past mid-grey.
        let lowest = |line: usize, xs: std::ops::Range<u32>| {
            let top = caption_top(&font, 32, line) as u32;
            (top..top + line_height(&font) as u32)
                .rev()
                .find(|&y| dark(&img, xs.clone(), y..y + 1) > 0)
        };
        let above = |line: usize| baseline(line) - 8..baseline(line);

        for (k, line, before, glyph) in [
            (0, 0, "", "p"),
            (0, 0, "pred = fro", "g"),
            (0, 1, "act = do", "g"),
            (1, 0, "air", "p"),
        ] {
            let xs = span(k, line, before, glyph);
            assert!(
                dark(&img, xs.clone(), above(line)) > 0,
                "{glyph:?} above the baseline"
            );
            // DejaVu's descenders reach about 0.24 em (4 pixels) below it.
            let low = lowest(line, xs).unwrap();
            let base = baseline(line);
            assert!(
                low >= base + 2,
                "{glyph:?} of {:?}: ink ends on row {low}, the baseline is {base}",
                caps[k][line]
            );
        }
        for k in 0..2 {
            let xs = span(k, 1, "", "act");
            assert!(dark(&img, xs.clone(), above(1)) > 20, "\"act\" is drawn");
            let low = lowest(1, xs).unwrap();
            assert!(
                low < baseline(1),
                "\"act\" has ink on row {low}, under the baseline"
            );
        }
    }

    #[test]
    fn figure_size_matches_figures_of_class_captions() {
        let img = flat([0, 128, 255]);
        for n in [1, 3] {
            for name in CLASS_NAMES {
                let caps = vec![[format!("pred = {name}"), format!("act = {name}")]; n];
                let fig = predictions_figure(&vec![&img[..]; n], 32, &caps);
                assert_eq!(fig.dimensions(), figure_size(n, 32), "{name}");
            }
        }
        // The image still shows, scaled and unfiltered.
        let fig = predictions_figure(&[&img], 32, &captions()[..1]);
        let (w, _) = fig.dimensions();
        let x0 = (w - 32 * SCALE as u32) / 2;
        assert_eq!(fig.get_pixel(x0, PAD as u32).0, [0, 128, 255]);
        assert_eq!(fig.get_pixel(x0 - 1, PAD as u32).0, [255; 3]);
    }

    #[test]
    fn save_image_writes_a_whole_png_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fig.png");
        let fig = predictions_figure(&[&flat([1, 2, 3])], 32, &captions()[..1]);
        save_image(&fig, &path, ImageFormat::Png).unwrap();
        assert_eq!(image::open(&path).unwrap().to_rgb8(), fig);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
        let err = save_image(&fig, &dir.path().join("no/fig.png"), ImageFormat::Png).unwrap_err();
        assert!(matches!(err, SaveError::Io { .. }), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
