//! The driver's publisher: what the pod tells the world. Its status
//! (`status.json`, written whole by rename, so `wait` wakes on inotify), its events
//! (`events.json`), and, in the foreground under systemd, sd_notify lines.
//!
//! A burst of changes (three containers ending at once) is one write: the status is
//! kept until the driver's wake-up is over, then published once.

use crate::events::{Event, EventLog};
use crate::layout::PodPaths;
use crate::notify::Notifier;
use crate::status::PodStatus;

pub struct Publisher {
    pod: String,
    paths: PodPaths,
    events: EventLog,
    /// The status to write once this wake-up's events are handled.
    unpublished: Option<PodStatus>,
    /// systemd, when `up` runs in the foreground as a Type=notify service.
    notify: Option<Notifier>,
}

impl Publisher {
    pub fn new(paths: PodPaths, notify: Option<Notifier>) -> Publisher {
        Publisher {
            pod: paths.name.clone(),
            paths,
            events: EventLog::default(),
            unpublished: None,
            notify,
        }
    }

    /// Records an event about the pod, or about one of its containers (`object`).
    pub fn event(
        &mut self,
        object: Option<String>,
        warning: bool,
        reason: &str,
        message: String,
        source: &str,
    ) {
        let event = Event {
            kind: if warning { "Warning" } else { "Normal" }.into(),
            reason: reason.into(),
            message,
            field_path: object,
            source: source.into(),
            count: 0,
            first_timestamp: String::new(),
            last_timestamp: String::new(),
        };
        self.events.add(event, &crate::status::now_rfc3339());
    }

    /// The pod's status changed: published at the end of the wake-up.
    pub fn status(&mut self, status: PodStatus) {
        self.unpublished = Some(status);
    }

    /// The pod's events so far.
    pub fn events(&self) -> &[Event] {
        self.events.events()
    }

    /// The pod begins to stop (systemd's STOPPING=1).
    pub fn stopping(&mut self) {
        if let Some(n) = &mut self.notify {
            n.stopping(&self.pod);
        }
    }

    /// Writes what changed since the last time.
    pub fn publish(&mut self) {
        self.events.save(&self.paths.events());
        if let Some(status) = self.unpublished.take() {
            if let Some(n) = &mut self.notify {
                n.status(&self.pod, &status);
            }
            // A state directory removed underneath the pod is not the pod's end.
            let _ = crate::state::write_json(&self.paths.status(), &status);
        }
    }
}
