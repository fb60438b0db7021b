//! Evidence images: the analysed frame with the zone or line of the incident and the objects
//! that raised it (box, label, track id, score), scaled to at most `max_width`, encoded as JPEG
//! (the `jpeg-encoder` crate, based in part on the work of the Independent JPEG Group; AVX2 on
//! x86 when the CPU has it), and kept under `max_bytes` by lowering the quality and then the
//! size.
//!
//! Text is drawn with a built-in 5×7 bitmap font (upper case, digits, a few signs), enough for
//! `PERSON #12 0.87` without a font file on the box.

use image::RgbImage;

pub use crate::config::EvidenceSettings;
use crate::detect::FrameView;
use crate::geometry::Point;
use crate::hash::sha256_hex;

/// Why no evidence image could be made.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// The frame buffer does not match its size.
    #[error("frame is {0} bytes, expected {1} for its size")]
    BadFrame(usize, usize),
    /// A picture larger than JPEG allows.
    #[error("a {0}×{1} picture is larger than JPEG allows (65 535 pixels a side)")]
    Size(u32, u32),
    /// The encoder failed.
    #[error("JPEG encoder: {0}")]
    Encode(#[from] jpeg_encoder::EncodingError),
    /// Even the smallest version is too big.
    #[error(
        "the smallest evidence JPEG is {0} bytes at {1} px wide, above the {2}-byte limit (evidence.max_bytes, and mqtt.max_message_bytes or what the broker refused)"
    )]
    TooBig(usize, u32, usize),
}

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
        sha256_hex(&self.bytes)
    }
}

/// What to outline: the incident's zone or line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Overlay<'a> {
    /// Zone polygon (normalised).
    pub polygon: &'a [Point],
    /// Line `(a, b)` (normalised).
    pub line: Option<(Point, Point)>,
}

/// One object to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    /// Box `[x1, y1, x2, y2]`, normalised.
    pub bbox: [f32; 4],
    /// Caption, e.g. `person #12 0.87`.
    pub text: String,
}

const ZONE: [u8; 3] = [255, 200, 0];
const OBJECT: [u8; 3] = [255, 40, 40];
const TEXT: [u8; 3] = [255, 255, 255];
const TEXT_BG: [u8; 3] = [20, 20, 20];

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

    fn fill(&mut self, x: i64, y: i64, w: i64, h: i64, c: [u8; 3]) {
        for yy in y..y + h {
            for xx in x..x + w {
                self.dot(xx, yy, c);
            }
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
            self.fill(x - thick / 2, y - thick / 2, thick, thick, c);
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

    /// `text` at (x, y) (top-left), each font pixel `scale` pixels, on a dark band.
    fn text(&mut self, x: i64, y: i64, text: &str, scale: i64) {
        let n = text.chars().count() as i64;
        self.fill(x, y, n * 6 * scale + scale, 9 * scale, TEXT_BG);
        for (i, ch) in text.chars().enumerate() {
            let rows = glyph(ch);
            let gx = x + scale + i as i64 * 6 * scale;
            for (r, bits) in rows.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        self.fill(
                            gx + col * scale,
                            y + scale + r as i64 * scale,
                            scale,
                            scale,
                            TEXT,
                        );
                    }
                }
            }
        }
    }
}

/// 5×7 glyphs, one byte per row, bit 4 leftmost. Lower case is drawn as upper case.
fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_uppercase() {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        ' ' => [0; 7],
        '.' => [0, 0, 0, 0, 0, 0x0C, 0x0C],
        '-' => [0, 0, 0, 0x1F, 0, 0, 0],
        '_' => [0, 0, 0, 0, 0, 0, 0x1F],
        ':' => [0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0],
        '#' => [0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A],
        '%' => [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
        _ => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04],
    }
}

