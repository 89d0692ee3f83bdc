//! `launcher describe NAME`: the pod as `kubectl describe pod` prints it, from its
//! Pod object and its events.

use super::{age, print, Opts, PodHandle};
use crate::cli;
use crate::events::Event;
use anyhow::Result;
use serde_json::Value;
use std::fmt::Write;
use std::time::SystemTime;

pub fn describe(opts: &Opts, args: &cli::Describe) -> Result<i32> {
    let handle = PodHandle::new(opts, &args.name)?;
    let pod = handle.object()?;
    let events = crate::events::read(&handle.root.roots.events(&handle.name));
    // The values of fieldRef and resourceFieldRef variables, as the containers got
    // them (kubectl resolves those; ConfigMaps' and Secrets' it only names).
    let rec = handle.record()?;
    let inputs = crate::spec::Inputs::default();
    let resolved = crate::spec::Resolved {
        spec: &rec.spec,
        inputs: &inputs,
        facts: &rec.facts,
    };
    let env: Env = (rec.spec.all_containers())
        .map(|c| (c.name.clone(), resolved.environment(c)))
        .collect();
    print(&render(&pod, &events, &env, SystemTime::now()))?;
    Ok(0)
}

/// Lines of `key:  value`, values aligned as kubectl's tabwriter aligns them.
struct Out {
    text: String,
}

impl Out {
    /// `key:` at `indent` spaces, its value in the column `width` after the indent.
    fn field(&mut self, indent: usize, width: usize, key: &str, value: &str) {
        let label = format!("{key}:");
        let _ = writeln!(self.text, "{:indent$}{label:<width$}{value}", "");
    }

    fn line(&mut self, indent: usize, text: &str) {
        let _ = writeln!(self.text, "{:indent$}{text}", "");
    }
}

const TOP: usize = 18;
const CONTAINER: usize = 16;

/// Each container's environment as resolved, by container name.
type Env = std::collections::HashMap<String, Vec<(String, String)>>;

fn render(pod: &Value, events: &[Event], env: &Env, now: SystemTime) -> String {
    let mut out = Out {
        text: String::new(),
    };
    let meta = &pod["metadata"];
    let spec = &pod["spec"];
    let status = &pod["status"];
    out.field(0, TOP, "Name", meta["name"].as_str().unwrap_or(""));
    out.field(
        0,
        TOP,
        "Namespace",
        meta["namespace"].as_str().unwrap_or("default"),
    );
    out.field(0, TOP, "Priority", "0");
    let node = spec["nodeName"].as_str().unwrap_or("<none>");
    match status["hostIP"].as_str() {
        Some(ip) => out.field(0, TOP, "Node", &format!("{node}/{ip}")),
        None => out.field(0, TOP, "Node", node),
    }
    if let Some(t) = status["startTime"].as_str() {
        out.field(0, TOP, "Start Time", &wall(t));
    }
    map_lines(&mut out, "Labels", &meta["labels"], "=");
    map_lines(&mut out, "Annotations", &meta["annotations"], ": ");
    out.field(
        0,
        TOP,
        "Status",
        status["phase"].as_str().unwrap_or("Unknown"),
    );
    for key in ["reason", "message"] {
        if let Some(v) = status[key].as_str() {
            let mut k = key.to_string();
            k[..1].make_ascii_uppercase();
            out.field(0, TOP, &k, v);
        }
    }
    out.field(0, TOP, "IP", status["podIP"].as_str().unwrap_or(""));
    match status["podIPs"].as_array() {
        Some(ips) => {
            out.line(0, "IPs:");
            for ip in ips {
                out.field(2, TOP - 2, "IP", ip["ip"].as_str().unwrap_or(""));
            }
        }
        None => out.field(0, TOP, "IPs", "<none>"),
    }
    for (title, key, statuses) in [
        ("Init Containers", "initContainers", "initContainerStatuses"),
        ("Containers", "containers", "containerStatuses"),
    ] {
        let Some(list) = spec[key].as_array() else {
            continue;
        };
        out.line(0, &format!("{title}:"));
        for c in list {
            let name = c["name"].as_str().unwrap_or("");
            let st = status[statuses]
                .as_array()
                .and_then(|all| all.iter().find(|s| s["name"] == name))
                .unwrap_or(&Value::Null);
            let resolved = env.get(name).map(Vec::as_slice).unwrap_or_default();
            container(&mut out, c, st, resolved);
        }
    }
    out.line(0, "Conditions:");
    let conditions: Vec<(&str, &str)> = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["type"].as_str().unwrap_or(""),
                c["status"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let width = conditions
        .iter()
        .map(|c| c.0.len())
        .max()
        .unwrap_or(0)
        .max(4)
        + 2;
    out.line(2, &format!("{:<width$}Status", "Type"));
    for (kind, st) in &conditions {
        out.line(2, &format!("{kind:<width$}{st} "));
    }
    volumes(&mut out, spec);
    out.field(
        0,
        TOP,
        "QoS Class",
        status["qosClass"].as_str().unwrap_or(""),
    );
    events_table(&mut out, events, now);
    out.text
}

/// `Labels:` and `Annotations:`: one pair a line, or `<none>`.
fn map_lines(out: &mut Out, key: &str, map: &Value, sep: &str) {
    let pairs: Vec<String> = map
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}{sep}{}", v.as_str().unwrap_or("")))
        .collect();
    match pairs.split_first() {
        None => out.field(0, TOP, key, "<none>"),
        Some((first, rest)) => {
            out.field(0, TOP, key, first);
            for p in rest {
                out.line(TOP, p);
            }
        }
    }
}

