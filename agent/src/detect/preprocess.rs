//! Frame → input tensor: bilinear resize with half-pixel centres (the convention of OpenCV's
//! `INTER_LINEAR` without anti-aliasing), channel order, layout and normalisation as the card
//! says. Buffers are reused between frames; the resize tables are rebuilt only when the frame
//! size changes.

use super::RgbView;
use super::card::{ColorOrder, DType, InputSpec, Layout};

/// Precomputed bilinear taps for one axis: source index pairs and the weight of the second.
#[derive(Debug, Default, Clone)]
struct Taps {
    lo: Vec<u32>,
    hi: Vec<u32>,
    w: Vec<f32>,
}

impl Taps {
    fn new(src: u32, dst: u32) -> Taps {
        let scale = src as f32 / dst as f32;
        let mut t = Taps::default();
        for i in 0..dst {
            let x = ((i as f32 + 0.5) * scale - 0.5).max(0.0);
            let lo = (x.floor() as u32).min(src - 1);
            let hi = (lo + 1).min(src - 1);
            t.lo.push(lo);
            t.hi.push(hi);
            t.w.push(x - lo as f32);
        }
        t
    }
}

/// Resizes frames to the model's input and writes the tensor data.
#[derive(Debug)]
pub struct Preprocessor {
    spec: InputSpec,
    src_size: (u32, u32),
    xs: Taps,
    ys: Taps,
    /// Resized RGB, `width * height * 3`.
    rgb: Vec<u8>,
    /// f32 tensor data when the model takes floats.
    f32_data: Vec<f32>,
}

impl Preprocessor {
    /// A preprocessor for one model input.
    pub fn new(spec: InputSpec) -> Self {
        let n = (spec.width * spec.height * 3) as usize;
        Preprocessor {
            spec,
            src_size: (0, 0),
            xs: Taps::default(),
            ys: Taps::default(),
            rgb: vec![0; n],
            f32_data: Vec::new(),
        }
    }

    /// The input spec.
    pub fn spec(&self) -> &InputSpec {
        &self.spec
    }

    /// Resize `frame` into the internal RGB buffer and return it (`width * height * 3`).
    pub fn resize(&mut self, frame: RgbView<'_>) -> &[u8] {
        let (dw, dh) = (self.spec.width, self.spec.height);
        if self.src_size != (frame.width, frame.height) {
            self.xs = Taps::new(frame.width, dw);
            self.ys = Taps::new(frame.height, dh);
            self.src_size = (frame.width, frame.height);
        }
        let stride = frame.width as usize * 3;
        let src = frame.data;
        for (oy, ((&ylo, &yhi), &wy)) in self
            .ys
            .lo
            .iter()
            .zip(&self.ys.hi)
            .zip(&self.ys.w)
            .enumerate()
        {
            let r0 = &src[ylo as usize * stride..][..stride];
            let r1 = &src[yhi as usize * stride..][..stride];
            let out = &mut self.rgb[oy * dw as usize * 3..][..dw as usize * 3];
            for (ox, ((&xlo, &xhi), &wx)) in self
                .xs
                .lo
                .iter()
                .zip(&self.xs.hi)
                .zip(&self.xs.w)
                .enumerate()
            {
                let (a, b) = (xlo as usize * 3, xhi as usize * 3);
                for c in 0..3 {
                    let top = f32::from(r0[a + c]) * (1.0 - wx) + f32::from(r0[b + c]) * wx;
                    let bot = f32::from(r1[a + c]) * (1.0 - wx) + f32::from(r1[b + c]) * wx;
                    let v = top * (1.0 - wy) + bot * wy;
                    out[ox * 3 + c] = v.round().clamp(0.0, 255.0) as u8;
                }
            }
        }
        &self.rgb
    }

