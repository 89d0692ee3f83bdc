//! Probes (`livenessProbe`, `readinessProbe`, `startupProbe`) and lifecycle
//! handlers (`postStart`, `preStop`): exec, httpGet, tcpSocket, sleep.

use super::{field, secs_field, ManifestError};
use crate::spec::{Action, Probe, ProbeKind};
use k8s_openapi::api::core::v1::{
    ContainerPort, ExecAction, GRPCAction, HTTPGetAction, HTTPHeader, LifecycleHandler,
    Probe as K8sProbe, SleepAction, TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::net::IpAddr;
use std::time::Duration;

/// The probe at `path`.
pub fn decode(
    p: &K8sProbe,
    path: &str,
    ports: &[ContainerPort],
    kind: ProbeKind,
) -> Result<Probe, ManifestError> {
    let action = action(
        [
            p.exec.as_ref().map(Handler::Exec),
            p.http_get.as_ref().map(Handler::Http),
            p.tcp_socket.as_ref().map(Handler::Tcp),
            p.grpc.as_ref().map(Handler::Grpc),
        ],
        path,
        ports,
    )?;
    let seconds = |v: Option<i32>, default: i32, min: i32, key: &str| {
        let v = v.unwrap_or(default);
        if v < min {
            return Err(field(
                format!("{path}.{key}"),
                format!("must be at least {min}"),
            ));
        }
        Ok(v as u32)
    };
    let success = seconds(p.success_threshold, 1, 1, "successThreshold")?;
    if kind != ProbeKind::Readiness && success != 1 {
        return Err(field(
            format!("{path}.successThreshold"),
            "must be 1 for liveness and startup probes",
        ));
    }
    let grace = match p.termination_grace_period_seconds {
        Some(_) if kind == ProbeKind::Readiness => {
            return Err(field(
                format!("{path}.terminationGracePeriodSeconds"),
                "may not be set for readiness probes",
            ));
        }
        s => secs_field(s, 1, &format!("{path}.terminationGracePeriodSeconds"))?,
    };
    let secs = |v: u32| Duration::from_secs(u64::from(v));
    Ok(Probe {
        action,
        initial_delay: secs(seconds(
            p.initial_delay_seconds,
            0,
            0,
            "initialDelaySeconds",
        )?),
        period: secs(seconds(p.period_seconds, 10, 1, "periodSeconds")?),
        timeout: secs(seconds(p.timeout_seconds, 1, 1, "timeoutSeconds")?),
        success_threshold: success,
        failure_threshold: seconds(p.failure_threshold, 3, 1, "failureThreshold")?,
        grace,
    })
}

/// The lifecycle handler at `path`.
pub fn decode_hook(
    h: &LifecycleHandler,
    path: &str,
    ports: &[ContainerPort],
) -> Result<Action, ManifestError> {
    // tcpSocket (deprecated for hooks) is refused by the allowlist.
    action(
        [
            h.exec.as_ref().map(Handler::Exec),
            h.http_get.as_ref().map(Handler::Http),
            h.sleep.as_ref().map(Handler::Sleep),
            None,
        ],
        path,
        ports,
    )
}

enum Handler<'a> {
    Exec(&'a ExecAction),
    Http(&'a HTTPGetAction),
    Tcp(&'a TCPSocketAction),
    Sleep(&'a SleepAction),
    Grpc(&'a GRPCAction),
}

/// The one handler of a probe or hook.
fn action(
    handlers: [Option<Handler>; 4],
    path: &str,
    ports: &[ContainerPort],
) -> Result<Action, ManifestError> {
    let mut set = handlers.into_iter().flatten();
    let (Some(handler), None) = (set.next(), set.next()) else {
        return Err(field(
            path,
            "must specify exactly one handler (exec, httpGet, tcpSocket, grpc or sleep)",
        ));
    };
    let host = |h: &Option<String>, at: &str| -> Result<IpAddr, ManifestError> {
        match h.as_deref() {
            None | Some("") | Some("localhost") => Ok(IpAddr::from([127, 0, 0, 1])),
            Some(h) => h.parse().map_err(|_| {
                field(
                    format!("{path}.{at}.host"),
                    format!("{h:?} is not an IP address (a launcher pod has no DNS)"),
                )
            }),
        }
    };
    Ok(match handler {
        Handler::Exec(e) => {
            let command = e.command.clone().unwrap_or_default();
            if command.is_empty() {
                return Err(field(format!("{path}.exec.command"), "required"));
            }
            for (j, arg) in command.iter().enumerate() {
                crate::spec::nul_free(arg)
                    .map_err(|why| field(format!("{path}.exec.command[{j}]"), why))?;
            }
            Action::Exec(command)
        }
        Handler::Http(h) => {
            if let Some(scheme) = h.scheme.as_deref().filter(|s| *s != "HTTP") {
                return Err(field(
                    format!("{path}.httpGet.scheme"),
                    format!("unsupported value {scheme:?}: only HTTP"),
                ));
            }
            let mut headers = Vec::new();
            for (j, hd) in h.http_headers.iter().flatten().enumerate() {
                let ok = !hd.name.is_empty()
                    && hd.name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
                if !ok || hd.value.contains(['\r', '\n', '\0']) {
                    return Err(field(
                        format!("{path}.httpGet.httpHeaders[{j}]"),
                        "invalid header name or value",
                    ));
                }
                headers.push((hd.name.clone(), hd.value.clone()));
            }
            let p = h.path.clone().unwrap_or_default();
            if p.contains(|c: char| c.is_whitespace() || c.is_control()) {
                return Err(field(
                    format!("{path}.httpGet.path"),
                    "must not contain spaces or control characters",
                ));
            }
            Action::HttpGet {
                host: host(&h.host, "httpGet")?,
                port: port(&h.port, &format!("{path}.httpGet.port"), ports)?,
                path: if p.starts_with('/') {
                    p
                } else {
                    format!("/{p}")
                },
                headers,
            }
        }
        Handler::Tcp(t) => Action::TcpSocket {
            host: host(&t.host, "tcpSocket")?,
            port: port(&t.port, &format!("{path}.tcpSocket.port"), ports)?,
        },
        Handler::Grpc(g) => {
            match g.mode.as_deref() {
                None | Some("Plaintext") => {}
                Some("TLS") => {
                    return Err(field(
                        format!("{path}.grpc.mode"),
                        "TLS is not supported by launcher (Plaintext is)",
                    ))
                }
                Some(m) => {
                    return Err(field(
                        format!("{path}.grpc.mode"),
                        format!("unsupported value {m:?}: \"TLS\" or \"Plaintext\""),
                    ))
                }
            }
            Action::Grpc {
                // The API takes a number here, never a port's name.
                port: port(&IntOrString::Int(g.port), &format!("{path}.grpc.port"), &[])?,
                service: g.service.clone().unwrap_or_default(),
            }
        }
        Handler::Sleep(s) => {
            let at = format!("{path}.sleep.seconds");
            Action::Sleep(secs_field(Some(s.seconds), 0, &at)?.unwrap_or_default())
        }
    })
}

/// A port by number, or by the name of one of the container's ports.
fn port(p: &IntOrString, path: &str, ports: &[ContainerPort]) -> Result<u16, ManifestError> {
    let n = match p {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => match name.parse::<i32>() {
            Ok(n) => n,
            Err(_) => ports
                .iter()
                .find(|cp| cp.name.as_deref() == Some(name))
                .map(|cp| cp.container_port)
                .ok_or_else(|| {
                    field(
                        path,
                        format!("no port named {name:?} among the container's ports"),
                    )
                })?,
        },
    };
    u16::try_from(n)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| field(path, format!("must be between 1 and 65535, got {n}")))
}

/// A probe as the Pod API spells it.
pub fn encode(p: &Probe) -> K8sProbe {
    let h = encode_hook(&p.action);
    let secs = |d: Duration| Some(i32::try_from(d.as_secs()).unwrap_or(i32::MAX));
    let grpc = match &p.action {
        Action::Grpc { port, service } => Some(GRPCAction {
            port: i32::from(*port),
            service: Some(service.clone()),
            mode: None,
        }),
        _ => None,
    };
    K8sProbe {
        exec: h.exec,
        http_get: h.http_get,
        tcp_socket: h.tcp_socket,
        grpc,
        initial_delay_seconds: secs(p.initial_delay),
        period_seconds: secs(p.period),
        timeout_seconds: secs(p.timeout),
        success_threshold: i32::try_from(p.success_threshold).ok(),
        failure_threshold: i32::try_from(p.failure_threshold).ok(),
        termination_grace_period_seconds: p.grace.map(|g| g.as_secs() as i64),
    }
}

/// A probe's or hook's handler as the Pod API spells it.
pub fn encode_hook(a: &Action) -> LifecycleHandler {
    // 127.0.0.1 is the default: left out, as a user would write it.
    let host = |h: &IpAddr| (!h.is_loopback()).then(|| h.to_string());
    match a {
        Action::Exec(argv) => LifecycleHandler {
            exec: Some(ExecAction {
                command: Some(argv.clone()),
            }),
            ..Default::default()
        },
        Action::HttpGet {
            host: h,
            port,
            path,
            headers,
        } => LifecycleHandler {
            http_get: Some(HTTPGetAction {
                host: host(h),
                port: IntOrString::Int(i32::from(*port)),
                path: Some(path.clone()),
                http_headers: (!headers.is_empty()).then(|| {
                    headers
                        .iter()
                        .map(|(name, value)| HTTPHeader {
                            name: name.clone(),
                            value: value.clone(),
                        })
                        .collect()
                }),
                ..Default::default()
            }),
            ..Default::default()
        },
        Action::TcpSocket { host: h, port } => LifecycleHandler {
            tcp_socket: Some(TCPSocketAction {
                host: host(h),
                port: IntOrString::Int(i32::from(*port)),
            }),
            ..Default::default()
        },
        // A hook has no grpc handler; encode() puts a probe's in its place.
        Action::Grpc { .. } => LifecycleHandler::default(),
        Action::Sleep(d) => LifecycleHandler {
            sleep: Some(SleepAction {
                seconds: d.as_secs() as i64,
            }),
            ..Default::default()
        },
    }
}
