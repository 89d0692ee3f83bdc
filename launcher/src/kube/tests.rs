use super::*;
use crate::spec::{Action, RestartPolicy};
use std::net::IpAddr;

const GOOD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  restartPolicy: OnFailure
  terminationGracePeriodSeconds: 5
  containers:
  - name: server
    image: busybox
    command: [busybox, httpd]
    args: [-f, -p, '8080']
    workingDir: /tmp
    env: [{name: MODE, value: fast}]
    ports: [{containerPort: 8080}]
    resources:
      limits: {memory: 64Mi, cpu: 250m}
      requests: {cpu: 100m}
  - name: side
    command: [sleep, '600']
    resources:
      limits: {memory: 32Mi, cpu: '1'}
";

#[test]
fn a_supported_manifest_maps_to_the_pod() {
    let (spec, warnings) = parse(GOOD).unwrap();
    assert_eq!(spec.name, "web");
    assert_eq!(spec.restart, RestartPolicy::OnFailure);
    assert_eq!(spec.grace, Duration::from_secs(5));
    assert_eq!(
        spec.containers[0].command,
        ["busybox", "httpd", "-f", "-p", "8080"]
    );
    assert_eq!(
        spec.containers[0].env,
        [crate::spec::EnvVar::plain("MODE", "fast")]
    );
    assert_eq!(spec.containers[0].working_dir.as_deref(), Some("/tmp"));
    assert_eq!(spec.containers[0].limits.memory, Some(64 << 20));
    // The pod gets the sum of its containers' limits.
    assert_eq!(spec.limits.memory, Some(96 << 20));
    assert_eq!(spec.limits.cpu_milli, Some(1250));
    assert_eq!(spec.limits.cpu_request_milli, Some(100));
    assert!(warnings[0].starts_with("spec.containers[0].image: \"busybox\" is noted"));
}

#[test]
fn json_is_accepted_too() {
    let json = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"j"},"spec":{"containers":[{"name":"a","command":["true"]}]}}"#;
    assert_eq!(parse(json).unwrap().0.containers[0].command, ["true"]);
}

fn err(doc: &str) -> String {
    parse(doc).unwrap_err().to_string()
}

const PROBED: &str = "apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  securityContext: {runAsUser: 1000}
  containers:
  - name: web
    command: [server]
    ports: [{name: http, containerPort: 8080}]
    livenessProbe:
      httpGet: {path: healthz, port: http, httpHeaders: [{name: X-Probe, value: '1'}]}
      periodSeconds: 2
    readinessProbe:
      tcpSocket: {port: 8080}
      successThreshold: 2
    startupProbe:
      exec: {command: [test, -f, /tmp/up]}
      failureThreshold: 30
      terminationGracePeriodSeconds: 3
    lifecycle:
      postStart: {exec: {command: [touch, /tmp/started]}}
      preStop: {sleep: {seconds: 2}}
    securityContext:
      runAsGroup: 100
      capabilities: {drop: [ALL], add: [NET_BIND_SERVICE, CAP_KILL]}
  - name: rpc
    command: [server]
    livenessProbe:
      grpc: {port: 9000, service: db, mode: Plaintext}
";

