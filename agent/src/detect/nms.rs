//! Non-maximum suppression: keep the best box of each cluster of overlapping boxes.

use super::Detections;

/// Intersection over union of two `[x1, y1, x2, y2]` boxes.
pub fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let area = |r: [f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

/// Greedy NMS in place: sorts `dets` by score (best first, ties by class then position for a
/// stable order), drops every box whose IoU with a kept box of the same class (or any class when
/// `class_agnostic`) exceeds `iou_threshold`, and keeps at most `max` boxes.
pub fn nms(dets: &mut Detections, iou_threshold: f32, class_agnostic: bool, max: usize) {
    // Unstable sort: no allocation; ties are broken on every field that can differ.
    dets.sort_unstable_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.class.cmp(&b.class))
            .then(a.bbox[0].total_cmp(&b.bbox[0]))
            .then(a.bbox[1].total_cmp(&b.bbox[1]))
            .then(a.bbox[2].total_cmp(&b.bbox[2]))
            .then(a.bbox[3].total_cmp(&b.bbox[3]))
    });
    let mut kept = 0;
    for i in 0..dets.len() {
        if kept >= max {
            break;
        }
        let cand = dets[i];
        let suppressed = dets[..kept].iter().any(|k| {
            (class_agnostic || k.class == cand.class) && iou(k.bbox, cand.bbox) > iou_threshold
        });
        if !suppressed {
            dets[kept] = cand;
            kept += 1;
        }
    }
    dets.truncate(kept);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Detection;

    fn dv(items: &[Detection]) -> Detections {
        items.iter().copied().collect()
    }

    fn d(class: u16, score: f32, bbox: [f32; 4]) -> Detection {
        Detection { class, score, bbox }
    }

    #[test]
    fn iou_basics() {
        assert_eq!(iou([0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]), 1.0);
        assert_eq!(iou([0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]), 0.0);
        assert!((iou([0.0, 0.0, 0.5, 1.0], [0.25, 0.0, 0.75, 1.0]) - 1.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn suppresses_per_class() {
        let mut v = dv(&[
            d(0, 0.6, [0.0, 0.0, 0.5, 0.5]),
            d(0, 0.9, [0.01, 0.0, 0.51, 0.5]),
            d(1, 0.7, [0.0, 0.0, 0.5, 0.5]),
            d(0, 0.8, [0.6, 0.6, 0.9, 0.9]),
        ]);
        nms(&mut v, 0.5, false, 10);
        assert_eq!(
            v,
            dv(&[
                d(0, 0.9, [0.01, 0.0, 0.51, 0.5]),
                d(0, 0.8, [0.6, 0.6, 0.9, 0.9]),
                d(1, 0.7, [0.0, 0.0, 0.5, 0.5])
            ])
        );
        let mut v2 = dv(&[
            d(0, 0.9, [0.0, 0.0, 0.5, 0.5]),
            d(1, 0.7, [0.0, 0.0, 0.5, 0.5]),
        ]);
        nms(&mut v2, 0.5, true, 10);
        assert_eq!(v2.len(), 1);
        let mut v3 = dv(&[
            d(0, 0.9, [0.0, 0.0, 0.1, 0.1]),
            d(0, 0.8, [0.5, 0.5, 0.6, 0.6]),
        ]);
        nms(&mut v3, 0.5, false, 1);
        assert_eq!(v3, dv(&[d(0, 0.9, [0.0, 0.0, 0.1, 0.1])]));
    }
}
