//! Frame pixels as vigil receives them, and the colour conversions between the two layouts.
//!
//! Live cameras hand frames over in I420, the layout H.264/H.265 decoders produce: planar luma
//! at full resolution, then the two chroma planes at half resolution each way. Nothing converts
//! the whole frame on its way in; the pre-processor samples the model's input straight from the
//! planes, the picture checks read the luma plane, and only evidence pictures convert a whole
//! frame to RGB (once per rendered incident). Still images and offline tools use packed RGB.
//!
//! YUV → RGB follows the stream's colour matrix (BT.601, BT.709, …) and range (limited 16–235 or
//! full), as GStreamer reports them in the caps. Chroma samples sit at the centre of each 2×2
//! block of luma (JPEG siting); the quarter-pixel shift from MPEG-2's left siting is below what
//! the model input's resize resolves.

use std::borrow::Cow;

/// Linear YUV → RGB coefficients of one colour matrix and range:
/// `R = ky·Y + rv·V + r0`, `G = ky·Y + gu·U + gv·V + g0`, `B = ky·Y + bu·U + b0`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Yuv {
    ky: f32,
    rv: f32,
    gu: f32,
    gv: f32,
    bu: f32,
    r0: f32,
    g0: f32,
    b0: f32,
    /// Luma's black level and scale to full-range grey.
    y_black: f32,
    y_scale: f32,
}

impl Yuv {
    /// ITU-R BT.601 (SD), limited range: what GStreamer assumes for SD streams without
    /// colorimetry.
    pub const BT601: Yuv = Yuv::new(0.299, 0.114, false);
    /// ITU-R BT.709 (HD), limited range.
    pub const BT709: Yuv = Yuv::new(0.2126, 0.0722, false);

    /// The coefficients for luma weights `kr`, `kb` (`kg = 1 − kr − kb`), full or limited range.
    pub const fn new(kr: f32, kb: f32, full_range: bool) -> Yuv {
        let kg = 1.0 - kr - kb;
        let (y_black, y_scale, c_scale) = if full_range {
            (0.0, 1.0, 1.0)
        } else {
            (16.0, 255.0 / 219.0, 255.0 / 224.0)
        };
        let rv = (2.0 - 2.0 * kr) * c_scale;
        let bu = (2.0 - 2.0 * kb) * c_scale;
        let gu = -(2.0 * kb * (1.0 - kb) / kg) * c_scale;
        let gv = -(2.0 * kr * (1.0 - kr) / kg) * c_scale;
        let y0 = -y_black * y_scale;
        Yuv {
            ky: y_scale,
            rv,
            gu,
            gv,
            bu,
            r0: y0 - 128.0 * rv,
            g0: y0 - 128.0 * (gu + gv),
            b0: y0 - 128.0 * bu,
            y_black,
            y_scale,
        }
    }

    /// RGB of one sample, unrounded and unclamped.
    #[inline]
    pub fn rgb(&self, y: f32, u: f32, v: f32) -> [f32; 3] {
        let l = self.ky * y;
        [
            l + self.rv * v + self.r0,
            l + self.gu * u + self.gv * v + self.g0,
            l + self.bu * u + self.b0,
        ]
    }

    /// Full-range grey (0–255) of a luma value.
    #[inline]
    pub fn grey(&self, y: f32) -> f32 {
        ((y - self.y_black) * self.y_scale).clamp(0.0, 255.0)
    }
}

/// How a frame's bytes are laid out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Format {
    /// Packed RGB, `width * height * 3` bytes, no row padding.
    Rgb,
    /// Planar Y, U, V without row padding: `width * height` bytes of luma, then two planes of
    /// `⌈width/2⌉ * ⌈height/2⌉` bytes, with the colour matrix to convert them.
    I420(Yuv),
}

impl Format {
    /// Bytes of a `width`×`height` frame in this format.
    pub fn len(self, width: u32, height: u32) -> usize {
        let (w, h) = (width as usize, height as usize);
        match self {
            Format::Rgb => w * h * 3,
            Format::I420(_) => {
                let (cw, ch) = chroma_size(width, height);
                w * h + 2 * cw * ch
            }
        }
    }
}

