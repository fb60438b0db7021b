//! Deterministic synthetic model outputs for benchmarks and allocation tests of the
//! post-processing: values in 0..1 with about 0.5 % above 0.6, like a busy scene. Never used to
//! judge detection quality (the parity tests use real models).

/// Outputs of the given shapes, the same on every call.
pub fn outputs(shapes: &[Vec<usize>]) -> Vec<Vec<f32>> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    shapes
        .iter()
        .map(|s| {
            (0..s.iter().product::<usize>())
                .map(|_| {
                    // xorshift64
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let u = (state >> 40) as f32 / (1u64 << 24) as f32;
                    if u > 0.995 {
                        0.6 + (u - 0.995) * 60.0
                    } else {
                        u * 0.3
                    }
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn deterministic_and_sparse() {
        let a = super::outputs(&[vec![1, 100, 100]]);
        assert_eq!(a, super::outputs(&[vec![1, 100, 100]]));
        let high = a[0].iter().filter(|v| **v >= 0.6).count();
        assert!((10..=100).contains(&high), "{high}");
        assert!(a[0].iter().all(|v| (0.0..=1.0).contains(v)));
    }
}