#[test]
fn probes_hooks_and_security_context_map_with_the_kubelet_defaults() {
    let (spec, _) = parse(PROBED).unwrap();
    let c = &spec.containers[0];
    let live = c.probes.liveness.as_ref().unwrap();
    assert_eq!(
        live.action,
        Action::HttpGet {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 8080,
            path: "/healthz".into(),
            headers: vec![("X-Probe".into(), "1".into())],
        }
    );
    assert_eq!(live.period, Duration::from_secs(2));
    assert_eq!(live.initial_delay, Duration::ZERO);
    assert_eq!(live.timeout, Duration::from_secs(1));
    assert_eq!((live.success_threshold, live.failure_threshold), (1, 3));
    let ready = c.probes.readiness.as_ref().unwrap();
    assert_eq!(ready.success_threshold, 2);
    assert_eq!(ready.period, Duration::from_secs(10));
    let startup = c.probes.startup.as_ref().unwrap();
    assert_eq!(startup.failure_threshold, 30);
    assert_eq!(startup.grace, Some(Duration::from_secs(3)));
    assert_eq!(
        c.post_start,
        Some(Action::Exec(vec!["touch".into(), "/tmp/started".into()]))
    );
    assert_eq!(c.pre_stop, Some(Action::Sleep(Duration::from_secs(2))));
    // The pod's runAsUser, the container's own runAsGroup.
    assert_eq!((c.user, c.group), (Some(1000), Some(100)));
    assert_eq!(c.capabilities, Some(1 << 10 | 1 << 5));
    let rpc = spec.containers[1].probes.liveness.as_ref().unwrap();
    assert_eq!(
        rpc.action,
        Action::Grpc {
            port: 9000,
            service: "db".into()
        }
    );
}

#[test]
fn the_manifest_written_back_describes_the_same_pod() {
    let (spec, _) = parse(PROBED).unwrap();
    let written = serde_json::to_string(&pod_manifest(&spec)).unwrap();
    assert_eq!(parse(&written).unwrap().0, spec, "{written}");
}

#[test]
fn dropping_one_capability_keeps_the_other_defaults() {
    let doc = PROBED.replace(
        "drop: [ALL], add: [NET_BIND_SERVICE, CAP_KILL]",
        "drop: [NET_RAW]",
    );
    let set = parse(&doc).unwrap().0.containers[0].capabilities.unwrap();
    let net_raw = crate::spec::capability_mask([caps::Capability::CAP_NET_RAW]);
    assert_eq!(set, crate::spec::default_capabilities() & !net_raw);
}

