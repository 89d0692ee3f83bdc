//! `launcher events [NAME] [-w]`: the events of one pod or of all, oldest first, as
//! `kubectl events` lists them; `-w` keeps printing new ones (and repeats of old
//! ones, with their count), woken by inotify when a supervisor writes its pod's
//! events, until the pod ends (or, for all pods, until interrupted).

use super::{handle::supervisor_alive, print, Opts, PodHandle};
use crate::cli;
use crate::events::Event;
use anyhow::{Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use std::collections::HashMap;
use std::os::fd::AsFd;
use std::time::SystemTime;

/// An event as one pod's: (pod, event).
type Row = (String, Event);

pub fn events(opts: &Opts, args: &cli::Events) -> Result<i32> {
    let root = opts.open_root()?;
    // kubectl's --types: Normal and Warning, in any case.
    let mut types = Vec::new();
    for t in &args.types {
        match ["Normal", "Warning"]
            .iter()
            .find(|k| k.eq_ignore_ascii_case(t.trim()))
        {
            Some(k) => types.push(*k),
            None => {
                let why = format!("--types {t:?}: valid types are Normal and Warning");
                return Err(super::Usage::Invalid(why).into());
            }
        }
    }
    let wanted = |e: &Event| types.is_empty() || types.contains(&e.kind.as_str());
    let name = match (&args.name, &args.for_object) {
        (Some(n), _) => Some(n.clone()),
        (None, Some(object)) => super::pod_names(std::slice::from_ref(object))?.pop(),
        (None, None) => None,
    };
    let single = match &name {
        Some(name) => {
            let pod = PodHandle::new(opts, name)?;
            pod.record()?;
            Some(pod)
        }
        None => None,
    };
    let names = || match &single {
        Some(pod) => vec![pod.name.clone()],
        None => root.pods(),
    };
    let collect = || -> Vec<Row> {
        let mut rows: Vec<Row> = names()
            .into_iter()
            .flat_map(|n| {
                let events = crate::events::read(&root.roots.events(&n));
                events.into_iter().map(move |e| (n.clone(), e))
            })
            .filter(|(_, e)| wanted(e))
            .collect();
        rows.sort_by(|a, b| a.1.last_timestamp.cmp(&b.1.last_timestamp));
        rows
    };
    if let Some(format) = args.output {
        let uid = |pod: &str| {
            crate::record::PodRecord::load(&root, pod)
                .map(|r| r.facts.uid)
                .unwrap_or_default()
        };
        let list = event_list(&collect(), uid);
        print(&match format {
            cli::StatusFormat::Json => serde_json::to_string_pretty(&list)? + "\n",
            cli::StatusFormat::Yaml => crate::kube::to_yaml(&list)?,
        })?;
        return Ok(0);
    }
    let mut shown: HashMap<(String, String, String, String), u32> = HashMap::new();
    let mut header = true;
    let mut show = |rows: Vec<Row>, header: &mut bool| -> Result<()> {
        let fresh: Vec<Row> = rows
            .into_iter()
            .filter(|(pod, e)| {
                let key = (
                    pod.clone(),
                    e.field_path.clone().unwrap_or_default(),
                    e.reason.clone(),
                    e.message.clone(),
                );
                shown.insert(key, e.count) != Some(e.count)
            })
            .collect();
        if fresh.is_empty() {
            return Ok(());
        }
        print(&table(&fresh, std::mem::take(header), SystemTime::now()))
    };
    let rows = collect();
    if rows.is_empty() && !args.watch {
        super::warn(&match &single {
            Some(pod) => format!("no events found for pod {}", pod.name),
            None => "no events found".into(),
        });
        return Ok(0);
    }
    show(rows, &mut header)?;
    if !args.watch {
        return Ok(0);
    }
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
        .context("failed to watch the state root (inotify)")?;
    inotify
        .add_watch(
            &root.dir,
            AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_ONLYDIR,
        )
        .with_context(|| format!("failed to watch {}", root.dir.display()))?;
    // Each pod's supervisor also tells its last events when the pod ends, before its
    // state goes (with `down`, events.json goes with it, maybe before this process
    // read its last version): asked at each wake until it listens (a pod being made
    // has no socket yet), and once it has answered, no more while the pod is there.
    let mut last: HashMap<String, LastEvents> = HashMap::new();
    let mut answered: std::collections::HashSet<String> = Default::default();
    loop {
        let pods = names();
        for n in &pods {
            let _ = inotify.add_watch(
                &root.pod_dir(n),
                AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_ONLYDIR,
            );
            if !last.contains_key(n) && !answered.contains(n) {
                if let Some(l) = LastEvents::ask(&root.roots.attach_socket(n)) {
                    last.insert(n.clone(), l);
                }
            }
        }
        // A pod of that name made again is asked again.
        answered.retain(|n| pods.contains(n));
        // The pod's last events are written before its supervisor exits.
        let over = single
            .as_ref()
            .is_some_and(|p| !p.record().is_ok_and(|r| supervisor_alive(&r)));
        show(collect(), &mut header)?;
        if over {
            return Ok(0);
        }
        let supervisor = single
            .as_ref()
            .and_then(|p| p.record().ok()?.supervisor)
            .and_then(|s| crate::sys::pidfd_open(s.pid).ok());
        {
            let mut fds = vec![PollFd::new(inotify.as_fd(), PollFlags::POLLIN)];
            if let Some(fd) = &supervisor {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            }
            for l in last.values() {
                fds.push(PollFd::new(l.stream.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e).context("failed to wait (poll)"),
            }
        }
        let mut ended = Vec::new();
        last.retain(|pod, l| match l.read() {
            Heard::Nothing => true,
            Heard::End(events) => {
                ended.extend(events.into_iter().map(|e| (pod.clone(), e)));
                answered.insert(pod.clone());
                false
            }
            // A supervisor that does not tell them: events.json as before.
            Heard::Lost => {
                answered.insert(pod.clone());
                false
            }
        });
        if !ended.is_empty() {
            ended.retain(|(_, e)| wanted(e));
            ended.sort_by(|a, b| a.1.last_timestamp.cmp(&b.1.last_timestamp));
            show(ended, &mut header)?;
            // One pod's watch ends with its pod.
            if single.is_some() {
                return Ok(0);
            }
        }
        while inotify.read_events().is_ok_and(|e| !e.is_empty()) {}
    }
}

/// The connection on which a pod's supervisor tells its last events when the pod
/// ends (the attach protocol's Events).
struct LastEvents {
    stream: std::os::unix::net::UnixStream,
    read: Vec<u8>,
    events: Vec<Event>,
}

/// What the supervisor said so far.
enum Heard {
    Nothing,
    /// The pod ended: its events, all of them.
    End(Vec<Event>),
    /// The connection ended without them.
    Lost,
}

impl LastEvents {
    /// Asks the supervisor listening at `socket`; None if none does.
    fn ask(socket: &std::path::Path) -> Option<LastEvents> {
        use std::io::Write;
        let mut stream = crate::attach::connect(socket).ok()?;
        let mut hello = Vec::new();
        crate::attach::Frame::Events.encode(&mut hello);
        stream.write_all(&hello).ok()?;
        stream.set_nonblocking(true).ok()?;
        Some(LastEvents {
            stream,
            read: Vec::new(),
            events: Vec::new(),
        })
    }

    /// Takes in what has come.
    fn read(&mut self) -> Heard {
        use crate::attach::Frame;
        use std::io::Read;
        let mut buf = [0u8; 16 * 1024];
        let eof = loop {
            match self.stream.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => self.read.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break true,
            }
        };
        loop {
            match Frame::decode(&mut self.read) {
                Ok(Some(Frame::Event(json))) => {
                    self.events
                        .extend(serde_json::from_slice::<Event>(&json).ok());
                }
                Ok(Some(Frame::Ended)) => return Heard::End(std::mem::take(&mut self.events)),
                Ok(Some(_)) | Err(_) => return Heard::Lost,
                Ok(None) => break,
            }
        }
        match eof {
            true => Heard::Lost,
            false => Heard::Nothing,
        }
    }
}

/// The events as kubectl events -o prints them: a v1 EventList of core/v1 Events,
/// each about its pod (`involvedObject`, with the container's fieldPath), named
/// `<pod>.<16 hex digits>` as the kubelet's are.
fn event_list(rows: &[Row], uid: impl Fn(&str) -> String) -> serde_json::Value {
    use std::hash::{Hash, Hasher};
    let items: Vec<serde_json::Value> = rows
        .iter()
        .map(|(pod, e)| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (
                pod,
                &e.first_timestamp,
                &e.reason,
                &e.field_path,
                &e.message,
            )
                .hash(&mut h);
            let mut object = serde_json::json!({
                "kind": "Pod",
                "apiVersion": "v1",
                "namespace": "default",
                "name": pod,
                "uid": uid(pod),
            });
            if let Some(path) = &e.field_path {
                object["fieldPath"] = path.clone().into();
            }
            serde_json::json!({
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {
                    "name": format!("{pod}.{:016x}", h.finish()),
                    "namespace": "default",
                    "creationTimestamp": e.first_timestamp,
                },
                "involvedObject": object,
                "reason": e.reason,
                "message": e.message,
                "source": {"component": e.source},
                "firstTimestamp": e.first_timestamp,
                "lastTimestamp": e.last_timestamp,
                "count": e.count,
                "type": e.kind,
                "reportingComponent": e.source,
                "reportingInstance": "",
            })
        })
        .collect();
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "EventList",
        "metadata": {"resourceVersion": ""},
        "items": items,
    })
}

