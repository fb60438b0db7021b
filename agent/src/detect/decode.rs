//! Output decoders: raw output tensors → candidate detections in input-normalised coordinates
//! (0..1 of the model's input width and height), before NMS and before mapping back to the frame.
//!
//! Each family is bound once to the model's output shapes ([`Decoder::bind`]), so a card that
//! does not fit the model is refused at load, and decoding a frame only indexes slices.
//! Outputs are matched by shape, never by name.

use super::card::{DecoderKind, OutputSpec};
use super::{Detection, Detections};

/// A decoder bound to a model's outputs.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoder {
    /// Decoded boxes `[1, N, 4]` (`[ymin, xmin, ymax, xmax]`, 0..1) + scores `[1, C, N]`.
    Ssd {
        /// Output index of the boxes.
        boxes: usize,
        /// Output index of the scores.
        scores: usize,
        /// N.
        anchors: usize,
        /// C.
        classes: usize,
    },
    /// NanoDet: per stride a score map `[1, H·W, C]` (sigmoid applied) and a box map
    /// `[1, H·W, 4·bins]` (distribution over `bins` distances per side, softmax here).
    Nanodet {
        /// Per level: (score output, box output, stride, grid width, grid height).
        levels: Vec<(usize, usize, u32, usize, usize)>,
        /// Bins per side (`reg_max + 1`).
        bins: usize,
        /// C.
        classes: usize,
    },
    /// Ultralytics YOLOv8/YOLO11: `[1, 4 + C, N]`: cx, cy, w, h in input pixels, then class
    /// scores (sigmoid applied), no objectness.
    Yolov8 {
        /// Output index.
        output: usize,
        /// N.
        anchors: usize,
        /// C.
        classes: usize,
    },
    /// YOLOv5: `[1, N, 5 + C]`: cx, cy, w, h in input pixels, objectness, class scores.
    Yolov5 {
        /// Output index.
        output: usize,
        /// N.
        anchors: usize,
        /// C.
        classes: usize,
    },
    /// YOLOX (exported without decoding): `[1, N, 5 + C]`: raw x, y offsets and log w, h per
    /// grid cell of each stride (row-major, strides in order), objectness and class scores after
    /// sigmoid.
    Yolox {
        /// Output index.
        output: usize,
        /// (stride, grid width, grid height) per level, in output order.
        levels: Vec<(u32, usize, usize)>,
        /// C.
        classes: usize,
    },
}

/// Input size as the decoders see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputSize {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

fn dims3(shape: &[usize]) -> Option<(usize, usize)> {
    match shape {
        [1, a, b] => Some((*a, *b)),
        _ => None,
    }
}

impl Decoder {
    /// Bind the card's decoder to the model's output shapes.
    pub fn bind(
        spec: &OutputSpec,
        input: InputSize,
        shapes: &[Vec<usize>],
    ) -> Result<Decoder, String> {
        let (w, h) = (input.width as usize, input.height as usize);
        match spec.decoder {
            DecoderKind::Ssd => {
                let boxes = shapes
                    .iter()
                    .position(|s| matches!(dims3(s), Some((_, 4))))
                    .ok_or_else(|| format!("the ssd decoder needs a [1, N, 4] boxes output; the model has {shapes:?}"))?;
                let anchors = shapes[boxes][1];
                let scores = shapes
                    .iter()
                    .enumerate()
                    .position(|(i, s)| i != boxes && matches!(dims3(s), Some((_, n)) if n == anchors))
                    .ok_or_else(|| format!("the ssd decoder needs a [1, C, {anchors}] scores output; the model has {shapes:?}"))?;
                Ok(Decoder::Ssd {
                    boxes,
                    scores,
                    anchors,
                    classes: shapes[scores][1],
                })
            }
            DecoderKind::Nanodet => {
                let bins = spec.reg_max as usize + 1;
                let mut levels = Vec::new();
                let mut classes = None;
                for &stride in &spec.strides {
                    let s = stride as usize;
                    let (gw, gh) = (w.div_ceil(s), h.div_ceil(s));
                    let cells = gw * gh;
                    let box_out = shapes
                        .iter()
                        .position(|sh| dims3(sh) == Some((cells, 4 * bins)))
                        .ok_or_else(|| format!("nanodet stride {stride}: no [1, {cells}, {}] box output among {shapes:?}", 4 * bins))?;
                    let score_out = shapes
                        .iter()
                        .enumerate()
                        .position(|(i, sh)| i != box_out && matches!(dims3(sh), Some((n, _)) if n == cells))
                        .ok_or_else(|| format!("nanodet stride {stride}: no [1, {cells}, C] score output among {shapes:?}"))?;
                    let c = shapes[score_out][2];
                    if *classes.get_or_insert(c) != c {
                        return Err(format!(
                            "nanodet score maps disagree on the class count: {shapes:?}"
                        ));
                    }
                    levels.push((score_out, box_out, stride, gw, gh));
                }
                if levels.is_empty() {
                    return Err("the nanodet decoder needs output.strides".into());
                }
                Ok(Decoder::Nanodet {
                    levels,
                    bins,
                    classes: classes.unwrap_or(0),
                })
            }
            DecoderKind::Yolov8 => {
                let output = shapes
                    .iter()
                    .position(|s| matches!(dims3(s), Some((r, n)) if r > 4 && n > r))
                    .ok_or_else(|| format!("the yolov8 decoder needs a [1, 4 + C, N] output; the model has {shapes:?}"))?;
                Ok(Decoder::Yolov8 {
                    output,
                    anchors: shapes[output][2],
                    classes: shapes[output][1] - 4,
                })
            }
            DecoderKind::Yolov5 | DecoderKind::Yolox => {
                let output = shapes
                    .iter()
                    .position(|s| matches!(dims3(s), Some((n, r)) if r > 5 && n > r))
                    .ok_or_else(|| format!("the {:?} decoder needs a [1, N, 5 + C] output; the model has {shapes:?}", spec.decoder))?;
                let (anchors, row) = (shapes[output][1], shapes[output][2]);
                if spec.decoder == DecoderKind::Yolov5 {
                    return Ok(Decoder::Yolov5 {
                        output,
                        anchors,
                        classes: row - 5,
                    });
                }
                let levels: Vec<(u32, usize, usize)> = spec
                    .strides
                    .iter()
                    .map(|&s| (s, w.div_ceil(s as usize), h.div_ceil(s as usize)))
                    .collect();
                let cells: usize = levels.iter().map(|(_, gw, gh)| gw * gh).sum();
                if cells != anchors {
                    return Err(format!(
                        "yolox strides {:?} on a {w}x{h} input give {cells} cells, the output has {anchors}",
                        spec.strides
                    ));
                }
                Ok(Decoder::Yolox {
                    output,
                    levels,
                    classes: row - 5,
                })
            }
        }
    }