fn container(out: &mut Out, c: &Value, st: &Value, env: &[(String, String)]) {
    out.line(2, &format!("{}:", c["name"].as_str().unwrap_or("")));
    out.field(4, CONTAINER, "Image", c["image"].as_str().unwrap_or(""));
    // kubectl's: every port, the container's then the host's (0 when unpublished).
    let ports = |key: &str| -> Vec<String> {
        (c["ports"].as_array().into_iter().flatten())
            .map(|p| {
                let proto = p["protocol"].as_str().unwrap_or("TCP");
                format!("{}/{proto}", p[key].as_u64().unwrap_or(0))
            })
            .collect()
    };
    for (key, one, many) in [
        ("containerPort", "Port", "Ports"),
        ("hostPort", "Host Port", "Host Ports"),
    ] {
        match ports(key).as_slice() {
            [] => out.field(4, CONTAINER, one, "<none>"),
            [p] => out.field(4, CONTAINER, one, p),
            all => out.field(4, CONTAINER, many, &all.join(", ")),
        }
    }
    for (key, title) in [("command", "Command"), ("args", "Args")] {
        if let Some(args) = c[key].as_array() {
            out.line(4, &format!("{title}:"));
            for a in args {
                out.line(6, a.as_str().unwrap_or(""));
            }
        }
    }
    state(out, "State", &st["state"]);
    if st["lastState"].as_object().is_some_and(|o| !o.is_empty()) {
        state(out, "Last State", &st["lastState"]);
    }
    let yes = |v: &Value| if *v == true { "True" } else { "False" };
    out.field(4, CONTAINER, "Ready", yes(&st["ready"]));
    out.field(
        4,
        CONTAINER,
        "Restart Count",
        &st["restartCount"].as_u64().unwrap_or(0).to_string(),
    );
    // The filter it runs under: a privileged container none, else its profile's.
    let sc = &c["securityContext"];
    let seccomp = match (
        sc["privileged"] == true,
        sc["seccompProfile"]["type"].as_str(),
    ) {
        (true, _) => "Unconfined (privileged)",
        (false, Some(t)) => t,
        (false, None) => "RuntimeDefault",
    };
    out.field(4, CONTAINER, "Seccomp", seccomp);
    for (key, title) in [("limits", "Limits"), ("requests", "Requests")] {
        if let Some(map) = c["resources"][key].as_object().filter(|m| !m.is_empty()) {
            out.line(4, &format!("{title}:"));
            let width = map.keys().map(|k| k.len()).max().unwrap_or(0) + 3;
            for (k, v) in map {
                out.field(6, width, k, v.as_str().unwrap_or(""));
            }
        }
    }
    for (key, title) in [
        ("livenessProbe", "Liveness"),
        ("readinessProbe", "Readiness"),
        ("startupProbe", "Startup"),
    ] {
        if c[key].is_object() {
            out.field(4, CONTAINER, title, &probe(&c[key]));
        }
    }
    match c["env"].as_array().filter(|e| !e.is_empty()) {
        None => out.field(4, CONTAINER, "Environment", "<none>"),
        Some(vars) => {
            out.line(4, "Environment:");
            let width = vars
                .iter()
                .filter_map(|e| e["name"].as_str())
                .map(str::len)
                .max()
                .unwrap_or(0)
                + 3;
            for e in vars {
                let name = e["name"].as_str().unwrap_or("");
                let resolved = || {
                    (env.iter().rev())
                        .find(|(k, _)| k == name)
                        .map_or("", |(_, v)| v.as_str())
                };
                let from = &e["valueFrom"];
                let value = if let Some(f) = from["fieldRef"].as_object() {
                    let path = f.get("fieldPath").and_then(Value::as_str).unwrap_or("");
                    let version = f.get("apiVersion").and_then(Value::as_str).unwrap_or("v1");
                    format!("{} ({version}:{path})", resolved())
                } else if let Some(r) = from["resourceFieldRef"].as_object() {
                    let resource = r.get("resource").and_then(Value::as_str).unwrap_or("");
                    format!("{} ({resource})", resolved())
                } else if from["secretKeyRef"].is_object() {
                    key_ref(&from["secretKeyRef"], "in secret")
                } else if from["configMapKeyRef"].is_object() {
                    key_ref(&from["configMapKeyRef"], "of config map")
                } else {
                    e["value"].as_str().unwrap_or("").to_string()
                };
                out.field(6, width, name, &value);
            }
        }
    }
    match c["volumeMounts"].as_array().filter(|m| !m.is_empty()) {
        None => out.field(4, CONTAINER, "Mounts", "<none>"),
        Some(mounts) => {
            out.line(4, "Mounts:");
            for m in mounts {
                let mut how = vec![if m["readOnly"] == true { "ro" } else { "rw" }.to_string()];
                if let Some(sub) = m["subPath"].as_str().or(m["subPathExpr"].as_str()) {
                    how.push(format!("path={sub:?}"));
                }
                out.line(
                    6,
                    &format!(
                        "{} from {} ({})",
                        m["mountPath"].as_str().unwrap_or(""),
                        m["name"].as_str().unwrap_or(""),
                        how.join(",")
                    ),
                );
            }
        }
    }
}

