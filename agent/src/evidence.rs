//! Evidence images: the analysed frame with the zone outline and the boxes of the objects that
//! raised the incident, encoded as JPEG by the `image` crate's encoder.

use image::codecs::jpeg::JpegEncoder;
use image::{ExtendedColorType, ImageEncoder};
use sha2::{Digest, Sha256};

use crate::detect::Detection;
use crate::rules::geometry::Point;

/// An encoded evidence image.
#[derive(Debug, Clone)]
pub struct Jpeg {
    /// JPEG bytes.
    pub bytes: Vec<u8>,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

impl Jpeg {
    /// sha256 of the bytes, lower-case hex.
    pub fn sha256(&self) -> String {
        Sha256::digest(&self.bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

const ZONE: [u8; 3] = [255, 200, 0];
const OBJECT: [u8; 3] = [255, 40, 40];

/// A mutable packed RGB canvas.
struct Canvas<'a> {
    w: i64,
    h: i64,
    px: &'a mut [u8],
}

impl Canvas<'_> {
    fn dot(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x >= 0 && y >= 0 && x < self.w && y < self.h {
            let i = ((y * self.w + x) * 3) as usize;
            self.px[i..i + 3].copy_from_slice(&c);
        }
    }

    /// A line `thick` pixels wide (Bresenham, thickened with a square pen).
    fn line(&mut self, a: (i64, i64), b: (i64, i64), thick: i64, c: [u8; 3]) {
        let (mut x, mut y) = a;
        let (dx, dy) = ((b.0 - a.0).abs(), -(b.1 - a.1).abs());
        let (sx, sy) = (
            if a.0 < b.0 { 1 } else { -1 },
            if a.1 < b.1 { 1 } else { -1 },
        );
        let mut err = dx + dy;
        loop {
            for ox in 0..thick {
                for oy in 0..thick {
                    self.dot(x + ox - thick / 2, y + oy - thick / 2, c);
                }
            }
            if (x, y) == b {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }
}

/// Draw `zone` and `objects` on a copy of the frame and encode it (quality 1–100).
pub fn annotate(
    width: u32,
    height: u32,
    rgb: &[u8],
    zone: &[Point],
    objects: &[Detection],
    quality: u8,
) -> Result<Jpeg, image::ImageError> {
    let mut px = rgb.to_vec();
    let (w, h) = (i64::from(width), i64::from(height));
    let mut c = Canvas { w, h, px: &mut px };
    let to_px = |p: [f64; 2]| {
        (
            (p[0] * (w - 1) as f64).round() as i64,
            (p[1] * (h - 1) as f64).round() as i64,
        )
    };
    let thick = (w / 320).max(2);
    for i in 0..zone.len() {
        c.line(
            to_px(zone[i]),
            to_px(zone[(i + 1) % zone.len()]),
            thick,
            ZONE,
        );
    }
    for d in objects {
        let b = d.bbox.map(f64::from);
        let corners = [[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]]];
        for i in 0..4 {
            c.line(
                to_px(corners[i]),
                to_px(corners[(i + 1) % 4]),
                thick,
                OBJECT,
            );
        }
    }
    let mut bytes = Vec::new();
    JpegEncoder::new_with_quality(&mut bytes, quality.clamp(1, 100)).write_image(
        &px,
        width,
        height,
        ExtendedColorType::Rgb8,
    )?;
    Ok(Jpeg {
        bytes,
        width,
        height,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_and_encodes_a_decodable_jpeg() {
        let (w, h) = (64u32, 48u32);
        let rgb = vec![0u8; (w * h * 3) as usize];
        let det = Detection {
            class: 0,
            score: 0.9,
            bbox: [0.25, 0.25, 0.75, 0.75],
        };
        let zone = [[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]];
        let jpeg = annotate(w, h, &rgb, &zone, &[det], 90).expect("encode");
        assert_eq!(&jpeg.bytes[..2], &[0xFF, 0xD8]);
        assert_eq!(jpeg.sha256().len(), 64);
        let img = image::load_from_memory(&jpeg.bytes)
            .expect("decode")
            .to_rgb8();
        assert_eq!(img.dimensions(), (w, h));
        // The box's top-left corner is red-ish, the middle of the box is still black.
        let corner = img.get_pixel(16, 12);
        assert!(corner[0] > 150 && corner[1] < 120, "{corner:?}");
        let centre = img.get_pixel(32, 20);
        assert!(centre[0] < 40, "{centre:?}");
    }
}
