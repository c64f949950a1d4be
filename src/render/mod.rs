//! Pictures: the chapter's prediction figure (test images in a row, each
//! with its predicted and actual class under it), drawn with a built-in
//! bitmap font so no system fonts are needed.

pub mod font;

use image::{Rgb, RgbImage};

/// Each image pixel becomes a SCALE×SCALE block (nearest neighbour): a
/// 32×32 CIFAR image is too small to see otherwise.
pub const SCALE: usize = 4;
pub const TEXT_SCALE: usize = 2;
pub const PAD: usize = 8;
/// Captions the cell is sized for: "pred = automobile", the longest.
pub const CAPTION_CHARS: usize = 17;
const LINE_GAP: usize = 6;

/// Width of one image's column.
fn cell_width(side: usize, captions: &[[String; 2]]) -> usize {
    let longest = captions
        .iter()
        .flatten()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(0)
        .max(CAPTION_CHARS);
    (side * SCALE).max(font::text_width(&"x".repeat(longest), TEXT_SCALE)) + PAD
}

/// Pixel size of the figure of `n` images of `side`×`side`, for captions
/// of at most `CAPTION_CHARS` characters.
pub fn figure_size(n: usize, side: usize) -> (u32, u32) {
    let w = PAD + n * cell_width(side, &[]);
    let h = PAD + side * SCALE + 2 * (LINE_GAP + font::GLYPH_H * TEXT_SCALE) + PAD;
    (w as u32, h as u32)
}

/// The figure: `images` are CHW u8 (3×side×side each), `captions` two lines
/// per image (e.g. "pred = cat", "act = dog"), on a white background.
pub fn predictions_figure(images: &[&[u8]], side: usize, captions: &[[String; 2]]) -> RgbImage {
    assert_eq!(images.len(), captions.len(), "one caption pair per image");
    let cell = cell_width(side, captions);
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
        let mut ty = PAD + side * SCALE + LINE_GAP;
        for line in lines {
            let tx = PAD + k * cell + (cell - PAD - font::text_width(line, TEXT_SCALE)) / 2;
            font::draw(line, tx, ty, TEXT_SCALE, |x, y| {
                img.put_pixel(x as u32, y as u32, Rgb([0, 0, 0]));
            });
            ty += font::GLYPH_H * TEXT_SCALE + LINE_GAP;
        }
    }
    img
}