/// `Volumes:` as kubectl describes each source.
fn volumes(out: &mut Out, spec: &Value) {
    let Some(volumes) = spec["volumes"].as_array().filter(|v| !v.is_empty()) else {
        out.field(0, TOP, "Volumes", "<none>");
        return;
    };
    out.line(0, "Volumes:");
    for v in volumes {
        out.line(2, &format!("{}:", v["name"].as_str().unwrap_or("")));
        if let Some(e) = v["emptyDir"].as_object() {
            out.field(
                4,
                12,
                "Type",
                "EmptyDir (a temporary directory that shares a pod's lifetime)",
            );
            out.field(
                4,
                12,
                "Medium",
                e.get("medium").and_then(Value::as_str).unwrap_or(""),
            );
            let limit = e
                .get("sizeLimit")
                .and_then(Value::as_str)
                .unwrap_or("<unset>");
            out.field(4, 12, "SizeLimit", limit);
        } else if let Some(h) = v["hostPath"].as_object() {
            out.field(4, 15, "Type", "HostPath (bare host directory volume)");
            out.field(
                4,
                15,
                "Path",
                h.get("path").and_then(Value::as_str).unwrap_or(""),
            );
            out.field(
                4,
                15,
                "HostPathType",
                h.get("type").and_then(Value::as_str).unwrap_or(""),
            );
        }
    }
}

/// `State:` (or `Last State:`) with its details below, as kubectl prints them.
fn state(out: &mut Out, title: &str, s: &Value) {
    let (name, detail) = match s.as_object().and_then(|o| o.iter().next()) {
        Some((k, v)) => (k.as_str(), v),
        None => ("Waiting", &Value::Null),
    };
    let mut word = name.to_string();
    word[..1].make_ascii_uppercase();
    out.field(4, CONTAINER, title, &word);
    let time = |k: &str| detail[k].as_str().map(wall);
    let text = |k: &str| detail[k].as_str().map(str::to_string);
    let rows: Vec<(&str, Option<String>)> = match name {
        "running" => vec![("Started", time("startedAt"))],
        "terminated" => vec![
            ("Reason", text("reason")),
            ("Message", text("message")),
            (
                "Exit Code",
                detail["exitCode"].as_i64().map(|c| c.to_string()),
            ),
            ("Signal", detail["signal"].as_i64().map(|c| c.to_string())),
            ("Started", time("startedAt")),
            ("Finished", time("finishedAt")),
        ],
        _ => vec![("Reason", text("reason")), ("Message", text("message"))],
    };
    for (key, value) in rows {
        if let Some(v) = value {
            out.field(6, CONTAINER - 2, key, &v);
        }
    }
}

/// A ConfigMap's or Secret's key, named as kubectl names it (never its value).
fn key_ref(r: &Value, of: &str) -> String {
    format!(
        "<set to the key '{}' {of} '{}'>  Optional: {}",
        r["key"].as_str().unwrap_or(""),
        r["name"].as_str().unwrap_or(""),
        r["optional"] == true
    )
}

