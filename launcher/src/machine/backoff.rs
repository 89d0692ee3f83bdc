//! The kubelet's restart back-off for one container: the first restart comes at once;
//! each later one waits 10 s, 20 s, 40 s, ... capped at 300 s, counted from the exit;
//! the back-off resets once a container has run 10 minutes. All three figures scale
//! with `--backoff-scale` (validated to (0, 1000]) for tests.

use std::time::Duration;

const BASE: Duration = Duration::from_secs(10);
const MAX: Duration = Duration::from_secs(300);
const RESET: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    scale: f64,
    next: Option<Duration>,
}

impl Backoff {
    pub fn new(scale: f64) -> Backoff {
        Backoff { scale, next: None }
    }

    fn scaled(&self, d: Duration) -> Duration {
        Duration::try_from_secs_f64(d.as_secs_f64() * self.scale).unwrap_or(d)
    }

    /// Delay before restarting a container that ran for `ran`; advances the back-off.
    pub fn on_exit(&mut self, ran: Duration) -> Duration {
        if ran >= self.scaled(RESET) {
            self.next = None;
        }
        match self.next {
            None => {
                self.next = Some(self.scaled(BASE));
                Duration::ZERO
            }
            Some(d) => {
                self.next = Some(d.saturating_mul(2).min(self.scaled(MAX)));
                d
            }
        }
    }
}
