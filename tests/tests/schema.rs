//! What `status` and `up --dry-run` print is a Pod that Kubernetes' own OpenAPI schema
//! accepts, strictly (no unknown field, every required one present), in JSON and YAML:
//! checked with kubernetes-validate from PyPI (`make deps` installs it in
//! build/venv). Host tier only: the VM has no Python (the Makefile leaves this binary
//! out of the VM's run).

#![allow(clippy::unwrap_used)]

use pod_tests::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Every field of a Pod that the launcher supports.
const FULL: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: full
  labels: {app: web, tier: front}
  annotations: {note: "every field launcher supports"}
spec:
  hostname: full-host
  restartPolicy: Always
  terminationGracePeriodSeconds: 5
  activeDeadlineSeconds: 3600
  securityContext:
    runAsUser: 0
    runAsGroup: 0
    supplementalGroups: [4242]
  initContainers:
  - name: init
    image: busybox
    command: [sh, -c]
    args: ["echo init"]
    env: [{name: STAGE, value: init}]
    workingDir: /tmp
RESOURCES  - name: sidecar
    restartPolicy: Always
    command: [sleep, "600"]
    readinessProbe:
      exec: {command: ['true']}
      periodSeconds: 1
    lifecycle:
      preStop: {exec: {command: ['true']}}
  containers:
  - name: web
    image: busybox
    command: [sleep]
    args: ["600"]
    env: [{name: MODE, value: serve}]
    workingDir: /
    ports: [{name: http, containerPort: 8080, protocol: TCP}]
RESOURCES    startupProbe:
      exec: {command: ['true']}
      periodSeconds: 1
      failureThreshold: 30
    livenessProbe:
      exec: {command: ['true']}
      initialDelaySeconds: 1
      periodSeconds: 10
      timeoutSeconds: 2
      successThreshold: 1
      failureThreshold: 3
      terminationGracePeriodSeconds: 4
    readinessProbe:
      tcpSocket: {port: 8080}
      periodSeconds: 30
    lifecycle:
      postStart: {exec: {command: ['true']}}
      preStop: {sleep: {seconds: 1}}
    securityContext:
      capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}
      readOnlyRootFilesystem: true
      allowPrivilegeEscalation: false
      runAsNonRoot: false
  - name: side
    image: busybox
    command: [sleep, "600"]
    livenessProbe:
      httpGet: {path: /healthz, port: 8080, httpHeaders: [{name: X-Probe, value: "1"}]}
      periodSeconds: 30
      initialDelaySeconds: 30
    stdin: true
    stdinOnce: true
    tty: true
    readinessProbe:
      grpc: {port: 9000, service: side}
      initialDelaySeconds: 30
    lifecycle:
      preStop: {httpGet: {path: /stop, port: 8080}}
    volumeMounts:
    - {name: scratch, mountPath: /pod-test-schema-scratch}
    - {name: mem, mountPath: /pod-test-schema-mem, readOnly: true}
    - {name: etc, mountPath: /pod-test-schema-etc, subPath: apt, readOnly: true}
  - name: crash
    command: [sh, -c, 'exit 3']
  volumes:
  - {name: scratch, emptyDir: {}}
  - {name: mem, emptyDir: {medium: Memory, sizeLimit: 8Mi}}
  - {name: etc, hostPath: {path: /etc, type: Directory}}
"#;

const RESOURCES: &str = "    resources:\n      limits: {memory: 128Mi, cpu: 500m}\n      requests: {memory: 64Mi, cpu: 250m}\n";

fn validator() -> PathBuf {
    let path = std::env::var_os("KUBERNETES_VALIDATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../build/venv/bin/kubernetes-validate")
        });
    assert!(
        path.exists(),
        "{} not found: `make deps` installs it",
        path.display()
    );
    path
}

/// Validates `text` (named `name`) strictly against Kubernetes 1.37's schema.
fn assert_valid(name: &str, text: &str) {
    let dir = TempDir::new(&format!("schema-{name}"));
    let file = dir.path().join(name);
    std::fs::write(&file, text).unwrap();
    let out = Command::new(validator())
        .args(["--strict", "--kubernetes-version", "1.37.0"])
        .arg(&file)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.contains("passed"),
        "{name} does not validate: {said}\n{text}"
    );
}

#[test]
fn dry_run_output_is_a_valid_pod() {
    let pods = Pods::new("schema-dry");
    let full = FULL.replace("RESOURCES", RESOURCES);
    for format in ["yaml", "json"] {
        let out = pods.up_yaml(&full, &["--dry-run", "-o", format]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        if format == "yaml" {
            // Quoted as kubectl quotes them: YAML 1.1 readers see strings.
            assert!(!text.contains("Timestamp: 2"), "{text}");
        }
        assert_valid(&format!("dry.{format}"), &text);
    }
}

#[test]
fn status_output_is_a_valid_pod() {
    let pods = Pods::new("schema-status");
    // This host's cgroup2 has no controllers: limits are checked in the dry run above.
    pods.up_detached(&FULL.replace("RESOURCES", ""), &[]);
    pods.wait_status(
        "full",
        "crash to have restarted",
        Duration::from_secs(10),
        |p| container(p, "crash")["lastState"]["terminated"].is_object(),
    );
    let yaml = pods.ok(&["status", "full", "-o", "yaml"]);
    assert!(yaml.contains("creationTimestamp: \"2"), "{yaml}");
    assert_valid("status.yaml", &yaml);
    let json = pods.ok(&["status", "full", "-o", "json"]);
    assert_valid("status.json", &json);
    // Its events as kubectl events -o prints them: a v1 EventList, each item a valid
    // core/v1 Event (the validator names objects by metadata.name, which a list has not).
    let printed = pods.ok(&["events", "--for", "pod/full", "-o", "json"]);
    let list: serde_json::Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(list["kind"], "EventList", "{printed}");
    let items = list["items"].as_array().unwrap();
    assert!(!items.is_empty());
    let stream: String = items.iter().map(|e| format!("---\n{e}\n")).collect();
    assert_valid("events.yaml", &stream);
    let events_yaml = pods.ok(&["events", "full", "-o", "yaml"]);
    assert!(events_yaml.contains("kind: EventList"), "{events_yaml}");
    let first = pods.status("full");
    let before = &first["spec"];
    pods.ok(&["down", "full", "--grace-period", "0"]);
    // What status prints starts again as it is (kubectl apply of an exported Pod).
    for printed in [&yaml, &json] {
        pods.up_detached(printed, &[]);
        let again = pods.status("full");
        assert_eq!(again["spec"]["containers"], before["containers"]);
        assert_eq!(again["spec"]["initContainers"], before["initContainers"]);
        assert_eq!(again["spec"]["volumes"], before["volumes"]);
        assert_ne!(
            again["metadata"]["uid"], first["metadata"]["uid"],
            "a new pod"
        );
        pods.ok(&["down", "full", "--grace-period", "0"]);
    }
    pods.assert_clean();
}