fn draw(img: &mut RgbImage, overlays: &[Overlay<'_>], marks: &[Mark]) {
    let (w, h) = (i64::from(img.width()), i64::from(img.height()));
    let mut c = Canvas {
        w,
        h,
        px: img.as_mut(),
    };
    let to_px = |p: [f64; 2]| {
        (
            (p[0] * (w - 1) as f64).round() as i64,
            (p[1] * (h - 1) as f64).round() as i64,
        )
    };
    let thick = (w / 320).max(2);
    let scale = (w / 400).max(1);
    for overlay in overlays {
        let poly = overlay.polygon;
        for i in 0..poly.len() {
            c.line(
                to_px(poly[i]),
                to_px(poly[(i + 1) % poly.len()]),
                thick,
                ZONE,
            );
        }
        if let Some((a, b)) = overlay.line {
            c.line(to_px(a), to_px(b), thick * 2, ZONE);
            for (name, p) in [("A", a), ("B", b)] {
                let (x, y) = to_px(p);
                c.text(x - 3 * scale, y - 12 * scale, name, scale);
            }
        }
    }
    for m in marks {
        let b = m.bbox.map(f64::from);
        let corners = [[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]]];
        for i in 0..4 {
            c.line(
                to_px(corners[i]),
                to_px(corners[(i + 1) % 4]),
                thick,
                OBJECT,
            );
        }
        if !m.text.is_empty() {
            let (x, y) = to_px(corners[0]);
            let y = if y >= 9 * scale {
                y - 9 * scale
            } else {
                y + thick
            };
            c.text(x, y, &m.text, scale);
        }
    }
}

fn encode(img: &RgbImage, quality: u8) -> Result<Vec<u8>, EvidenceError> {
    let (Ok(w), Ok(h)) = (u16::try_from(img.width()), u16::try_from(img.height())) else {
        return Err(EvidenceError::Size(img.width(), img.height()));
    };
    let mut bytes = Vec::new();
    jpeg_encoder::Encoder::new(&mut bytes, quality.clamp(1, 100)).encode(
        img.as_raw(),
        w,
        h,
        jpeg_encoder::ColorType::Rgb,
    )?;
    Ok(bytes)
}

fn scaled(frame: &RgbImage, width: u32) -> RgbImage {
    if width >= frame.width() {
        return frame.clone();
    }
    let height = ((u64::from(frame.height()) * u64::from(width)) / u64::from(frame.width())).max(1);
    image::imageops::resize(
        frame,
        width,
        height as u32,
        image::imageops::FilterType::Triangle,
    )
}

