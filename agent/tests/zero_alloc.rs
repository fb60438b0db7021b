//! Our per-frame pre- and post-processing allocates nothing once warm: resize, normalise and
//! lay out the input; decode, un-map, NMS and top-k the outputs. A counting global allocator
//! proves it over 100 frames for a u8/NHWC/stretch model (SSD) and an f32/NCHW/BGR model with
//! letterbox (NanoDet), and for tracking plus every rule kind over 100 frames without events.
//! The inference engine's own allocations are outside this count; a test reports them
//! (printed, not asserted).
#![allow(unsafe_code)] // the counting allocator

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use vigil::detect::card::{self, ResizeMode};
use vigil::detect::post::Postprocess;
use vigil::detect::preprocess::Preprocessor;
use vigil::detect::{Detections, FrameView};

struct Counting;

thread_local! {
    /// Whether this thread's allocations are counted: only the measuring thread's, so that the
    /// test harness reporting another test meanwhile does not show up in the count.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn counting() -> bool {
    COUNTING.try_with(Cell::get).unwrap_or(false)
}
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counting() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if counting() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` on this thread (the tests below also run one at a time via a lock).
fn count(f: impl FnOnce()) -> u64 {
    ALLOCS.store(0, Ordering::SeqCst);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCS.load(Ordering::SeqCst)
}

static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn frame() -> (u32, u32, Vec<u8>) {
    let img = image::open(repo().join("tests/fixtures/plaza_t12.png"))
        .expect("fixture")
        .to_rgb8();
    let (w, h) = img.dimensions();
    (w, h, img.into_raw())
}

fn check(card_rel: &str, shapes: Vec<Vec<usize>>, letterbox: bool) {
    let _guard = LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let loaded = card::load(&repo().join(card_rel)).expect("card");
    let mut spec = loaded.card.input.clone();
    if letterbox {
        spec.resize = ResizeMode::Letterbox;
    }
    let mut pre = Preprocessor::new(spec);
    let post = Postprocess::new(&loaded.card, &loaded.labels, &shapes).expect("bind");
    let outputs = vigil::detect::synthetic::outputs(&shapes);
    let slices: Vec<&[f32]> = outputs.iter().map(Vec::as_slice).collect();
    let (w, h, data) = frame();
    // Still images come as RGB, cameras' frames as I420: both paths.
    let planar = vigil::pixels::rgb_to_i420(w, h, &data, vigil::pixels::Yuv::BT601);
    let views = [
        FrameView::rgb(w, h, &data),
        FrameView::i420(w, h, &planar, vigil::pixels::Yuv::BT601),
    ];
    let mut out = Detections::new();
    let frame_once = |pre: &mut Preprocessor, view, out: &mut Detections| {
        if pre.is_f32() {
            std::hint::black_box(pre.f32_tensor(view));
        } else {
            std::hint::black_box(pre.u8_tensor(view));
        }
        post.run(pre, &slices, out);
    };
    for view in views {
        // Warm up: buffers and tables are sized on the first frame.
        frame_once(&mut pre, view, &mut out);
        assert!(
            !out.is_empty(),
            "the fake outputs should produce detections"
        );
        let n = count(|| {
            for _ in 0..100 {
                frame_once(&mut pre, view, &mut out);
            }
        });
        assert_eq!(
            n, 0,
            "{card_rel} ({:?}): {n} allocations in 100 frames of pre/post-processing",
            view.format
        );
    }
}

#[test]
fn ssd_pre_and_post_processing_allocate_nothing() {
    check(
        "models/ssd_mobilenet_v2_coco/model.toml",
        vec![vec![1, 1917, 4], vec![1, 90, 1917]],
        false,
    );
}

#[test]
fn nanodet_letterboxed_pre_and_post_processing_allocate_nothing() {
    let shapes = vec![
        vec![1, 2704, 80],
        vec![1, 676, 80],
        vec![1, 169, 80],
        vec![1, 2704, 44],
        vec![1, 676, 44],
        vec![1, 169, 44],
    ];
    check("models/nanodet_m_416/model.toml", shapes, true);
}

#[test]
fn report_the_inference_engines_allocations() {
    let _guard = LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut det = vigil::detect::load(&repo().join("models/ssd_mobilenet_v2_coco/model.toml"))
        .expect("model");
    let (w, h, data) = frame();
    let view = FrameView::rgb(w, h, &data);
    let mut out = Detections::new();
    det.detect(view, &mut out).expect("warm-up");
    let n = count(|| {
        for _ in 0..10 {
            det.detect(view, &mut out).expect("detect");
        }
    });
    // Informational: tract allocates its input tensor and intermediate values per run.
    eprintln!(
        "tract SSD: {} allocations per frame (engine side, input tensor included)",
        n / 10
    );
    assert!(!out.is_empty());
}

/// Tracking and rules: three people walking in a zone towards a line, with filters and a mask,
/// plus a flickering fire detection that never confirms. After the warm-up (which opens the
/// incidents), 100 frames without events allocate nothing; events themselves allocate.
#[test]
fn tracking_and_rules_allocate_nothing_once_warm() {
    use std::time::{Duration, SystemTime};
    use vigil::detect::Detection;
    use vigil::rules::filter::{ClassFilters, ObjectFilter};
    use vigil::rules::fire::FireRule;
    use vigil::rules::lifecycle::Policy;
    use vigil::rules::line::{Direction, LineRule};
    use vigil::rules::track::TrackerConfig;
    use vigil::rules::{CameraRules, IncidentType, RuleSet, Severity, ZoneRule};

    let _guard = LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let policy = Policy {
        severity: Severity::Major,
        quiet: Duration::from_secs(10),
        update_min_interval: Duration::from_secs(2),
        heartbeat: Duration::from_secs(3600),
        cooldown: Duration::ZERO,
    };
    let mut filters = vec![None; 2];
    filters[0] = Some(ObjectFilter {
        min_area: Some(0.001),
        ..ObjectFilter::default()
    });
    let set = RuleSet {
        filters: ClassFilters(filters),
        masks: vec![vec![[0.9, 0.9], [1.0, 0.9], [1.0, 1.0]]],
        zones: vec![ZoneRule {
            name: "all".into(),
            polygon: vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]],
            classes: vec![0],
            min_score: 0.5,
            filters: ClassFilters::default(),
            intrusion: Some(policy),
            loitering: Some((Duration::from_secs(3600), policy)),
            crowding: None,
            hysteresis: vigil::rules::zone::Hysteresis {
                inertia: 3,
                margin: 0.05,
            },
        }],
        lines: vec![LineRule {
            name: "gate".into(),
            a: [0.8, 0.0],
            b: [0.8, 1.0],
            direction: Direction::Both,
            classes: vec![0],
            min_score: 0.5,
            hysteresis: 0.01,
            policy,
        }],
        fire: Some(FireRule {
            classes: vec![(1, IncidentType::Fire)],
            min_score: 0.3,
            min_hits: 3,
            window_frames: 5,
            window: Duration::from_secs(10),
            same_region: true,
            growth: false,
            policy,
        }),
        tracker: TrackerConfig::default(),
        detector_floor: 0.3,
    };
    let mut rules = CameraRules::new(set);
    let mut events = Vec::with_capacity(64);
    let frame = |i: u32| -> [Detection; 4] {
        // Slow walkers: the rightmost foot goes from x 0.38 to 0.66, never reaching the line at
        // 0.8 (a crossing would be an event, and events allocate their payload).
        let x = 0.1 + 0.002 * i as f32;
        let person = |dx: f32, y: f32| Detection {
            class: 0,
            score: 0.8,
            bbox: [x + dx, y - 0.2, x + dx + 0.05, y],
        };
        let flame = Detection {
            class: 1,
            score: if i.is_multiple_of(7) { 0.5 } else { 0.1 },
            bbox: [0.8, 0.1, 0.85, 0.2],
        };
        [
            person(0.0, 0.5),
            person(0.15, 0.7),
            person(0.25, 0.9),
            flame,
        ]
    };
    let step = Duration::from_millis(200);
    let mut run = |from: u32, to: u32, events: &mut Vec<_>| {
        for i in from..to {
            rules.evaluate(
                step * i,
                SystemTime::UNIX_EPOCH,
                16.0 / 9.0,
                &frame(i),
                events,
            );
            events.clear();
        }
    };
    run(0, 40, &mut events); // warm-up: tracks confirmed, incidents opened, buffers sized
    let n = count(|| run(40, 140, &mut events));
    assert_eq!(n, 0, "{n} allocations in 100 frames of tracking and rules");
}

/// The built-in fire and smoke detector: after its camera's first frames (which size its
/// scene), 100 frames of a 768×576 I420 stream with a flickering flame allocate nothing.
#[test]
fn the_builtin_fire_detector_allocates_nothing_once_warm() {
    use vigil::detect::Detector;
    use vigil::detect::firecue::FireCue;
    use vigil::pixels::Yuv;

    let _guard = LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (w, h) = (768usize, 576usize);
    let frames: Vec<Vec<u8>> = (0..4)
        .map(|k| {
            let mut d = vec![128u8; w * h * 3 / 2];
            let (y, uv) = d.split_at_mut(w * h);
            let (u, v) = uv.split_at_mut(w * h / 4);
            for (i, p) in y.iter_mut().enumerate() {
                *p = ((i * 7 + k * 13) % 160) as u8 + 40;
            }
            // The flame's edge moves inside a column of 8-pixel blocks; its brightness flickers.
            let side = 46 + 4 * (k % 2);
            for r in 200..200 + side {
                for c in 300..300 + side {
                    y[r * w + c] = 200 + 30 * (k % 2) as u8;
                    u[(r / 2) * (w / 2) + c / 2] = 70;
                    v[(r / 2) * (w / 2) + c / 2] = 200;
                }
            }
            d
        })
        .collect();
    let mut det = FireCue::new();
    let mut out = Detections::new();
    let view = |k: usize| FrameView::i420(w as u32, h as u32, &frames[k % 4], Yuv::BT601);
    for k in 0..20 {
        det.detect(view(k), &mut out).expect("warm-up");
    }
    assert!(
        out.iter().any(|d| d.class == vigil::detect::firecue::FIRE),
        "the flame is seen: {out:?}"
    );
    let n = count(|| {
        for k in 0..100 {
            det.detect(view(k), &mut out).expect("detect");
        }
    });
    assert_eq!(n, 0, "{n} allocations in 100 frames");
}