#[test]
fn invalid_probes_hooks_and_security_contexts_name_their_path() {
    let c = "spec.containers[0]";
    let cases: &[(&str, &str, String)] = &[
            ("periodSeconds: 2", "periodSeconds: 0", format!("{c}.livenessProbe.periodSeconds: must be at least 1")),
            ("failureThreshold: 30", "failureThreshold: 0", format!("{c}.startupProbe.failureThreshold: must be at least 1")),
            ("successThreshold: 2", "timeoutSeconds: 0", format!("{c}.readinessProbe.timeoutSeconds: must be at least 1")),
            ("periodSeconds: 2", "successThreshold: 2", format!("{c}.livenessProbe.successThreshold: must be 1 for liveness and startup probes")),
            ("periodSeconds: 2", "initialDelaySeconds: -1", format!("{c}.livenessProbe.initialDelaySeconds: must be at least 0")),
            ("port: http,", "port: https,", format!("{c}.livenessProbe.httpGet.port: no port named \"https\" among the container's ports")),
            ("tcpSocket: {port: 8080}", "tcpSocket: {port: 70000}", format!("{c}.readinessProbe.tcpSocket.port: must be between 1 and 65535, got 70000")),
            ("tcpSocket: {port: 8080}", "tcpSocket: {port: 80, host: db.local}", format!("{c}.readinessProbe.tcpSocket.host: \"db.local\" is not an IP address (a launcher pod has no DNS)")),
            ("tcpSocket: {port: 8080}", "grpc: {port: 0}", format!("{c}.readinessProbe.grpc.port: must be between 1 and 65535, got 0")),
            ("tcpSocket: {port: 8080}", "grpc: {port: 9000, mode: TLS}", format!("{c}.readinessProbe.grpc.mode: TLS is not supported by launcher (Plaintext is)")),
            ("tcpSocket: {port: 8080}", "grpc: {port: 9000, mode: tls}", format!("{c}.readinessProbe.grpc.mode: unsupported value \"tls\": \"TLS\" or \"Plaintext\"")),
            ("tcpSocket: {port: 8080}", "tcpSocket: {port: 1}\n      exec: {command: [x]}", format!("{c}.readinessProbe: must specify exactly one handler (exec, httpGet, tcpSocket, grpc or sleep)")),
            ("httpGet: {path: healthz,", "httpGet: {scheme: HTTPS, path: healthz,", format!("{c}.livenessProbe.httpGet.scheme: unsupported value \"HTTPS\": only HTTP")),
            ("exec: {command: [test, -f, /tmp/up]}", "exec: {command: []}", format!("{c}.startupProbe.exec.command: required")),
            ("preStop: {sleep: {seconds: 2}}", "preStop: {tcpSocket: {port: 1}}", format!("{c}.lifecycle.preStop.tcpSocket: not supported by launcher")),
            ("preStop: {sleep: {seconds: 2}}", "preStop: {sleep: {seconds: -1}}", format!("{c}.lifecycle.preStop.sleep.seconds: must be at least 0")),
            ("add: [NET_BIND_SERVICE, CAP_KILL]", "add: [FLY]", format!("{c}.securityContext.capabilities.add[0]: unknown capability \"FLY\"")),
            ("runAsGroup: 100", "runAsGroup: -1", format!("{c}.securityContext.runAsGroup: must be between 0 and 4294967294")),
            ("runAsGroup: 100", "runAsGroup: 100\n      runAsNonRoot: true\n      runAsUser: 0", format!("{c}.securityContext.runAsNonRoot: the container would run as root: set runAsUser to a non-zero user")),
            ("runAsGroup: 100", "seccompProfile: {type: Localhost, localhostProfile: ../p.json}", format!("{c}.securityContext.seccompProfile.localhostProfile: must be a relative path without \"..\" (below --seccomp-profile-root)")),
            ("runAsGroup: 100", "seccompProfile: {type: Localhost}", format!("{c}.securityContext.seccompProfile.localhostProfile: required when type is Localhost")),
            ("runAsGroup: 100", "seccompProfile: {type: Strict}", format!("{c}.securityContext.seccompProfile.type: Unsupported value: \"Strict\": supported values: \"Localhost\", \"RuntimeDefault\", \"Unconfined\"")),
        ];
    for (from, to, want) in cases {
        assert!(PROBED.contains(from), "{from}");
        assert_eq!(&err(&PROBED.replacen(from, to, 1)), want, "{to}");
    }
    let init = PROBED.replace("  containers:\n", "  initContainers:\n  - name: setup\n    command: [x]\n    readinessProbe: {exec: {command: [x]}}\n  containers:\n");
    assert_eq!(
        err(&init),
        "spec.initContainers[0].readinessProbe: may not be set for init containers"
    );
}

