//! Decoder for SSD models whose graph already decodes boxes: `boxes [1, N, 4]` as
//! `[ymin, xmin, ymax, xmax]` in 0..1 and `scores [1, C, N]` after sigmoid (row = class id).

use super::Detection;

/// Append every (anchor, class) pair whose score reaches its class threshold.
/// `threshold(class)` returns `None` for classes that are not wanted (unlabelled ids).
pub fn decode(
    boxes: &[f32],
    scores: &[f32],
    anchors: usize,
    threshold: impl Fn(usize) -> Option<f32>,
    out: &mut Vec<Detection>,
) {
    let classes = scores.len() / anchors.max(1);
    for c in 0..classes {
        let Some(t) = threshold(c) else { continue };
        let row = &scores[c * anchors..(c + 1) * anchors];
        for (a, &s) in row.iter().enumerate() {
            if s >= t {
                let b = &boxes[a * 4..a * 4 + 4];
                let clip = |v: f32| v.clamp(0.0, 1.0);
                out.push(Detection {
                    class: c as u16,
                    score: s,
                    bbox: [clip(b[1]), clip(b[0]), clip(b[3]), clip(b[2])],
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_reorders_boxes() {
        // Two anchors, two classes.
        let boxes = [0.1, 0.2, 0.5, 0.6, -0.1, 0.0, 0.3, 1.2];
        let scores = [0.9, 0.2, 0.4, 0.7];
        let mut out = Vec::new();
        decode(&boxes, &scores, 2, |c| (c < 2).then_some(0.5), &mut out);
        assert_eq!(
            out,
            vec![
                Detection {
                    class: 0,
                    score: 0.9,
                    bbox: [0.2, 0.1, 0.6, 0.5]
                },
                Detection {
                    class: 1,
                    score: 0.7,
                    bbox: [0.0, 0.0, 1.0, 0.3]
                },
            ]
        );
        out.clear();
        decode(&boxes, &scores, 2, |c| (c == 1).then_some(0.3), &mut out);
        assert_eq!(out.len(), 2);
    }
}