    /// Resize `frame` and lay it out as the model's u8 input (NHWC/NCHW, RGB/BGR).
    /// Returns the tensor bytes.
    pub fn u8_tensor(&mut self, frame: RgbView<'_>) -> Vec<u8> {
        self.resize(frame);
        let (w, h) = (self.spec.width as usize, self.spec.height as usize);
        let order = self.channel_order();
        let mut out = vec![0u8; w * h * 3];
        for (i, px) in self.rgb.chunks_exact(3).enumerate() {
            for (c, &src_c) in order.iter().enumerate() {
                let dst = match self.spec.layout {
                    Layout::Nhwc => i * 3 + c,
                    Layout::Nchw => c * w * h + i,
                };
                out[dst] = px[src_c];
            }
        }
        out
    }

    /// Resize `frame` and lay it out as the model's f32 input: `(v * scale - mean) / std`.
    pub fn f32_tensor(&mut self, frame: RgbView<'_>) -> &[f32] {
        self.resize(frame);
        let (w, h) = (self.spec.width as usize, self.spec.height as usize);
        let order = self.channel_order();
        self.f32_data.resize(w * h * 3, 0.0);
        let s = &self.spec;
        for (i, px) in self.rgb.chunks_exact(3).enumerate() {
            for (c, &src_c) in order.iter().enumerate() {
                let dst = match s.layout {
                    Layout::Nhwc => i * 3 + c,
                    Layout::Nchw => c * w * h + i,
                };
                self.f32_data[dst] = (f32::from(px[src_c]) * s.scale - s.mean[c]) / s.std[c];
            }
        }
        &self.f32_data
    }

    fn channel_order(&self) -> [usize; 3] {
        match self.spec.color {
            ColorOrder::Rgb => [0, 1, 2],
            ColorOrder::Bgr => [2, 1, 0],
        }
    }

    /// Whether the model takes floats.
    pub fn is_f32(&self) -> bool {
        self.spec.dtype == DType::F32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(w: u32, h: u32) -> InputSpec {
        InputSpec {
            width: w,
            height: h,
            ..InputSpec::default()
        }
    }

    #[test]
    fn identity_resize_keeps_pixels() {
        let data: Vec<u8> = (0..4 * 2 * 3).map(|v| v as u8 * 10).collect();
        let mut p = Preprocessor::new(spec(4, 2));
        assert_eq!(
            p.resize(RgbView {
                width: 4,
                height: 2,
                data: &data
            }),
            &data[..]
        );
    }

    #[test]
    fn halving_averages_pairs() {
        // 4x1 grey ramp 0, 100, 200, 250 → 2x1: half-pixel centres sample at 0.5 and 2.5.
        let data: Vec<u8> = [0u8, 100, 200, 250]
            .iter()
            .flat_map(|&v| [v, v, v])
            .collect();
        let mut p = Preprocessor::new(spec(2, 1));
        assert_eq!(
            p.resize(RgbView {
                width: 4,
                height: 1,
                data: &data
            }),
            &[50, 50, 50, 225, 225, 225]
        );
    }

    #[test]
    fn layouts_orders_and_normalisation() {
        let data = [10u8, 20, 30, 40, 50, 60];
        let mut p = Preprocessor::new(InputSpec {
            layout: Layout::Nchw,
            color: ColorOrder::Bgr,
            ..spec(2, 1)
        });
        assert_eq!(
            p.u8_tensor(RgbView {
                width: 2,
                height: 1,
                data: &data
            }),
            vec![30, 60, 20, 50, 10, 40]
        );
        let mut p = Preprocessor::new(InputSpec {
            dtype: DType::F32,
            scale: 0.5,
            mean: [1.0, 2.0, 3.0],
            std: [2.0, 2.0, 2.0],
            ..spec(2, 1)
        });
        assert_eq!(
            p.f32_tensor(RgbView {
                width: 2,
                height: 1,
                data: &data
            }),
            &[2.0, 4.0, 6.0, 9.5, 11.5, 13.5]
        );
    }
}
