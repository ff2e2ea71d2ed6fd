//! An in-process doorbell pair (feature `std`): both endpoints in one process, e.g. two
//! threads of a host test. It keeps the [`Transport`] contract like an interrupt does: a ring
//! after the last wait is never lost.

extern crate std;

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::{Transport, Wake};

/// Ring counters of both endpoints.
#[derive(Default)]
struct Bells {
    rung: Mutex<[u64; 2]>,
    changed: Condvar,
}

/// One endpoint's side of a [`pair`].
pub struct LocalTransport {
    bells: Arc<Bells>,
    me: usize,
    seen: u64,
    timeout: Duration,
    /// Rings sent.
    pub rings: u64,
    /// Waits started.
    pub waits: u64,
}

/// A connected pair of transports for endpoints 0 and 1; each wait gives up after `timeout`.
pub fn pair(timeout: Duration) -> (LocalTransport, LocalTransport) {
    let bells = Arc::new(Bells::default());
    let side = |me| LocalTransport {
        bells: bells.clone(),
        me,
        seen: 0,
        timeout,
        rings: 0,
        waits: 0,
    };
    (side(0), side(1))
}

impl Transport for LocalTransport {
    fn ring(&mut self) -> Result<(), i32> {
        self.rings += 1;
        let mut rung = self.bells.rung.lock().map_err(|_| -1)?;
        rung[1 - self.me] += 1;
        self.bells.changed.notify_all();
        Ok(())
    }

    fn wait(&mut self) -> Result<Wake, i32> {
        self.waits += 1;
        let rung = self.bells.rung.lock().map_err(|_| -1)?;
        let (rung, result) = self
            .bells
            .changed
            .wait_timeout_while(rung, self.timeout, |r| r[self.me] == self.seen)
            .map_err(|_| -1)?;
        if result.timed_out() {
            return Ok(Wake::TimedOut);
        }
        self.seen = rung[self.me];
        Ok(Wake::Signalled)
    }
}