/// A probe as kubectl describes it: `exec [true] delay=0s timeout=1s period=10s
/// #success=1 #failure=3`.
fn probe(p: &Value) -> String {
    let action = if let Some(cmd) = p["exec"]["command"].as_array() {
        let words: Vec<&str> = cmd.iter().filter_map(Value::as_str).collect();
        format!("exec [{}]", words.join(" "))
    } else if p["httpGet"].is_object() {
        let h = &p["httpGet"];
        let scheme = h["scheme"].as_str().unwrap_or("HTTP").to_lowercase();
        format!(
            "http-get {scheme}://{}:{}{}",
            h["host"].as_str().unwrap_or(""),
            port(&h["port"]),
            h["path"].as_str().unwrap_or("")
        )
    } else if p["tcpSocket"].is_object() {
        let t = &p["tcpSocket"];
        format!(
            "tcp-socket {}:{}",
            t["host"].as_str().unwrap_or(""),
            port(&t["port"])
        )
    } else if p["grpc"].is_object() {
        let g = &p["grpc"];
        format!(
            "grpc <pod>:{} {}",
            port(&g["port"]),
            g["service"].as_str().unwrap_or("")
        )
    } else {
        "unknown".into()
    };
    let n = |k: &str, default: u64| p[k].as_u64().unwrap_or(default);
    format!(
        "{action} delay={}s timeout={}s period={}s #success={} #failure={}",
        n("initialDelaySeconds", 0),
        n("timeoutSeconds", 1),
        n("periodSeconds", 10),
        n("successThreshold", 1),
        n("failureThreshold", 3)
    )
}

fn port(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

fn events_table(out: &mut Out, events: &[Event], now: SystemTime) {
    if events.is_empty() {
        out.field(0, TOP, "Events", "<none>");
        return;
    }
    out.line(0, "Events:");
    let mut rows = vec![
        ["Type", "Reason", "Age", "From", "Message"].map(String::from),
        ["----", "------", "----", "----", "-------"].map(String::from),
    ];
    for e in events {
        let age = if e.count > 1 {
            format!(
                "{} (x{} over {})",
                age(&e.last_timestamp, now),
                e.count,
                age(&e.first_timestamp, now)
            )
        } else {
            age(&e.last_timestamp, now)
        };
        let message = e.message.replace('\n', " ");
        rows.push([
            e.kind.clone(),
            e.reason.clone(),
            age,
            e.source.clone(),
            message,
        ]);
    }
    let widths: Vec<usize> = (0..4)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0) + 2)
        .collect();
    for r in rows {
        let mut line = String::new();
        for (i, w) in widths.iter().enumerate() {
            let _ = write!(line, "{:<w$}", r[i]);
        }
        line.push_str(&r[4]);
        out.line(2, line.trim_end());
    }
}

/// An RFC 3339 time as kubectl describe prints it: `Sun, 22 Nov 2026 22:01:39 +0000`.
fn wall(t: &str) -> String {
    let Ok(at) = humantime::parse_rfc3339(t) else {
        return t.to_string();
    };
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = secs / 86400;
    let (y, m, d) = civil(days as i64);
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let rest = secs % 86400;
    format!(
        "{}, {d:02} {} {y} {:02}:{:02}:{:02} +0000",
        DAYS[(days % 7) as usize],
        MONTHS[(m - 1) as usize],
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_kubectl_prints_them() {
        assert_eq!(
            wall("2026-11-22T22:01:39Z"),
            "Sun, 22 Nov 2026 22:01:39 +0000"
        );
        assert_eq!(
            wall("2024-02-29T00:00:00Z"),
            "Thu, 29 Feb 2024 00:00:00 +0000"
        );
        let now = humantime::parse_rfc3339("2026-11-22T22:10:00Z").unwrap();
        assert_eq!(age("2026-11-22T22:09:24Z", now), "36s");
        assert_eq!(age("2026-11-22T22:05:00Z", now), "5m0s");
        assert_eq!(age("2026-11-22T21:00:00Z", now), "70m");
    }

    #[test]
    fn events_show_repeats_as_kubectl_does() {
        let now = humantime::parse_rfc3339("2026-11-22T22:30:00Z").unwrap();
        let e = Event {
            kind: "Warning".into(),
            reason: "BackOff".into(),
            message: "Back-off restarting failed container a in pod p".into(),
            field_path: Some("spec.containers{a}".into()),
            source: "kubelet".into(),
            count: 12,
            first_timestamp: "2026-11-22T22:11:00Z".into(),
            last_timestamp: "2026-11-22T22:29:55Z".into(),
        };
        let mut out = Out {
            text: String::new(),
        };
        events_table(&mut out, &[e], now);
        assert_eq!(
            out.text,
            "Events:\n  Type     Reason   Age                From     Message\n  ----     ------   ----               ----     -------\n  Warning  BackOff  5s (x12 over 19m)  kubelet  Back-off restarting failed container a in pod p\n"
        );
    }
}
