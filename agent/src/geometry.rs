//! Plane geometry in normalised frame coordinates (x right, y down, both 0..=1): polygons and
//! boxes. Pure functions, property-tested. A leaf: zones and lines in the rules, their checks in
//! the configuration, their outlines in evidence pictures.

/// A point `[x, y]`.
pub type Point = [f64; 2];

/// Check a zone polygon: at least 3 points, all inside the frame, a non-zero area and no two
/// edges crossing. Returns a message for the installer on failure.
pub fn check_polygon(poly: &[Point]) -> Result<(), String> {
    if poly.len() < 3 {
        return Err(format!(
            "a polygon needs at least 3 points [x, y], found {}",
            poly.len()
        ));
    }
    for (i, p) in poly.iter().enumerate() {
        let inside = |v: f64| v.is_finite() && (0.0..=1.0).contains(&v);
        if !(inside(p[0]) && inside(p[1])) {
            return Err(format!(
                "point {i} [{}, {}] is outside the frame; coordinates are fractions of width and height, 0 to 1",
                p[0], p[1]
            ));
        }
    }
    if area(poly) < 1e-6 {
        return Err("the polygon has no area (its points are on one line or repeated)".into());
    }
    let n = poly.len();
    for i in 0..n {
        for j in (i + 1)..n {
            // Adjacent edges share a point; they do not count as crossing.
            if j == i + 1 || (i == 0 && j == n - 1) {
                continue;
            }
            if segments_cross(poly[i], poly[(i + 1) % n], poly[j], poly[(j + 1) % n]) {
                return Err(format!(
                    "the polygon crosses itself (edge {i}→{} crosses edge {j}→{}); list the points in order around the area",
                    (i + 1) % n,
                    (j + 1) % n
                ));
            }
        }
    }
    Ok(())
}

/// Absolute area of a simple polygon (shoelace formula).
pub fn area(poly: &[Point]) -> f64 {
    let n = poly.len();
    let mut s = 0.0;
    for i in 0..n {
        let a = poly[i];
        let b = poly[(i + 1) % n];
        s += a[0] * b[1] - b[0] * a[1];
    }
    (s / 2.0).abs()
}

/// Whether `p` lies inside `poly` (even-odd rule; points exactly on an edge may go either way).
pub fn contains(poly: &[Point], p: Point) -> bool {
    let n = poly.len();
    let mut inside = false;
    let mut j = n.wrapping_sub(1);
    for i in 0..n {
        let (a, b) = (poly[i], poly[j]);
        if (a[1] > p[1]) != (b[1] > p[1]) {
            let x = (b[0] - a[0]) * (p[1] - a[1]) / (b[1] - a[1]) + a[0];
            if p[0] < x {
                inside = !inside;
            }
        }
        j = i;
    }
    inside
}

/// The shortest distance from `p` to the boundary of `poly` (in normalised coordinates).
pub fn distance_to_edge(poly: &[Point], p: Point) -> f64 {
    let n = poly.len();
    (0..n)
        .map(|i| segment_distance(poly[i], poly[(i + 1) % n], p))
        .fold(f64::INFINITY, f64::min)
}

