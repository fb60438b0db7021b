//! Snapshot requests from the diagnostics socket, fulfilled by the inference thread with the
//! next analysed frame of the camera. Costs one relaxed atomic load per frame while nobody
//! asks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use tokio::sync::oneshot;

use crate::evidence::Jpeg;

/// The answer to one request.
pub type Answer = Result<Jpeg, String>;

/// Waiting snapshot requests.
#[derive(Debug, Default)]
pub struct Snapshots {
    pending: AtomicBool,
    waiting: Mutex<Vec<(usize, oneshot::Sender<Answer>)>>,
}

impl Snapshots {
    /// Ask for the next analysed frame of camera `index`.
    pub fn request(&self, index: usize) -> oneshot::Receiver<Answer> {
        let (tx, rx) = oneshot::channel();
        let mut w = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        w.retain(|(_, tx)| !tx.is_closed());
        w.push((index, tx));
        self.pending.store(true, Ordering::Release);
        rx
    }

    /// Whether anyone waits for camera `index` (cheap when nobody waits at all).
    pub fn wanted(&self, index: usize) -> bool {
        self.pending.load(Ordering::Acquire)
            && self
                .waiting
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .any(|(i, _)| *i == index)
    }

    /// Answer everyone waiting for camera `index` with what `make` renders (once).
    pub fn fulfil(&self, index: usize, make: impl FnOnce() -> Answer) {
        let mine: Vec<oneshot::Sender<Answer>> = {
            let mut w = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            let (mine, rest): (Vec<_>, Vec<_>) = w.drain(..).partition(|(i, _)| *i == index);
            *w = rest;
            self.pending.store(!w.is_empty(), Ordering::Release);
            mine.into_iter().map(|(_, tx)| tx).collect()
        };
        if mine.is_empty() {
            return;
        }
        let answer = make();
        for tx in mine {
            let _ = tx.send(answer.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(w: u32) -> Answer {
        Ok(Jpeg {
            bytes: vec![0xFF, 0xD8],
            width: w,
            height: 1,
        })
    }

    #[test]
    fn a_request_is_answered_by_its_camera_only_and_once() {
        let s = Snapshots::default();
        assert!(!s.wanted(0), "nobody asked");
        let mut a = s.request(1);
        let mut b = s.request(1);
        let mut c = s.request(2);
        assert!(!s.wanted(0) && s.wanted(1) && s.wanted(2));
        s.fulfil(0, || panic!("camera 0 has no request to render for"));
        s.fulfil(1, || jpeg(7));
        assert_eq!(
            a.try_recv().ok().and_then(Result::ok).map(|j| j.width),
            Some(7)
        );
        assert_eq!(
            b.try_recv().ok().and_then(Result::ok).map(|j| j.width),
            Some(7)
        );
        assert!(c.try_recv().is_err(), "camera 2 still waits");
        assert!(!s.wanted(1) && s.wanted(2));
        s.fulfil(2, || Err("cannot encode".into()));
        assert_eq!(
            c.try_recv().ok().and_then(Result::err),
            Some("cannot encode".to_string())
        );
        assert!(!s.wanted(2));
    }

    #[test]
    fn a_client_that_gave_up_is_forgotten() {
        let s = Snapshots::default();
        drop(s.request(3));
        let _live = s.request(4);
        assert!(!s.wanted(3), "the abandoned request was dropped");
        assert!(s.wanted(4));
    }
}