/// Draw `overlays` and `marks` on a copy of `frame` and encode it within `settings`.
pub fn annotate(
    frame: FrameView<'_>,
    overlays: &[Overlay<'_>],
    marks: &[Mark],
    settings: &EvidenceSettings,
) -> Result<Jpeg, EvidenceError> {
    // A camera's I420 frame is converted here, once per picture (never on the way in).
    let full = frame
        .to_rgb()
        .and_then(|rgb| RgbImage::from_raw(frame.width, frame.height, rgb.into_owned()));
    let Some(full) = full else {
        return Err(EvidenceError::BadFrame(
            frame.data.len(),
            frame.expected_len(),
        ));
    };
    // Pictures shrink to fit down to 160 pixels wide, or the frame's own width when narrower (a
    // thermal camera's 80×60).
    let narrowest = frame.width.clamp(1, 160);
    let mut width = settings.max_width.clamp(narrowest, frame.width.max(1));
    loop {
        let mut img = scaled(&full, width);
        draw(&mut img, overlays, marks);
        let mut quality = settings.quality.clamp(1, 100);
        loop {
            let bytes = encode(&img, quality)?;
            if bytes.len() <= settings.max_bytes {
                return Ok(Jpeg {
                    bytes,
                    width: img.width(),
                    height: img.height(),
                });
            }
            if quality <= 30 {
                if width <= narrowest {
                    return Err(EvidenceError::TooBig(
                        bytes.len(),
                        width,
                        settings.max_bytes,
                    ));
                }
                break;
            }
            quality = quality.saturating_sub(15).max(30);
        }
        width = (width / 2).max(narrowest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(w: u32, h: u32) -> Vec<u8> {
        // Deterministic noise: hard to compress.
        let mut x = 12345u32;
        (0..w * h * 3)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn draws_boxes_text_and_zone_and_encodes_a_decodable_jpeg() {
        let (w, h) = (400u32, 300u32);
        let rgb = vec![0u8; (w * h * 3) as usize];
        let view = FrameView::rgb(w, h, &rgb);
        let zone = [[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]];
        let overlay = Overlay {
            polygon: &zone,
            line: None,
        };
        let marks = [Mark {
            bbox: [0.25, 0.25, 0.75, 0.75],
            text: "person #12 0.87".into(),
        }];
        let jpeg =
            annotate(view, &[overlay], &marks, &EvidenceSettings::default()).expect("encode");
        assert_eq!(&jpeg.bytes[..2], &[0xFF, 0xD8]);
        assert_eq!(jpeg.sha256().len(), 64);
        let img = image::load_from_memory(&jpeg.bytes)
            .expect("decode")
            .to_rgb8();
        assert_eq!(img.dimensions(), (w, h));
        // The box's left edge (below the caption) is red, the box's middle still black.
        let edge = img.get_pixel(100, 120);
        assert!(edge[0] > 150 && edge[1] < 120, "{edge:?}");
        let centre = img.get_pixel(200, 110);
        assert!(centre[0] < 40, "{centre:?}");
        // The caption above the box has white text pixels on its dark band.
        let band = (100..190).flat_map(|x| (66..75).map(move |y| (x, y)));
        let white = band.filter(|&(x, y)| img.get_pixel(x, y)[1] > 180).count();
        assert!(white > 30, "{white} white caption pixels");
        // The zone's top edge at y = 0.5 is yellow.
        let z = img.get_pixel(50, 150);
        assert!(z[0] > 180 && z[1] > 140 && z[2] < 100, "{z:?}");
    }

    #[test]
    fn wide_frames_are_scaled_and_big_ones_kept_under_max_bytes() {
        let (w, h) = (1920u32, 1080u32);
        let rgb = noise(w, h);
        let view = FrameView::rgb(w, h, &rgb);
        let settings = EvidenceSettings {
            max_width: 1280,
            quality: 95,
            max_bytes: 100 * 1024,
            on_update: false,
        };
        let jpeg = annotate(view, &[], &[], &settings).expect("encode");
        assert!(jpeg.bytes.len() <= 100 * 1024, "{} bytes", jpeg.bytes.len());
        assert!(jpeg.width <= 1280);
        assert_eq!(jpeg.width * 1080 / 1920, jpeg.height);
        // Below the JPEG headers alone (≈ 600 bytes of tables), nothing fits.
        let tiny = EvidenceSettings {
            max_bytes: 400,
            ..settings
        };
        let err = annotate(view, &[], &[], &tiny).unwrap_err();
        assert!(matches!(err, EvidenceError::TooBig(_, 160, 400)), "{err}");
    }

    #[test]
    fn any_frame_size_gets_a_picture_of_its_own_size_at_most() {
        // Thermal cameras are 80×60 to 384×288; odd sizes come from cropping encoders.
        let zone = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]];
        let overlay = Overlay {
            polygon: &zone,
            line: Some(([0.0, 0.5], [1.0, 0.5])),
        };
        let marks = [Mark {
            bbox: [0.0, 0.0, 1.0, 1.0],
            text: "fire #1 0.99".into(),
        }];
        for (w, h) in [
            (1, 1),
            (2, 2),
            (16, 16),
            (17, 9),
            (64, 64),
            (80, 60),
            (128, 96),
            (159, 120),
            (160, 2),
            (2, 400),
        ] {
            let i420 =
                vec![90u8; FrameView::i420(w, h, &[], crate::pixels::Yuv::BT601).expected_len()];
            let view = FrameView::i420(w, h, &i420, crate::pixels::Yuv::BT601);
            for max_bytes in [EvidenceSettings::default().max_bytes, 2000] {
                let settings = EvidenceSettings {
                    max_bytes,
                    ..EvidenceSettings::default()
                };
                match annotate(view, &[overlay], &marks, &settings) {
                    Ok(jpeg) => {
                        assert_eq!((jpeg.width, jpeg.height), (w, h), "{w}×{h}");
                        assert!(jpeg.bytes.len() <= max_bytes, "{w}×{h}");
                    }
                    // Only a budget below what the frame's own size needs is refused.
                    Err(EvidenceError::TooBig(_, width, _)) => {
                        assert!(max_bytes == 2000 && width == w, "{w}×{h} at {max_bytes}")
                    }
                    Err(e) => panic!("{w}×{h}: {e}"),
                }
            }
        }
    }

    #[test]
    fn a_short_buffer_is_an_error_not_a_panic() {
        let view = FrameView::rgb(10, 10, &[0u8; 12]);
        let err = annotate(view, &[], &[], &EvidenceSettings::default()).unwrap_err();
        assert!(matches!(err, EvidenceError::BadFrame(12, 300)));
    }
}
