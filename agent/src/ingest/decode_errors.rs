//! Counting decode errors that decoders only write to GStreamer's debug log.
//!
//! libav (`avdec_h264`, `avdec_h265`, …) conceals damaged slices and says so only through its
//! log ("error while decoding MB …", "concealing … errors"), which gst-libav forwards to the
//! `libav` debug category. No bus message, no flag on the buffer. To count that damage per
//! camera, vigil:
//!
//! - lowers the `libav` category's threshold to ERROR and adds a log function that notices
//!   those lines ([`install`]);
//! - runs each decoder single-threaded (`max-threads = 1`), so libav logs from the streaming
//!   thread that pushed the damaged data, and marks that thread with the camera's counters
//!   from a probe on the decoder's sink pad ([`watch_decoder`]).
//!
//! One damaged input unit counts once however many lines libav writes about it. Without
//! `GST_DEBUG` in the environment, GStreamer's default log printer is removed so these lines
//! do not flood stderr; with it, the user's thresholds are left alone (counting then needs the
//! `libav` category at ERROR or above, which any `GST_DEBUG` level ≥ 1 gives).

use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Once};

use gstreamer as gst;
use gstreamer::prelude::*;

use super::slot::Counters;

/// The camera whose data this thread is decoding.
struct Decoding {
    counters: Arc<Counters>,
    /// Input units pushed into the decoder on this thread.
    unit: u64,
    /// The last unit counted as damaged.
    counted: u64,
}

thread_local! {
    static DECODING: RefCell<Option<Decoding>> = const { RefCell::new(None) };
}

static INSTALL: Once = Once::new();

/// Install the log hook (once per process; later calls do nothing).
pub fn install() {
    INSTALL.call_once(|| {
        if std::env::var_os("GST_DEBUG").is_none() {
            gst::log::remove_default_log_function();
            gst::log::set_threshold_for_name("libav", gst::DebugLevel::Error);
        }
        gst::log::add_log_function(|category, level, _file, _function, _line, _object, _msg| {
            if level == gst::DebugLevel::Error && category.name() == "libav" {
                damaged_here();
            }
        });
    });
}

/// Count damage in the unit this thread is decoding; `false` when the thread decodes for no
/// camera (a decoder vigil does not watch, or one running its own threads).
pub fn damaged_here() -> bool {
    DECODING.with(|d| match d.borrow_mut().as_mut() {
        Some(d) => {
            if d.counted != d.unit {
                d.counted = d.unit;
                d.counters.decode_errors.fetch_add(1, Ordering::Relaxed);
            }
            true
        }
        None => false,
    })
}

/// Count one decode error for `counters`, once per damaged unit when this thread is
/// decoding for a camera (libav may already have logged the same damage).
pub fn count(counters: &Counters) {
    if !damaged_here() {
        counters.decode_errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// Prepare a decoder that `decodebin` just created for a camera: single-threaded, never
/// giving up on corrupt data, and with its input marked as the camera's.
pub fn watch_decoder(element: &gst::Element, counters: &Arc<Counters>) {
    // A decoder gives up (posts an error) after a few corrupt frames by default; a camera
    // stream with bit errors must keep decoding the good frames.
    if has_property::<i32>(element, "max-errors") {
        element.set_property("max-errors", -1i32);
    }
    // libav's own threads would log outside the streaming thread; cameras decode in
    // parallel with each other instead.
    if has_property::<i32>(element, "max-threads") {
        element.set_property("max-threads", 1i32);
    }
    let Some(pad) = element.static_pad("sink") else {
        return;
    };
    let counters = Arc::clone(counters);
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        DECODING.with(|d| {
            let mut d = d.borrow_mut();
            match d.as_mut() {
                Some(cur) if Arc::ptr_eq(&cur.counters, &counters) => cur.unit += 1,
                _ => {
                    *d = Some(Decoding {
                        counters: Arc::clone(&counters),
                        unit: 1,
                        counted: 0,
                    })
                }
            }
        });
        gst::PadProbeReturn::Ok
    });
}

/// Whether `element` is a decoder (by its factory's class).
pub fn is_decoder(element: &gst::Element) -> bool {
    element
        .factory()
        .is_some_and(|f| f.metadata("klass").is_some_and(|k| k.contains("Decoder")))
}

fn has_property<T: StaticType>(element: &gst::Element, name: &str) -> bool {
    element
        .find_property(name)
        .is_some_and(|p| p.value_type() == T::static_type())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_damaged_unit_counts_once_and_unmarked_threads_count_nothing() {
        let counters = Arc::new(Counters::default());
        assert!(!damaged_here(), "no camera on this thread yet");
        DECODING.with(|d| {
            *d.borrow_mut() = Some(Decoding {
                counters: Arc::clone(&counters),
                unit: 1,
                counted: 0,
            })
        });
        assert!(damaged_here());
        assert!(damaged_here(), "a second line about the same unit");
        assert_eq!(counters.decode_errors.load(Ordering::Relaxed), 1);
        DECODING.with(|d| {
            if let Some(d) = d.borrow_mut().as_mut() {
                d.unit += 1;
            }
        });
        damaged_here();
        assert_eq!(counters.decode_errors.load(Ordering::Relaxed), 2);
        DECODING.with(|d| *d.borrow_mut() = None);
    }
}