#[test]
fn errors_name_the_field_path() {
    let base = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: a\n    command: [sleep, '1']\n";
    assert_eq!(
            err(&format!(
                "{base}  - name: b\n    command: [x]\n    livenessProbe:\n      exec: {{command: [x]}}\n      periodSeconds: 0\n"
            )),
            "spec.containers[1].livenessProbe.periodSeconds: must be at least 1"
        );
    for (extra, want) in [
        ("    env:\n    - name: X\n      valueFrom: {fieldRef: {fieldPath: spec.volumes}}\n".to_string(),
         "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: unsupported value \"spec.volumes\": supported values: \"metadata.name\""),
        ("    env:\n    - name: X\n      valueFrom: {configMapKeyRef: {name: cfg, key: k}}\n".into(),
         "spec.containers[0].env[0].valueFrom.configMapKeyRef.name: configmap \"cfg\" not found"),
        ("    envFrom: [{secretRef: {name: s}}]\n".into(),
         "spec.containers[0].envFrom[0].secretRef.name: secret \"s\" not found"),
        ("    env:\n    - name: X\n      valueFrom: {secretKeyRef: {name: s, key: k}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {other: v}\n".into(),
         "spec.containers[0].env[0].valueFrom.secretKeyRef.key: couldn't find key k in secret \"s\""),
        ("  volumes: [{name: c, configMap: {name: x, defaultMode: 1000}}]\n".into(),
         "spec.volumes[0].configMap.defaultMode: invalid value 1000: must be a number between 0 and 0777 (octal), both inclusive"),
        ("  volumes: [{name: c, secret: {secretName: x}}]\n".into(),
         "spec.volumes[0].secret.secretName: secret \"x\" not found"),
        ("  volumes: [{name: c, iscsi: {targetPortal: x}}]\n".into(),
         "spec.volumes[0].iscsi: not supported by launcher"),
    ] {
        let got = err(&format!("{base}{extra}"));
        assert!(got.starts_with(want), "{extra}\n got {got}\nwant {want}");
    }
    assert_eq!(
            err(&format!("{base}    resources:\n      limits: {{memory: 12Zi}}\n")),
            "spec.containers[0].resources.limits.memory: invalid memory quantity \"12Zi\" (examples: 128Mi, 1G, 129e6, 512974848)"
        );
    assert_eq!(
        err(&format!(
            "{base}    resources:\n      requests: {{ephemeral-storage: lots}}\n"
        )),
        "spec.containers[0].resources.requests.ephemeral-storage: invalid memory quantity \"lots\" (examples: 128Mi, 1G, 129e6, 512974848)"
    );
    assert_eq!(
        err(&format!("{base}  restartPolicy: Sometimes\n")),
        "spec.restartPolicy: unsupported value \"Sometimes\": must be Always, OnFailure or Never"
    );
    assert!(err(&base.replace("command: [sleep, '1']", "command: 5"))
        .starts_with("spec.containers[0].command: invalid type"));
    // args alone are the command line (no image entrypoint); neither is refused.
    let (spec, _) = parse(&base.replace("command: [sleep, '1']", "args: [echo, hi]")).unwrap();
    assert_eq!(spec.containers[0].command, ["echo", "hi"]);
    assert!(err(&base.replace("command: [sleep, '1']", "args: []"))
        .starts_with("spec.containers[0].command: required (or args)"));
    assert!(
        err(&base.replace("name: p", "name: ../x")).starts_with("metadata.name: invalid pod name")
    );
    assert!(err(&base.replace("kind: Pod", "kind: Deployment"))
        .starts_with("kind: expected apiVersion v1 and kind Pod"));
    assert!(
        err(&format!("{base}  - name: a\n    command: [x]\n")).contains("duplicate container name")
    );
}

