//! A pod's events, as the kubelet records them: Scheduled, Created, Started, Killing,
//! Unhealthy, BackOff, Failed, ... with the kubelet's reasons and messages.
//!
//! The supervisor keeps them in `<pod>/events.json`, written with the status (once per
//! wake-up, when something changed), also for detached pods. The file is bounded: an
//! event that repeats one already there (same object, type, reason and message) is
//! folded into it, with a count and its first and last time, as the API server's
//! event correlator does; messages are cut at 1024 bytes, as the API server cuts them;
//! and only the newest [`MAX_EVENTS`] are kept.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// How many distinct events a pod keeps.
pub const MAX_EVENTS: usize = 256;

/// The longest message kept (Kubernetes' limit for an event's message).
const MAX_MESSAGE: usize = 1024;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Normal or Warning.
    #[serde(rename = "type")]
    pub kind: String,
    pub reason: String,
    pub message: String,
    /// `spec.containers{NAME}` or `spec.initContainers{NAME}`; none for the pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_path: Option<String>,
    /// kubelet, or default-scheduler for Scheduled.
    pub source: String,
    pub count: u32,
    pub first_timestamp: String,
    pub last_timestamp: String,
}

/// What the supervisor has recorded so far.
#[derive(Debug, Default)]
pub struct EventLog {
    events: Vec<Event>,
    changed: bool,
}

impl EventLog {
    /// Records one event at wall time `at` (RFC 3339), folding it into an equal one.
    pub fn add(&mut self, mut event: Event, at: &str) {
        if event.message.len() > MAX_MESSAGE {
            let mut cut = MAX_MESSAGE;
            while !event.message.is_char_boundary(cut) {
                cut -= 1;
            }
            event.message.truncate(cut);
        }
        let same = |e: &Event| {
            (&e.kind, &e.reason, &e.message, &e.field_path)
                == (
                    &event.kind,
                    &event.reason,
                    &event.message,
                    &event.field_path,
                )
        };
        match self.events.iter().position(same) {
            Some(i) => {
                let mut e = self.events.remove(i);
                e.count = e.count.saturating_add(1);
                e.last_timestamp = at.into();
                self.events.push(e);
            }
            None => {
                event.count = 1;
                event.first_timestamp = at.into();
                event.last_timestamp = at.into();
                self.events.push(event);
                if self.events.len() > MAX_EVENTS {
                    self.events.remove(0);
                }
            }
        }
        self.changed = true;
    }

    /// The events, oldest first.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Writes the events to `path` if they changed since the last write.
    pub fn save(&mut self, path: &Path) {
        if std::mem::take(&mut self.changed) {
            // A state directory removed underneath the pod is not the pod's end.
            let _ = crate::state::write_json(path, &self.events);
        }
    }
}

/// A pod's events from its `events.json`, oldest first (none if it has not recorded
/// any).
pub fn read(path: &Path) -> Vec<Event> {
    crate::state::read_json(path).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(reason: &str, message: &str) -> Event {
        Event {
            kind: "Warning".into(),
            reason: reason.into(),
            message: message.into(),
            field_path: Some("spec.containers{a}".into()),
            source: "kubelet".into(),
            count: 0,
            first_timestamp: String::new(),
            last_timestamp: String::new(),
        }
    }

    #[test]
    fn repeats_fold_into_one_event_and_the_log_is_bounded() {
        let mut log = EventLog::default();
        log.add(event("BackOff", "Back-off restarting"), "t1");
        log.add(event("Unhealthy", "Liveness probe failed"), "t2");
        log.add(event("BackOff", "Back-off restarting"), "t3");
        assert_eq!(log.events.len(), 2);
        let back_off = &log.events[1];
        assert_eq!(
            (
                back_off.count,
                back_off.first_timestamp.as_str(),
                back_off.last_timestamp.as_str()
            ),
            (2, "t1", "t3")
        );
        for i in 0..1000 {
            log.add(
                event("Unhealthy", &format!("probe {i}: {}", "é".repeat(600))),
                "t",
            );
        }
        assert_eq!(log.events.len(), MAX_EVENTS);
        assert!(log.events.iter().all(|e| e.message.len() <= MAX_MESSAGE));
        assert!(log.events[MAX_EVENTS - 1].message.starts_with("probe 999"));
    }
}
