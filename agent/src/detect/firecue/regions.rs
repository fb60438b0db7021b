//! Blocks to boxes: the 4-connected groups of blocks whose confidence in a kind passes a low
//! mark, each reported as one box scored by its most confident block. Working memory is sized
//! once per grid; nothing allocates per frame.

use super::blocks::Grid;
use crate::detect::{Detection, Detections, offer};

/// Confidence from which a block joins a region (its box); the region's score is its best
/// block's.
pub const JOIN: f32 = 0.2;

/// Which groups become detections.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Accept {
    /// Class id of the detections.
    pub class: u16,
    /// Least score (the group's best block).
    pub floor: f32,
    /// Fewest blocks of a group, however sure its best block.
    pub min_blocks: u32,
}

/// Reusable working memory of the grouping.
#[derive(Debug, Clone, Default)]
pub struct Regions {
    seen: Vec<bool>,
    stack: Vec<u32>,
}

impl Regions {
    /// Working memory for `grid`.
    pub fn new(grid: &Grid) -> Regions {
        Regions {
            seen: vec![false; grid.len()],
            stack: Vec::with_capacity(grid.len()),
        }
    }

    /// Add to `out` a detection for each group of blocks whose confidence (`conf`, one per
    /// block, row order) is at least [`JOIN`] that `accept` accepts and, with `need`, that
    /// holds a block marked in it.
    pub fn find(
        &mut self,
        grid: &Grid,
        conf: &[f32],
        need: Option<&[bool]>,
        accept: Accept,
        out: &mut Detections,
    ) {
        self.seen.fill(false);
        for start in 0..grid.len() {
            if self.seen[start] || conf[start] < JOIN {
                continue;
            }
            self.seen[start] = true;
            self.stack.clear();
            self.stack.push(start as u32);
            let (mut c0, mut r0, mut c1, mut r1) = (usize::MAX, usize::MAX, 0, 0);
            let (mut count, mut best, mut needed) = (0u32, 0.0f32, need.is_none());
            while let Some(i) = self.stack.pop() {
                let i = i as usize;
                let (c, r) = (i % grid.cols, i / grid.cols);
                (c0, r0, c1, r1) = (c0.min(c), r0.min(r), c1.max(c), r1.max(r));
                count += 1;
                best = best.max(conf[i]);
                needed |= need.is_some_and(|n| n[i]);
                let mut visit = |j: usize| {
                    if !self.seen[j] && conf[j] >= JOIN {
                        self.seen[j] = true;
                        self.stack.push(j as u32);
                    }
                };
                if c > 0 {
                    visit(i - 1);
                }
                if c + 1 < grid.cols {
                    visit(i + 1);
                }
                if r > 0 {
                    visit(i - grid.cols);
                }
                if r + 1 < grid.rows {
                    visit(i + grid.cols);
                }
            }
            if needed && best >= accept.floor && count >= accept.min_blocks {
                offer(
                    out,
                    Detection {
                        class: accept.class,
                        score: best,
                        bbox: grid.bbox(c0, r0, c1, r1),
                    },
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_become_boxes_and_specks_do_not() {
        let grid = Grid::of(32, 32).expect("grid"); // 8×8 blocks of 4 px
        assert_eq!((grid.cols, grid.rows), (8, 8));
        let mut conf = vec![0.0; 64];
        // A 2×2 group at columns 1–2, rows 1–2, best 0.8.
        for i in [9, 10, 17, 18] {
            conf[i] = 0.4;
        }
        conf[10] = 0.8;
        // A lone weak block at (6, 6).
        conf[54] = 0.6;
        let accept = |class| Accept {
            class,
            floor: 0.5,
            min_blocks: 2,
        };
        let mut out = Detections::new();
        Regions::new(&grid).find(&grid, &conf, None, accept(0), &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].score, 0.8);
        assert_eq!(out[0].bbox, [0.125, 0.125, 0.375, 0.375]);
        // However sure, a lone block is below the fewest blocks; the class is the caller's.
        conf[54] = 0.95;
        out.clear();
        Regions::new(&grid).find(&grid, &conf, None, accept(1), &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out.iter().all(|d| d.class == 1));
        // Only groups holding a needed block count.
        let mut need = vec![false; 64];
        need[17] = true;
        out.clear();
        Regions::new(&grid).find(&grid, &conf, Some(&need), accept(0), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].score, 0.8);
    }
}