#[test]
fn nul_bytes_are_refused_wherever_they_would_reach_the_kernel() {
    let pod = |container: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"p"}},"spec":{{"containers":[{{"name":"a",{container}}}]}}}}"#
        )
    };
    let nul = "x\\u0000y";
    for (container, path) in [
        (format!(r#""command":["{nul}"]"#), "command[0]"),
        (
            format!(r#""command":["sh"],"args":["-c","{nul}"]"#),
            "args[1]",
        ),
        (
            format!(r#""command":["sh"],"env":[{{"name":"E","value":"{nul}"}}]"#),
            "env[0].value",
        ),
        (
            format!(r#""command":["sh"],"workingDir":"/{nul}""#),
            "workingDir",
        ),
        (
            format!(
                r#""command":["sh"],"livenessProbe":{{"exec":{{"command":["test","{nul}"]}}}}"#
            ),
            "livenessProbe.exec.command[1]",
        ),
        (
            format!(
                r#""command":["sh"],"lifecycle":{{"preStop":{{"exec":{{"command":["{nul}"]}}}}}}"#
            ),
            "lifecycle.preStop.exec.command[0]",
        ),
        (
            format!(
                r#""command":["sh"],"readinessProbe":{{"httpGet":{{"port":80,"httpHeaders":[{{"name":"X","value":"{nul}"}}]}}}}"#
            ),
            "readinessProbe.httpGet.httpHeaders[0]",
        ),
    ] {
        let msg = err(&pod(&container));
        assert!(
            msg.starts_with(&format!("spec.containers[0].{path}: ")),
            "{path}: {msg}"
        );
    }
    // Env names: Kubernetes 1.34's rule, printable ASCII but '='.
    let env = |name: &str| {
        pod(&format!(
            r#""command":["sh"],"env":[{{"name":"{name}","value":"v"}}]"#
        ))
    };
    assert!(parse(&env("1st var.with-odd!chars")).is_ok());
    for bad in ["", "A=B", nul, "caf\u{e9}", "tab\\t"] {
        let msg = err(&env(bad));
        assert!(
            msg.starts_with("spec.containers[0].env[0].name: invalid name"),
            "{bad}: {msg}"
        );
    }
}

#[test]
fn sidecars_are_init_containers_with_restart_policy_always() {
    let base = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    command: [sleep, '1']\n";
    let side = "  initContainers:\n  - name: s\n    restartPolicy: Always\n    command: [sleep, '9']\n    readinessProbe: {exec: {command: ['true']}}\n    lifecycle: {preStop: {sleep: {seconds: 1}}}\n";
    let (spec, _) = parse(&format!("{base}{side}")).unwrap();
    assert!(spec.init_containers[0].sidecar && spec.init_containers[0].probes.readiness.is_some());
    assert!(!spec.containers[0].sidecar);
    assert_eq!(
        err(&format!("{base}{}", side.replace("Always", "Never"))),
        "spec.initContainers[0].restartPolicy: unsupported value \"Never\": only \"Always\" (a sidecar container)"
    );
    assert_eq!(
        err(&format!("{base}    restartPolicy: Always\n")),
        "spec.containers[0].restartPolicy: may be set only on init containers (a sidecar container)"
    );
    assert_eq!(
        err(&format!(
            "{base}{}",
            side.replace("    restartPolicy: Always\n", "")
        )),
        "spec.initContainers[0].readinessProbe: may not be set for init containers"
    );
    // Written back, it is still a sidecar.
    let back = serde_json::to_string(&pod_manifest(&spec)).unwrap();
    assert_eq!(parse(&back).unwrap().0, spec);
}

#[test]
fn volumes_and_mounts_are_checked_as_the_api_server_checks_them() {
    let pod = |volumes: &str, mounts: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  volumes: {volumes}\n  containers:\n  - name: a\n    command: [sleep, '1']\n    volumeMounts: {mounts}\n"
        )
    };
    let (spec, _) = parse(
        &pod(
            "[{name: cache, emptyDir: {}}, {name: shm, emptyDir: {medium: Memory, sizeLimit: 64Mi}}, {name: logs, hostPath: {path: /var/log, type: Directory}}, {name: bare}]",
            "[{name: cache, mountPath: /cache/}, {name: logs, mountPath: /host-logs, readOnly: true, subPath: apt}]",
        ),
    )
    .unwrap();
    assert_eq!(
        spec.volumes[1].source,
        crate::spec::VolumeSource::EmptyDir {
            memory: true,
            size_limit: Some(64 << 20),
            mode: None,
        }
    );
    assert_eq!(
        spec.volumes[3].source,
        crate::spec::VolumeSource::EmptyDir {
            memory: false,
            size_limit: None,
            mode: None,
        },
        "no source is an emptyDir"
    );
    let m = &spec.containers[0].volume_mounts;
    assert_eq!(m[0].mount_path, "/cache");
    assert!(m[1].read_only && m[1].sub_path.as_deref() == Some("apt"));
    // Printed back, it reads the same.
    let again = crate::kube::to_yaml(&crate::kube::pod_manifest(&spec)).unwrap();
    assert_eq!(parse(&again).unwrap().0, spec);

    let c = "spec.containers[0].volumeMounts";
    for (volumes, mounts, want) in [
        ("[{name: v}]", "[{name: w, mountPath: /x}]", format!("{c}[0].name: not found: no volume named \"w\" in spec.volumes")),
        ("[{name: v}, {name: v}]", "[]", "spec.volumes[1].name: duplicate volume name \"v\"".into()),
        ("[{name: v}]", "[{name: v, mountPath: x}]", format!("{c}[0].mountPath: \"x\" must be an absolute path")),
        ("[{name: v}]", "[{name: v, mountPath: /x}, {name: v, mountPath: /x/}]", format!("{c}[1].mountPath: \"/x\": must be unique")),
        ("[{name: v}]", "[{name: v, mountPath: /x, subPath: ../etc}]", format!("{c}[0].subPath: \"../etc\" must not contain '..'")),
        ("[{name: v}]", "[{name: v, mountPath: /x, subPath: /etc}]", format!("{c}[0].subPath: \"/etc\" must be a relative path")),
        ("[{name: v}]", "[{name: v, mountPath: /x, subPath: a, subPathExpr: b}]", format!("{c}[0].subPathExpr: subPathExpr and subPath are mutually exclusive")),
        ("[{name: v}]", "[{name: v, mountPath: /x, mountPropagation: Bidirectional}]", format!("{c}[0].mountPropagation: Bidirectional mount propagation is available only to privileged containers")),
        ("[{name: v, hostPath: {path: /x, type: Dir}}]", "[]", "spec.volumes[0].hostPath.type: unsupported value \"Dir\": must be one of \"\", \"DirectoryOrCreate\", \"Directory\", \"FileOrCreate\", \"File\", \"Socket\", \"CharDevice\", \"BlockDevice\"".into()),
        ("[{name: v, hostPath: {path: x}}]", "[]", "spec.volumes[0].hostPath.path: must be an absolute path".into()),
        ("[{name: v, emptyDir: {medium: HugePages}}]", "[]", "spec.volumes[0].emptyDir.medium: unsupported value \"HugePages\": must be \"\" or \"Memory\"".into()),
        ("[{name: v, emptyDir: {}, hostPath: {path: /x}}]", "[]", "spec.volumes[0]: may not specify more than one volume source (".into()),
        ("[{name: V}]", "[]", "spec.volumes[0].name: invalid volume name \"V\"".into()),
    ] {
        let got = err(&pod(volumes, mounts));
        assert!(got.starts_with(&want), "{volumes} {mounts}:\n got {got}\nwant {want}");
    }
}

#[test]
fn unknown_fields_are_told_from_unsupported_ones() {
    let base = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: a\n    command: [sleep, '1']\n";
    for (extra, want) in [
        (
            "    comand: [x]\n",
            "unknown field \"spec.containers[0].comand\" (did you mean \"command\"?)",
        ),
        (
            "    volumeMount: []\n",
            "unknown field \"spec.containers[0].volumeMount\" (did you mean \"volumeMounts\"?)",
        ),
        (
            "    frobnicate: 1\n",
            "unknown field \"spec.containers[0].frobnicate\"",
        ),
        (
            "  restartpolicy: Never\n",
            "unknown field \"spec.restartpolicy\" (did you mean \"restartPolicy\"?)",
        ),
        // Kubernetes knows these; launcher does not do them.
        (
            "    volumeDevices: [{name: d, devicePath: /dev/xvda}]\n",
            "spec.containers[0].volumeDevices: not supported by launcher",
        ),
        (
            "  overhead: {cpu: 1}\n",
            "spec.overhead: not supported by launcher",
        ),
    ] {
        assert_eq!(err(&format!("{base}{extra}")), want, "{extra}");
    }
    // null is unset, whatever the field.
    parse(&format!("{base}    comand: ~\n")).unwrap();
}

#[test]
fn what_the_api_server_adds_to_a_pod_is_accepted_and_ignored() {
    let exported = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  resourceVersion: '1234'\n  generation: 1\n  managedFields: [{manager: kubectl, operation: Update}]\n  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: rs, uid: u}]\nspec:\n  nodeName: node-7\n  priority: 0\n  schedulerName: default-scheduler\n  tolerations: [{key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 300}]\n  serviceAccount: default\n  preemptionPolicy: PreemptLowerPriority\n  containers:\n  - name: a\n    command: [sleep, '1']\nstatus:\n  phase: Running\n  podIP: 10.1.2.3\n";
    let spec = parse(exported).unwrap().0;
    assert_eq!(spec.name, "p");
}
