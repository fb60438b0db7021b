//! Criterion benchmarks of vigil's own per-frame work around inference: resize/normalise,
//! decode + un-map + NMS (SSD and NanoDet layouts), and NMS alone. `cargo bench -p vigil`.

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use vigil::detect::card;
use vigil::detect::nms::nms;
use vigil::detect::post::Postprocess;
use vigil::detect::preprocess::Preprocessor;
use vigil::detect::{Detection, Detections, FrameView};

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
    let mut pre = Preprocessor::new(loaded.card.input.clone());
    let post = Postprocess::new(&loaded.card, &loaded.labels, &shapes).expect("bind");
    let outputs = vigil::detect::synthetic::outputs(&shapes);
    let slices: Vec<&[f32]> = outputs.iter().map(Vec::as_slice).collect();
    let mut out = Detections::new();
    c.bench_function(&format!("{name}/preprocess"), |b| {
        b.iter(|| {
            if pre.is_f32() {
                black_box(pre.f32_tensor(view));
            } else {
                black_box(pre.u8_tensor(view));
            }
        })
    });
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

criterion_group!(group, benches);
criterion_main!(group);
