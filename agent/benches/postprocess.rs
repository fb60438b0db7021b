//! Criterion benchmarks of vigil's own per-frame work around inference: resize/normalise from
//! RGB and from a camera's I420, decode + un-map + NMS (SSD and NanoDet layouts), NMS alone,
//! the picture checks' grey image, and an evidence JPEG beside the `image` crate's encoder on
//! the same picture (the reference). `cargo bench -p vigil`.

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use image::ImageEncoder;
use vigil::detect::card;
use vigil::detect::nms::nms;
use vigil::detect::post::Postprocess;
use vigil::detect::preprocess::Preprocessor;
use vigil::detect::{Detection, Detections, FrameView};
use vigil::evidence::{EvidenceSettings, annotate};
use vigil::ingest::picture::Gray;
use vigil::pixels::{Yuv, rgb_to_i420};

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn bench_card(c: &mut Criterion, name: &str, card_rel: &str, shapes: Vec<Vec<usize>>) {
    let loaded = card::load(&repo().join(card_rel)).expect("card");
    let img = image::open(repo().join("tests/fixtures/plaza_t12.png"))
        .expect("fixture")
        .to_rgb8();
    let (w, h) = img.dimensions();
    let data = img.into_raw();
    let view = FrameView::rgb(w, h, &data);
    let planar = rgb_to_i420(w, h, &data, Yuv::BT601);
    let i420 = FrameView::i420(w, h, &planar, Yuv::BT601);
    let mut pre = Preprocessor::new(loaded.card.input.clone());
    let post = Postprocess::new(&loaded.card, &loaded.labels, &shapes).expect("bind");
    let outputs = vigil::detect::synthetic::outputs(&shapes);
    let slices: Vec<&[f32]> = outputs.iter().map(Vec::as_slice).collect();
    let mut out = Detections::new();
    for (bench, frame) in [("preprocess", view), ("preprocess-i420", i420)] {
        c.bench_function(&format!("{name}/{bench}"), |b| {
            b.iter(|| {
                if pre.is_f32() {
                    black_box(pre.f32_tensor(frame));
                } else {
                    black_box(pre.u8_tensor(frame));
                }
            })
        });
    }
    c.bench_function(&format!("{name}/decode+nms"), |b| {
        b.iter(|| post.run(&pre, black_box(&slices), &mut out))
    });
}

fn benches(c: &mut Criterion) {
    bench_card(
        c,
        "ssd",
        "models/ssd_mobilenet_v2_coco/model.toml",
        vec![vec![1, 1917, 4], vec![1, 90, 1917]],
    );
    bench_card(
        c,
        "nanodet",
        "models/nanodet_m_416/model.toml",
        vec![
            vec![1, 2704, 80],
            vec![1, 676, 80],
            vec![1, 169, 80],
            vec![1, 2704, 44],
            vec![1, 676, 44],
            vec![1, 169, 44],
        ],
    );
    // NMS alone on 300 overlapping candidates of 3 classes.
    let base: Vec<Detection> = (0..300)
        .map(|i| {
            let x = (i % 20) as f32 * 0.045;
            let y = (i / 20) as f32 * 0.06;
            Detection {
                class: (i % 3) as u16,
                score: 0.5 + (i * 7 % 50) as f32 / 100.0,
                bbox: [x, y, x + 0.08, y + 0.12],
            }
        })
        .collect();
    let mut work = Detections::new();
    c.bench_function("nms/300", |b| {
        b.iter(|| {
            work.clear();
            work.extend(base.iter().copied());
            nms(&mut work, 0.5, false, 100);
            black_box(work.len())
        })
    });
}

/// The picture checks' grey image and an evidence picture, from the plaza frame as a camera
/// hands it over (I420).
fn frame_benches(c: &mut Criterion) {
    let img = image::open(repo().join("tests/fixtures/plaza_t12.png"))
        .expect("fixture")
        .to_rgb8();
    let (w, h) = img.dimensions();
    let planar = rgb_to_i420(w, h, img.as_raw(), Yuv::BT601);
    let i420 = FrameView::i420(w, h, &planar, Yuv::BT601);
    let mut grey = Gray::default();
    c.bench_function("picture/grey-rgb", |b| {
        b.iter(|| grey.fill(black_box(FrameView::rgb(w, h, img.as_raw()))))
    });
    c.bench_function("picture/grey-i420", |b| {
        b.iter(|| grey.fill(black_box(i420)))
    });
    let settings = EvidenceSettings::default();
    c.bench_function("evidence/i420-to-jpeg", |b| {
        b.iter(|| annotate(black_box(i420), &[], &[], &settings).expect("jpeg"))
    });
    c.bench_function("evidence/rgb-to-jpeg", |b| {
        b.iter(|| {
            annotate(
                black_box(FrameView::rgb(w, h, img.as_raw())),
                &[],
                &[],
                &settings,
            )
            .expect("jpeg")
        })
    });
    // Reference: the `image` crate's own JPEG encoder on the same RGB picture and quality.
    c.bench_function("evidence/rgb-to-jpeg-image-crate", |b| {
        b.iter(|| {
            let mut bytes = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, settings.quality)
                .write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)
                .expect("jpeg");
            black_box(bytes)
        })
    });
}

criterion_group!(group, benches, frame_benches);
criterion_main!(group);