    /// Number of classes the model scores.
    pub fn classes(&self) -> usize {
        match self {
            Decoder::Ssd { classes, .. }
            | Decoder::Nanodet { classes, .. }
            | Decoder::Yolov8 { classes, .. }
            | Decoder::Yolov5 { classes, .. }
            | Decoder::Yolox { classes, .. } => *classes,
        }
    }

    /// Append every (box, class) candidate whose score reaches `threshold(class)` (`None`:
    /// class not wanted). Boxes are `[x1, y1, x2, y2]` normalised to the input size, unclipped.
    pub fn decode(
        &self,
        outputs: &[&[f32]],
        input: InputSize,
        threshold: &dyn Fn(usize) -> Option<f32>,
        out: &mut Detections,
    ) {
        let (iw, ih) = (input.width as f32, input.height as f32);
        let mut push = |class: usize, score: f32, b: [f32; 4]| {
            super::offer(
                out,
                Detection {
                    class: class as u16,
                    score,
                    bbox: b,
                },
            );
        };
        match self {
            Decoder::Ssd {
                boxes,
                scores,
                anchors,
                classes,
            } => {
                let (bx, sc) = (outputs[*boxes], outputs[*scores]);
                for c in 0..*classes {
                    let Some(t) = threshold(c) else { continue };
                    for (a, &s) in sc[c * anchors..(c + 1) * anchors].iter().enumerate() {
                        if s >= t {
                            let b = &bx[a * 4..a * 4 + 4];
                            push(c, s, [b[1], b[0], b[3], b[2]]);
                        }
                    }
                }
            }
            Decoder::Nanodet {
                levels,
                bins,
                classes,
            } => {
                for &(so, bo, stride, gw, _gh) in levels {
                    let (scores, boxes) = (outputs[so], outputs[bo]);
                    for (cell, row) in scores.chunks_exact(*classes).enumerate() {
                        let mut dist: Option<[f32; 4]> = None;
                        for (c, &s) in row.iter().enumerate() {
                            let Some(t) = threshold(c) else { continue };
                            if s < t {
                                continue;
                            }
                            let d = *dist.get_or_insert_with(|| {
                                let reg = &boxes[cell * 4 * bins..(cell + 1) * 4 * bins];
                                let mut d = [0.0f32; 4];
                                for (side, v) in d.iter_mut().enumerate() {
                                    *v = expected_bin(&reg[side * bins..(side + 1) * bins])
                                        * stride as f32;
                                }
                                d
                            });
                            let cx = ((cell % gw) as f32 + 0.5) * stride as f32;
                            let cy = ((cell / gw) as f32 + 0.5) * stride as f32;
                            push(
                                c,
                                s,
                                [
                                    (cx - d[0]) / iw,
                                    (cy - d[1]) / ih,
                                    (cx + d[2]) / iw,
                                    (cy + d[3]) / ih,
                                ],
                            );
                        }
                    }
                }
            }
            Decoder::Yolov8 {
                output,
                anchors,
                classes,
            } => {
                let o = outputs[*output];
                let n = *anchors;
                for c in 0..*classes {
                    let Some(t) = threshold(c) else { continue };
                    for (a, &s) in o[(4 + c) * n..(5 + c) * n].iter().enumerate() {
                        if s >= t {
                            let (cx, cy, w, h) = (o[a], o[n + a], o[2 * n + a], o[3 * n + a]);
                            push(c, s, cxcywh(cx, cy, w, h, iw, ih));
                        }
                    }
                }
            }
            Decoder::Yolov5 {
                output, classes, ..
            } => {
                for row in outputs[*output].chunks_exact(5 + classes) {
                    let obj = row[4];
                    for c in 0..*classes {
                        let Some(t) = threshold(c) else { continue };
                        let s = obj * row[5 + c];
                        if s >= t {
                            push(c, s, cxcywh(row[0], row[1], row[2], row[3], iw, ih));
                        }
                    }
                }
            }
            Decoder::Yolox {
                output,
                levels,
                classes,
            } => {
                let mut rows = outputs[*output].chunks_exact(5 + classes);
                for &(stride, gw, gh) in levels {
                    let s = stride as f32;
                    for cell in 0..gw * gh {
                        let Some(row) = rows.next() else { return };
                        let obj = row[4];
                        for c in 0..*classes {
                            let Some(t) = threshold(c) else { continue };
                            let score = obj * row[5 + c];
                            if score >= t {
                                let cx = (row[0] + (cell % gw) as f32) * s;
                                let cy = (row[1] + (cell / gw) as f32) * s;
                                push(
                                    c,
                                    score,
                                    cxcywh(cx, cy, row[2].exp() * s, row[3].exp() * s, iw, ih),
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

fn cxcywh(cx: f32, cy: f32, w: f32, h: f32, iw: f32, ih: f32) -> [f32; 4] {
    [
        (cx - w / 2.0) / iw,
        (cy - h / 2.0) / ih,
        (cx + w / 2.0) / iw,
        (cy + h / 2.0) / ih,
    ]
}

/// Expected value of a softmax distribution over bin indices.
fn expected_bin(logits: &[f32]) -> f32 {
    let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let (mut num, mut den) = (0.0f32, 0.0f32);
    for (i, &l) in logits.iter().enumerate() {
        let e = (l - m).exp();
        num += e * i as f32;
        den += e;
    }
    if den > 0.0 { num / den } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: DecoderKind) -> OutputSpec {
        OutputSpec {
            decoder: kind,
            ..OutputSpec::default()
        }
    }

    const ALL: &dyn Fn(usize) -> Option<f32> = &|_| Some(0.5);

    fn run(d: &Decoder, outs: &[&[f32]], input: InputSize) -> Vec<Detection> {
        let mut v = Detections::new();
        d.decode(outs, input, ALL, &mut v);
        v.to_vec()
    }

    #[test]
    fn ssd_binds_by_shape_and_reorders_boxes() {
        let shapes = vec![vec![1, 3, 2], vec![1, 2, 4]];
        let d = Decoder::bind(
            &spec(DecoderKind::Ssd),
            InputSize {
                width: 300,
                height: 300,
            },
            &shapes,
        )
        .expect("bind");
        assert_eq!(
            d,
            Decoder::Ssd {
                boxes: 1,
                scores: 0,
                anchors: 2,
                classes: 3
            }
        );
        let boxes = [0.1, 0.2, 0.5, 0.6, 0.0, 0.0, 1.0, 1.0];
        let scores = [0.9, 0.1, 0.2, 0.2, 0.0, 0.7];
        let v = run(
            &d,
            &[&scores, &boxes],
            InputSize {
                width: 300,
                height: 300,
            },
        );
        assert_eq!(
            v,
            vec![
                Detection {
                    class: 0,
                    score: 0.9,
                    bbox: [0.2, 0.1, 0.6, 0.5]
                },
                Detection {
                    class: 2,
                    score: 0.7,
                    bbox: [0.0, 0.0, 1.0, 1.0]
                },
            ]
        );
        assert!(
            Decoder::bind(
                &spec(DecoderKind::Ssd),
                InputSize {
                    width: 300,
                    height: 300
                },
                &[vec![1, 2, 3]]
            )
            .is_err()
        );
    }

    #[test]
    fn nanodet_decodes_distributions_around_cell_centres() {
        // A 16x8 input with one stride-8 level: 2x1 cells, 1 class, reg_max 1 (2 bins).
        let s = OutputSpec {
            decoder: DecoderKind::Nanodet,
            strides: vec![8],
            reg_max: 1,
            ..OutputSpec::default()
        };
        let input = InputSize {
            width: 16,
            height: 8,
        };
        let shapes = vec![vec![1, 2, 8], vec![1, 2, 1]];
        let d = Decoder::bind(&s, input, &shapes).expect("bind");
        assert_eq!(
            d,
            Decoder::Nanodet {
                levels: vec![(1, 0, 8, 2, 1)],
                bins: 2,
                classes: 1
            }
        );
        // Cell 1 (centre 12, 4): logits favour bin 1 strongly for every side → distance ≈ 8.
        let big = 20.0;
        let boxes = [0.0; 8]
            .iter()
            .copied()
            .chain([0.0, big, 0.0, big, 0.0, big, 0.0, big])
            .collect::<Vec<f32>>();
        let scores = [0.1, 0.8];
        let v = run(&d, &[&boxes, &scores], input);
        assert_eq!(v.len(), 1);
        let b = v[0].bbox;
        let expect = [
            (12.0 - 8.0) / 16.0,
            (4.0 - 8.0) / 8.0,
            (12.0 + 8.0) / 16.0,
            (4.0 + 8.0) / 8.0,
        ];
        for (a, e) in b.iter().zip(expect) {
            assert!((a - e).abs() < 1e-4, "{b:?} vs {expect:?}");
        }
        assert!((expected_bin(&[0.0, 0.0]) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn yolov8_is_channel_major() {
        // [1, 4 + 2, 3]: three anchors, two classes.
        let input = InputSize {
            width: 100,
            height: 50,
        };
        let d = Decoder::bind(&spec(DecoderKind::Yolov8), input, &[vec![1, 6, 8]]).expect("bind");
        assert_eq!(
            d,
            Decoder::Yolov8 {
                output: 0,
                anchors: 8,
                classes: 2
            }
        );
        let mut o = vec![0.0f32; 6 * 8];
        // anchor 3: cx 50, cy 25, w 20, h 10, class 1 score 0.8
        o[3] = 50.0;
        o[8 + 3] = 25.0;
        o[16 + 3] = 20.0;
        o[24 + 3] = 10.0;
        o[40 + 3] = 0.8;
        let v = run(&d, &[&o], input);
        assert_eq!(
            v,
            vec![Detection {
                class: 1,
                score: 0.8,
                bbox: [0.4, 0.4, 0.6, 0.6]
            }]
        );
    }

    #[test]
    fn yolov5_multiplies_objectness() {
        let input = InputSize {
            width: 100,
            height: 100,
        };
        let d = Decoder::bind(&spec(DecoderKind::Yolov5), input, &[vec![1, 10, 7]]).expect("bind");
        let mut o = vec![0.0f32; 70];
        o[..7].copy_from_slice(&[50.0, 50.0, 10.0, 20.0, 0.9, 0.6, 0.9]);
        o[7..14].copy_from_slice(&[10.0, 10.0, 4.0, 4.0, 0.4, 0.9, 0.9]);
        let v = run(&d, &[&o], input);
        assert_eq!(v.len(), 2, "{v:?}");
        assert_eq!(v[0].class, 0);
        assert!((v[0].score - 0.54).abs() < 1e-6);
        assert_eq!(v[0].bbox, [0.45, 0.4, 0.55, 0.6]);
        assert_eq!(v[1].class, 1);
    }

    #[test]
    fn yolox_decodes_the_grid() {
        let s = OutputSpec {
            decoder: DecoderKind::Yolox,
            strides: vec![8, 16],
            ..OutputSpec::default()
        };
        let input = InputSize {
            width: 32,
            height: 16,
        };
        // stride 8: 4x2 = 8 cells; stride 16: 2x1 = 2 cells → 10 rows of 5 + 1.
        let d = Decoder::bind(&s, input, &[vec![1, 10, 6]]).expect("bind");
        let mut o = vec![0.0f32; 60];
        // Row 9 = stride 16, cell 1 (col 1, row 0): offset 0.5, 0.5 → centre (24, 8); w = h = 16.
        o[54..60].copy_from_slice(&[0.5, 0.5, 0.0, 0.0, 1.0, 0.9]);
        let v = run(&d, &[&o], input);
        assert_eq!(
            v,
            vec![Detection {
                class: 0,
                score: 0.9,
                bbox: [0.5, 0.0, 1.0, 1.0]
            }]
        );
        let bad = OutputSpec {
            decoder: DecoderKind::Yolox,
            strides: vec![8],
            ..OutputSpec::default()
        };
        assert!(
            Decoder::bind(&bad, input, &[vec![1, 10, 6]])
                .unwrap_err()
                .contains("give 8 cells")
        );
    }
}