/// Width and height of an I420 chroma plane.
pub fn chroma_size(width: u32, height: u32) -> (usize, usize) {
    (width.div_ceil(2) as usize, height.div_ceil(2) as usize)
}

/// A borrowed frame: its size, bytes and format.
#[derive(Debug, Clone, Copy)]
pub struct FrameView<'a> {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The bytes, as `format` says.
    pub data: &'a [u8],
    /// How `data` is laid out.
    pub format: Format,
}

/// The three planes of an I420 frame.
#[derive(Debug, Clone, Copy)]
pub struct Planes<'a> {
    /// Luma, `width` bytes per row.
    pub y: &'a [u8],
    /// Blue-difference chroma, `chroma_width` bytes per row.
    pub u: &'a [u8],
    /// Red-difference chroma.
    pub v: &'a [u8],
    /// Chroma plane width.
    pub chroma_width: usize,
    /// Chroma plane height.
    pub chroma_height: usize,
    /// The colour matrix.
    pub yuv: Yuv,
}

impl<'a> FrameView<'a> {
    /// A packed RGB frame.
    pub fn rgb(width: u32, height: u32, data: &'a [u8]) -> Self {
        FrameView {
            width,
            height,
            data,
            format: Format::Rgb,
        }
    }

    /// A planar I420 frame.
    pub fn i420(width: u32, height: u32, data: &'a [u8], yuv: Yuv) -> Self {
        FrameView {
            width,
            height,
            data,
            format: Format::I420(yuv),
        }
    }

    /// Bytes the format needs for the size.
    pub fn expected_len(&self) -> usize {
        self.format.len(self.width, self.height)
    }

    /// `Err` naming both lengths when `data` is too short for the size, or the size is empty.
    pub fn check(&self) -> Result<(), String> {
        let want = self.expected_len();
        if self.width == 0 || self.height == 0 {
            return Err(format!("empty frame ({}×{})", self.width, self.height));
        }
        if self.data.len() < want {
            return Err(format!(
                "a {}×{} frame needs {want} bytes, got {}",
                self.width,
                self.height,
                self.data.len()
            ));
        }
        Ok(())
    }

    /// The planes of an I420 frame (`None` for RGB or a short buffer).
    pub fn planes(&self) -> Option<Planes<'a>> {
        let Format::I420(yuv) = self.format else {
            return None;
        };
        self.check().ok()?;
        let n = self.width as usize * self.height as usize;
        let (cw, ch) = chroma_size(self.width, self.height);
        let (y, rest) = self.data.split_at(n);
        let (u, rest) = rest.split_at(cw * ch);
        Some(Planes {
            y,
            u,
            v: &rest[..cw * ch],
            chroma_width: cw,
            chroma_height: ch,
            yuv,
        })
    }

    /// The frame as packed RGB: borrowed when it already is, else converted (each pixel with
    /// its block's chroma sample). `None` when `data` is too short.
    pub fn to_rgb(&self) -> Option<Cow<'a, [u8]>> {
        self.check().ok()?;
        let Some(p) = self.planes() else {
            return Some(Cow::Borrowed(&self.data[..self.expected_len()]));
        };
        let w = self.width as usize;
        let t = Tables::of(&p.yuv);
        let mut out = vec![0u8; w * self.height as usize * 3];
        for (row, line) in out.chunks_exact_mut(w * 3).enumerate() {
            let ys = &p.y[row * w..][..w];
            let us = &p.u[(row / 2) * p.chroma_width..][..p.chroma_width];
            let vs = &p.v[(row / 2) * p.chroma_width..][..p.chroma_width];
            // Two pixels of a row share a chroma sample.
            let pairs = line.chunks_mut(6).zip(ys.chunks(2)).zip(us.iter().zip(vs));
            for ((px, luma), (&u, &v)) in pairs {
                let (u, v) = (usize::from(u), usize::from(v));
                let (r, g, b) = (t.rv[v], t.gu[u] + t.gv[v], t.bu[u]);
                for (dst, &y) in px.chunks_exact_mut(3).zip(luma) {
                    let y = t.y[usize::from(y)];
                    dst[0] = fixed_to_u8(y + r);
                    dst[1] = fixed_to_u8(y + g);
                    dst[2] = fixed_to_u8(y + b);
                }
            }
        }
        Some(Cow::Owned(out))
    }
}

