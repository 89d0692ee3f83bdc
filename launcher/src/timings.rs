//! `LAUNCHER_TIMINGS=1`: where `up` and `down` spend their time, phase by phase, on
//! stderr when they end (`make bench` prints them beside its totals).
//!
//! A phase is the time since the previous mark. A detached supervisor's phases
//! come back to `up` after its ready answer (`timing MICROS NAME` lines) and are
//! printed among `up`'s own, indented.

use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Clock {
    last: Instant,
    phases: Vec<(String, Duration)>,
}

static CLOCK: Mutex<Option<Clock>> = Mutex::new(None);

/// The variable that turns timings on.
pub const ENV: &str = "LAUNCHER_TIMINGS";

/// Starts the clock, if timings are asked for; a no-op otherwise.
pub fn start() {
    let on = std::env::var_os(ENV).is_some_and(|v| !v.is_empty() && v != "0");
    if let (true, Ok(mut clock)) = (on, CLOCK.lock()) {
        *clock = Some(Clock {
            last: Instant::now(),
            phases: Vec::new(),
        });
    }
}

/// Starts over: what follows is a new command's (a supervisor's stop). `on`: the
/// clock runs from here even if it did not (the `down` asking had timings on).
pub fn restart(on: bool) {
    if let Ok(mut guard) = CLOCK.lock() {
        if on || guard.is_some() {
            *guard = Some(Clock {
                last: Instant::now(),
                phases: Vec::new(),
            });
        }
    }
}

/// A stop request's text: the grace period, and whether the phases of the stop are
/// wanted back.
pub fn stop_request(grace: &str, timings: bool) -> String {
    match timings {
        true => format!("{grace} {TIMINGS_WANTED}"),
        false => grace.to_string(),
    }
}

/// The word of a stop request that asks for the stop's phases.
pub const TIMINGS_WANTED: &str = "timings";

/// The phase `name` ended now.
pub fn mark(name: &str) {
    if let Ok(mut guard) = CLOCK.lock() {
        if let Some(clock) = guard.as_mut() {
            let now = Instant::now();
            clock.phases.push((name.to_string(), now - clock.last));
            clock.last = now;
        }
    }
}

/// Phases measured elsewhere (a supervisor's), as one of ours: `name` covers them,
/// its own time what they leave of it.
pub fn nested(name: &str, inner: Vec<(String, Duration)>) {
    if let Ok(mut guard) = CLOCK.lock() {
        if let Some(clock) = guard.as_mut() {
            let now = Instant::now();
            let total = now - clock.last;
            let own = total.saturating_sub(inner.iter().map(|(_, d)| *d).sum());
            clock
                .phases
                .push((format!("{name} (total {})", ms(total)), own));
            for (n, d) in inner {
                clock.phases.push((format!("  {n}"), d));
            }
            clock.last = now;
        }
    }
}

/// Is the clock running?
pub fn on() -> bool {
    CLOCK.lock().is_ok_and(|c| c.is_some())
}

/// The phases so far, as `timing MICROS NAME` lines.
pub fn encode() -> String {
    let phases = CLOCK
        .lock()
        .ok()
        .and_then(|c| c.as_ref().map(|c| c.phases.clone()))
        .unwrap_or_default();
    phases
        .iter()
        .map(|(n, d)| format!("timing {} {n}\n", d.as_micros()))
        .collect()
}

/// The phases in `timing` lines (others are left out).
pub fn decode(text: &str) -> Vec<(String, Duration)> {
    text.lines()
        .filter_map(|l| {
            let (us, name) = l.strip_prefix("timing ")?.split_once(' ')?;
            Some((name.to_string(), Duration::from_micros(us.parse().ok()?)))
        })
        .collect()
}

/// Prints the phases on stderr, one per line, if the clock runs.
pub fn report(command: &str) {
    let Ok(guard) = CLOCK.lock() else {
        return;
    };
    let Some(clock) = guard.as_ref() else {
        return;
    };
    // A nested phase's own time and its parts' add up to its total.
    let total: Duration = clock.phases.iter().map(|(_, d)| *d).sum();
    let mut text = format!("launcher: {command} timings (total {}):\n", ms(total));
    for (name, d) in &clock.phases {
        text += &format!("  {:>9}  {name}\n", ms(*d));
    }
    let _ = std::io::Write::write_all(&mut std::io::stderr(), text.as_bytes());
}

fn ms(d: Duration) -> String {
    format!("{:.2}ms", d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_go_through_the_ready_pipe() {
        let phases = vec![
            ("pause".to_string(), Duration::from_micros(1500)),
            ("spawn a".to_string(), Duration::from_micros(20)),
        ];
        let text: String = phases
            .iter()
            .map(|(n, d)| format!("timing {} {n}\n", d.as_micros()))
            .collect();
        assert_eq!(decode(&format!("ok\n{text}")), phases);
    }
}
