//! The `.npy` reader of the golden files (little-endian f32, C order, format 1–3). Only `std`:
//! the fuzz targets include this file as it is.

/// A little-endian f32 array read from a `.npy` file.
#[derive(Debug, PartialEq)]
pub struct Npy {
    /// The shape.
    pub shape: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<f32>,
}

/// Parse the bytes of a `.npy` file of `<f4` values; any other content is an error that says
/// what is wrong, never a panic.
pub fn parse(bytes: &[u8]) -> Result<Npy, String> {
    let bad = |why: &str| format!("not a usable .npy file: {why}");
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("no NUMPY magic"));
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(format!(".npy version {v} is not supported")),
    };
    let header = start
        .checked_add(len)
        .and_then(|end| bytes.get(start..end))
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or_else(|| bad("truncated header"))?;
    if !header.contains("'descr': '<f4'") || !header.contains("'fortran_order': False") {
        return Err(bad(&format!(
            "want little-endian f32 in C order, header {header}"
        )));
    }
    let shape_text = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("no shape"))?;
    let shape = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| bad("bad shape")))
        .collect::<Result<Vec<_>, _>>()?;
    let body = &bytes[start + len..];
    let bytes_wanted = shape
        .iter()
        .try_fold(4usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| bad(&format!("shape {shape:?} is larger than memory")))?;
    if body.len() != bytes_wanted {
        return Err(bad(&format!(
            "{} data bytes for shape {shape:?}",
            body.len()
        )));
    }
    let data = body
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok(Npy { shape, data })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_bytes_are_an_array_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn any_header_after_the_magic_is_an_array_or_an_error(header in "\\PC{0,120}", body in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse(&file(&header, &body));
        }
    }

    fn file(header: &str, body: &[u8]) -> Vec<u8> {
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(header.len() as u16).to_le_bytes());
        b.extend_from_slice(header.as_bytes());
        b.extend_from_slice(body);
        b
    }

    #[test]
    fn a_small_array_reads_and_a_huge_shape_is_refused() {
        let h = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1), }";
        let got = parse(&file(h, &[0, 0, 128, 63, 0, 0, 0, 64])).expect("parse");
        assert_eq!(got.shape, [2, 1]);
        assert_eq!(got.data, [1.0, 2.0]);
        let huge = "{'descr': '<f4', 'fortran_order': False, 'shape': (18446744073709551615, 3), }";
        let e = parse(&file(huge, &[])).expect_err("refused");
        assert!(e.contains("larger than memory"), "{e}");
        assert!(parse(b"\x93NUMPY\x02\x00\xff\xff\xff\xff").is_err());
    }
}