/// A colour matrix as 16.16 fixed-point tables of each term, for converting whole frames
/// (evidence pictures): five lookups and three adds a pixel.
struct Tables {
    /// `ky·Y`, plus one half for rounding.
    y: [i32; 256],
    rv: [i32; 256],
    gu: [i32; 256],
    gv: [i32; 256],
    bu: [i32; 256],
}

impl Tables {
    fn of(m: &Yuv) -> Tables {
        let fixed = |v: f32| (v * 65536.0).round() as i32;
        let table = |f: &dyn Fn(f32) -> f32| std::array::from_fn(|i| fixed(f(i as f32)));
        Tables {
            y: table(&|y| m.ky * y + 0.5),
            rv: table(&|v| m.rv * v + m.r0),
            gu: table(&|u| m.gu * u + m.g0),
            gv: table(&|v| m.gv * v),
            bu: table(&|u| m.bu * u + m.b0),
        }
    }
}

/// A 16.16 fixed-point value, already offset by one half, truncated to a byte and clamped.
#[inline]
fn fixed_to_u8(v: i32) -> u8 {
    (v >> 16).clamp(0, 255) as u8
}

/// `v` rounded to the nearest byte, clamped to 0–255.
#[inline]
pub fn to_u8(v: f32) -> u8 {
    (v + 0.5).clamp(0.0, 255.0) as u8
}

/// Packed RGB → I420 with `yuv`'s matrix (each chroma sample the mean of its block), for
/// tests, benchmarks and the demo's synthetic frames.
pub fn rgb_to_i420(width: u32, height: u32, rgb: &[u8], yuv: Yuv) -> Vec<u8> {
    let (w, h) = (width as usize, height as usize);
    let (cw, ch) = chroma_size(width, height);
    let mut out = vec![0u8; Format::I420(yuv).len(width, height)];
    if rgb.len() < w * h * 3 {
        return out;
    }
    // Invert the linear map: Y, U, V from R, G, B (solve the 3×3 system once).
    let m = [
        [yuv.ky, 0.0, yuv.rv],
        [yuv.ky, yuv.gu, yuv.gv],
        [yuv.ky, yuv.bu, 0.0],
    ];
    let inv = invert(m);
    let off = [yuv.r0, yuv.g0, yuv.b0];
    let yuv_of = |px: &[u8]| -> [f32; 3] {
        let c = [
            f32::from(px[0]) - off[0],
            f32::from(px[1]) - off[1],
            f32::from(px[2]) - off[2],
        ];
        std::array::from_fn(|i| inv[i][0] * c[0] + inv[i][1] * c[1] + inv[i][2] * c[2])
    };
    let (luma, chroma) = out.split_at_mut(w * h);
    let (us, vs) = chroma.split_at_mut(cw * ch);
    let mut sums = vec![[0f32; 3]; cw * ch];
    for y in 0..h {
        for x in 0..w {
            let v = yuv_of(&rgb[(y * w + x) * 3..][..3]);
            luma[y * w + x] = to_u8(v[0]);
            let s = &mut sums[(y / 2) * cw + x / 2];
            s[0] += v[1];
            s[1] += v[2];
            s[2] += 1.0;
        }
    }
    for (i, s) in sums.iter().enumerate() {
        us[i] = to_u8(s[0] / s[2]);
        vs[i] = to_u8(s[1] / s[2]);
    }
    out
}