fn segment_distance(a: Point, b: Point, p: Point) -> f64 {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let len2 = dx * dx + dy * dy;
    let t = if len2 == 0.0 {
        0.0
    } else {
        (((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2).clamp(0.0, 1.0)
    };
    let (x, y) = (a[0] + t * dx, a[1] + t * dy);
    ((p[0] - x).powi(2) + (p[1] - y).powi(2)).sqrt()
}

fn orient(a: Point, b: Point, c: Point) -> f64 {
    (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
}

/// Whether segments `ab` and `cd` properly cross (touching at an end point does not count).
pub fn segments_cross(a: Point, b: Point, c: Point, d: Point) -> bool {
    let (o1, o2) = (orient(a, b, c), orient(a, b, d));
    let (o3, o4) = (orient(c, d, a), orient(c, d, b));
    o1 * o2 < 0.0 && o3 * o4 < 0.0
}

/// Signed distance of `p` from the infinite line through `a` and `b`: negative on side `a` (on
/// the left when walking from `a` to `b` in image coordinates, y down: for a line drawn left to
/// right, above it), positive on side `b`.
pub fn side(a: Point, b: Point, p: Point) -> f64 {
    let len = ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).sqrt();
    if len == 0.0 {
        return 0.0;
    }
    orient(a, b, p) / len
}

/// Check a tripwire: two distinct points inside the frame.
pub fn check_line(a: Point, b: Point) -> Result<(), String> {
    for (name, p) in [("a", a), ("b", b)] {
        let inside = |v: f64| v.is_finite() && (0.0..=1.0).contains(&v);
        if !(inside(p[0]) && inside(p[1])) {
            return Err(format!(
                "point {name} [{}, {}] is outside the frame; coordinates are fractions of width and height, 0 to 1",
                p[0], p[1]
            ));
        }
    }
    if ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).sqrt() < 1e-3 {
        return Err("a and b are the same point; a line needs two distinct points".into());
    }
    Ok(())
}

/// The point of a box `[x1, y1, x2, y2]` that stands for where an object is on the ground:
/// the middle of its bottom edge.
pub fn bottom_centre(b: [f32; 4]) -> Point {
    [f64::from(b[0] + b[2]) / 2.0, f64::from(b[3])]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn distance_to_the_edge_of_a_square() {
        let sq = [[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]];
        assert!(
            (distance_to_edge(&sq, [0.5, 0.45]) - 0.05).abs() < 1e-12,
            "above it"
        );
        assert!(
            (distance_to_edge(&sq, [0.5, 0.6]) - 0.1).abs() < 1e-12,
            "inside"
        );
        let corner = distance_to_edge(&sq, [-0.3, 0.1]);
        assert!((corner - 0.5).abs() < 1e-12, "nearest the corner: {corner}");
    }

    const SQUARE: [Point; 4] = [[0.2, 0.2], [0.8, 0.2], [0.8, 0.8], [0.2, 0.8]];

    #[test]
    fn checks_polygons() {
        assert!(check_polygon(&SQUARE).is_ok());
        assert!(
            check_polygon(&SQUARE[..2])
                .unwrap_err()
                .contains("at least 3")
        );
        assert!(
            check_polygon(&[[0.0, 0.0], [1.5, 0.0], [0.0, 1.0]])
                .unwrap_err()
                .contains("outside")
        );
        assert!(
            check_polygon(&[[0.0, 0.0], [0.5, 0.5], [1.0, 1.0]])
                .unwrap_err()
                .contains("no area")
        );
        let bowtie = [[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.5]];
        assert!(
            check_polygon(&bowtie)
                .unwrap_err()
                .contains("crosses itself")
        );
    }

    #[test]
    fn contains_and_bottom_centre() {
        assert!(contains(&SQUARE, [0.5, 0.5]));
        assert!(!contains(&SQUARE, [0.9, 0.5]));
        let [x, y] = bottom_centre([0.2, 0.1, 0.4, 0.9]);
        assert!((x - 0.3).abs() < 1e-6 && (y - 0.9).abs() < 1e-6, "{x} {y}");
    }

    proptest! {
        #[test]
        fn inside_a_rectangle_matches_the_bounds(
            x1 in 0.0f64..0.5, y1 in 0.0f64..0.5, w in 0.01f64..0.5, h in 0.01f64..0.5,
            px in 0.0f64..1.0, py in 0.0f64..1.0,
        ) {
            let rect = [[x1, y1], [x1 + w, y1], [x1 + w, y1 + h], [x1, y1 + h]];
            let expected = px > x1 && px < x1 + w && py > y1 && py < y1 + h;
            // Points within 1e-9 of an edge may go either way.
            let near_edge = (px - x1).abs() < 1e-9 || (px - x1 - w).abs() < 1e-9
                || (py - y1).abs() < 1e-9 || (py - y1 - h).abs() < 1e-9;
            prop_assume!(!near_edge);
            prop_assert_eq!(contains(&rect, [px, py]), expected);
            prop_assert!((area(&rect) - w * h).abs() < 1e-9);
            prop_assert!(check_polygon(&rect).is_ok());
        }

        #[test]
        fn point_order_does_not_change_containment(
            pts in proptest::collection::vec((0.0f64..1.0, 0.0f64..1.0), 3..8),
            px in 0.0f64..1.0, py in 0.0f64..1.0,
        ) {
            let poly: Vec<Point> = pts.iter().map(|&(x, y)| [x, y]).collect();
            let mut rev = poly.clone();
            rev.reverse();
            prop_assert_eq!(contains(&poly, [px, py]), contains(&rev, [px, py]));
        }

        #[test]
        fn side_flips_exactly_when_a_path_crosses_the_line(
            a in (0.0f64..1.0, 0.0f64..1.0), b in (0.0f64..1.0, 0.0f64..1.0),
            t in 0.05f64..0.95, off in 0.01f64..0.3,
        ) {
            let (a, b) = ([a.0, a.1], [b.0, b.1]);
            prop_assume!(check_line(a, b).is_ok());
            // A point on the segment, and two points `off` away on each side of it.
            let len = ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).sqrt();
            let n = [-(b[1] - a[1]) / len, (b[0] - a[0]) / len];
            let m = [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])];
            let p = [m[0] - off * n[0], m[1] - off * n[1]];
            let q = [m[0] + off * n[0], m[1] + off * n[1]];
            prop_assert!((side(a, b, p) + off).abs() < 1e-9);
            prop_assert!((side(a, b, q) - off).abs() < 1e-9);
            prop_assert!(segments_cross(p, q, a, b));
            // Swapping the ends swaps the sides.
            prop_assert!((side(b, a, p) - off).abs() < 1e-9);
        }

        #[test]
        fn crossing_is_symmetric(
            a in (0.0f64..1.0, 0.0f64..1.0), b in (0.0f64..1.0, 0.0f64..1.0),
            c in (0.0f64..1.0, 0.0f64..1.0), d in (0.0f64..1.0, 0.0f64..1.0),
        ) {
            let (a, b, c, d) = ([a.0, a.1], [b.0, b.1], [c.0, c.1], [d.0, d.1]);
            prop_assert_eq!(segments_cross(a, b, c, d), segments_cross(c, d, a, b));
            prop_assert_eq!(segments_cross(a, b, c, d), segments_cross(b, a, d, c));
        }
    }
}
