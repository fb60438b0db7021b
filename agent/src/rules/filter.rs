//! Object filters: which detections count at all (per class, per camera and per zone) and
//! exclusion masks (polygons where nothing counts: a poster of a person, a tree that moves).

pub use crate::config::ObjectFilter;
use crate::detect::Detection;
use crate::geometry::{self, Point};

impl ObjectFilter {
    /// Whether `d` passes, in a frame of aspect `aspect` (width / height in pixels).
    pub fn passes(&self, d: &Detection, aspect: f64) -> bool {
        let b = d.bbox;
        let (w, h) = (f64::from(b[2] - b[0]), f64::from(b[3] - b[1]));
        let area = w * h;
        let ratio = if h > 0.0 {
            w * aspect / h
        } else {
            f64::INFINITY
        };
        self.min_score.is_none_or(|m| d.score >= m)
            && self.min_area.is_none_or(|m| area >= m)
            && self.max_area.is_none_or(|m| area <= m)
            && self.min_ratio.is_none_or(|m| ratio >= m)
            && self.max_ratio.is_none_or(|m| ratio <= m)
    }

    /// Problems with the limits, as (field, message).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if let Some(s) = self.min_score
            && !(s > 0.0 && s <= 1.0)
        {
            p.push(("min_score", format!("{s} is outside (0, 1]")));
        }
        for (name, v) in [("min_area", self.min_area), ("max_area", self.max_area)] {
            if let Some(v) = v
                && !(v.is_finite() && (0.0..=1.0).contains(&v))
            {
                p.push((
                    name,
                    format!("{v} is outside 0 to 1 (a fraction of the frame)"),
                ));
            }
        }
        for (name, v) in [("min_ratio", self.min_ratio), ("max_ratio", self.max_ratio)] {
            if let Some(v) = v
                && !(v.is_finite() && v > 0.0)
            {
                p.push((name, format!("{v} must be a positive width / height ratio")));
            }
        }
        if let (Some(lo), Some(hi)) = (self.min_area, self.max_area)
            && lo > hi
        {
            p.push(("max_area", format!("{hi} is below min_area {lo}")));
        }
        if let (Some(lo), Some(hi)) = (self.min_ratio, self.max_ratio)
            && lo > hi
        {
            p.push(("max_ratio", format!("{hi} is below min_ratio {lo}")));
        }
        p
    }
}

/// Filters by class id (`None`: no limits for that class).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClassFilters(pub Vec<Option<ObjectFilter>>);

impl ClassFilters {
    /// Whether `d` passes its class's filter.
    pub fn passes(&self, d: &Detection, aspect: f64) -> bool {
        match self.0.get(usize::from(d.class)) {
            Some(Some(f)) => f.passes(d, aspect),
            _ => true,
        }
    }
}

/// Whether `d` stands inside one of the masks (its bottom-centre, like zones).
pub fn masked(masks: &[Vec<Point>], d: &Detection) -> bool {
    let foot = geometry::bottom_centre(d.bbox);
    masks.iter().any(|m| geometry::contains(m, foot))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn boxed(w: f32, h: f32) -> Detection {
        Detection {
            class: 0,
            score: 0.7,
            bbox: [0.1, 0.1, 0.1 + w, 0.1 + h],
        }
    }

    #[test]
    fn limits_apply_and_ratio_uses_pixels() {
        let f = ObjectFilter {
            min_area: Some(0.01),
            max_ratio: Some(1.0),
            ..ObjectFilter::default()
        };
        // 0.1 × 0.2 of a 16:9 frame: 0.02 of the area, 0.89 wide per high in pixels.
        assert!(f.passes(&boxed(0.1, 0.2), 16.0 / 9.0));
        // Same box in a 4:1 frame is wider than high.
        assert!(!f.passes(&boxed(0.1, 0.2), 4.0));
        assert!(
            !f.passes(&boxed(0.05, 0.1), 16.0 / 9.0),
            "0.005 of the frame"
        );
        let strict = ObjectFilter {
            min_score: Some(0.8),
            ..ObjectFilter::default()
        };
        assert!(!strict.passes(&boxed(0.1, 0.2), 1.0));
    }

    #[test]
    fn bad_limits_are_named() {
        let f = ObjectFilter {
            min_area: Some(0.5),
            max_area: Some(0.1),
            min_ratio: Some(-1.0),
            ..ObjectFilter::default()
        };
        let names: Vec<&str> = f.problems().iter().map(|p| p.0).collect();
        assert_eq!(names, vec!["min_ratio", "max_area"]);
    }

    proptest! {
        #[test]
        fn area_limits_match_the_box_area(
            w in 0.01f32..0.9, h in 0.01f32..0.9, lo in 0.0f64..0.5, span in 0.0f64..0.5,
        ) {
            let f = ObjectFilter { min_area: Some(lo), max_area: Some(lo + span), ..ObjectFilter::default() };
            let d = boxed(w, h);
            let area = f64::from(d.bbox[2] - d.bbox[0]) * f64::from(d.bbox[3] - d.bbox[1]);
            prop_assume!((area - lo).abs() > 1e-9 && (area - lo - span).abs() > 1e-9);
            prop_assert_eq!(f.passes(&d, 1.0), area >= lo && area <= lo + span);
        }
    }
}