fn invert(m: [[f32; 3]; 3]) -> [[f32; 3]; 3] {
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    let c = |r0: usize, r1: usize, c0: usize, c1: usize| {
        (m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0]) / det
    };
    [
        [c(1, 2, 1, 2), -c(0, 2, 1, 2), c(0, 1, 1, 2)],
        [-c(1, 2, 0, 2), c(0, 2, 0, 2), -c(0, 1, 0, 2)],
        [c(1, 2, 0, 1), -c(0, 2, 0, 1), c(0, 1, 0, 1)],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrices_map_black_white_and_primaries() {
        let bt601 = Yuv::BT601;
        let near =
            |got: [f32; 3], want: [f32; 3]| got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1.5);
        assert!(near(bt601.rgb(16.0, 128.0, 128.0), [0.0; 3]));
        assert!(near(bt601.rgb(235.0, 128.0, 128.0), [255.0; 3]));
        // BT.601 limited red: Y 81, U 90, V 240 (each rounded, so within 1.5).
        assert!(near(bt601.rgb(81.0, 90.0, 240.0), [255.0, 0.0, 0.0]));
        // BT.709 limited green: Y 173, U 42, V 26.
        assert!(near(Yuv::BT709.rgb(173.0, 42.0, 26.0), [0.0, 255.0, 0.0]));
        let full = Yuv::new(0.299, 0.114, true);
        assert!(near(full.rgb(0.0, 128.0, 128.0), [0.0; 3]));
        assert!(near(full.rgb(255.0, 128.0, 128.0), [255.0; 3]));
        assert_eq!(bt601.grey(16.0), 0.0);
        assert_eq!(bt601.grey(235.0), 255.0);
        assert_eq!(full.grey(100.0), 100.0);
    }

    #[test]
    fn rgb_survives_a_round_trip_through_i420() {
        // Smooth colour (chroma subsampling loses only sharp colour edges), odd size.
        let (w, h) = (37u32, 23u32);
        let rgb: Vec<u8> = (0..h)
            .flat_map(|y| {
                (0..w).flat_map(move |x| [(x * 6) as u8, (y * 10) as u8, (200 - x * 2 - y) as u8])
            })
            .collect();
        for yuv in [Yuv::BT601, Yuv::BT709, Yuv::new(0.299, 0.114, true)] {
            let planar = rgb_to_i420(w, h, &rgb, yuv);
            let view = FrameView::i420(w, h, &planar, yuv);
            assert!(view.check().is_ok());
            let back = view.to_rgb().expect("complete frame");
            let worst = rgb
                .iter()
                .zip(back.iter())
                .map(|(a, b)| a.abs_diff(*b))
                .max();
            assert!(worst <= Some(8), "{yuv:?}: worst {worst:?}");
        }
    }

    #[test]
    fn whole_frames_convert_within_a_level_of_the_exact_matrix() {
        // Noise planes, odd size: the fixed-point conversion of every pixel (with its block's
        // chroma) against the float matrix, rounded and clamped.
        let (w, h) = (33u32, 9u32);
        let mut seed = 5u32;
        let yuv = Yuv::BT709;
        let data: Vec<u8> = (0..Format::I420(yuv).len(w, h))
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (seed >> 16) as u8
            })
            .collect();
        let view = FrameView::i420(w, h, &data, yuv);
        let p = view.planes().expect("complete");
        let rgb = view.to_rgb().expect("complete");
        let mut worst = 0u8;
        for y in 0..h as usize {
            for x in 0..w as usize {
                let c = (y / 2) * p.chroma_width + x / 2;
                let exact = yuv.rgb(
                    f32::from(p.y[y * w as usize + x]),
                    f32::from(p.u[c]),
                    f32::from(p.v[c]),
                );
                for (i, v) in exact.iter().enumerate() {
                    let got = rgb[(y * w as usize + x) * 3 + i];
                    worst = worst.max(got.abs_diff(to_u8(*v)));
                }
            }
        }
        assert!(worst <= 1, "worst {worst}");
    }

    #[test]
    fn short_and_empty_frames_are_refused_with_both_lengths() {
        let data = [0u8; 10];
        let v = FrameView::i420(4, 4, &data, Yuv::BT601);
        assert_eq!(
            v.check(),
            Err("a 4×4 frame needs 24 bytes, got 10".to_string())
        );
        assert!(v.planes().is_none() && v.to_rgb().is_none());
        assert!(FrameView::rgb(0, 3, &data).check().is_err());
        let rgb = FrameView::rgb(2, 1, &data);
        assert_eq!(rgb.to_rgb().as_deref(), Some(&data[..6]));
    }
}