/// `kubectl events`' table: LAST SEEN, TYPE, REASON, OBJECT, MESSAGE.
fn table(rows: &[Row], header: bool, now: SystemTime) -> String {
    let mut lines: Vec<[String; 5]> = Vec::new();
    if header {
        lines.push(["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"].map(String::from));
    }
    for (pod, e) in rows {
        let seen = match e.count {
            n if n > 1 => format!(
                "{} (x{n} over {})",
                super::age(&e.last_timestamp, now),
                super::age(&e.first_timestamp, now)
            ),
            _ => super::age(&e.last_timestamp, now),
        };
        lines.push([
            seen,
            e.kind.clone(),
            e.reason.clone(),
            format!("pod/{pod}"),
            e.message.replace('\n', " "),
        ]);
    }
    // At least these widths, so that lines printed later under -w mostly line up.
    let widths: Vec<usize> = [22, 10, 22, 16]
        .iter()
        .enumerate()
        .map(|(i, min)| lines.iter().map(|l| l[i].len() + 3).fold(*min, usize::max))
        .collect();
    let mut text = String::new();
    for l in lines {
        for (i, w) in widths.iter().enumerate() {
            text += &format!("{:<w$}", l[i]);
        }
        text += &l[4];
        text.push('\n');
    }
    text
}
