//! The fields of a Pod this runtime supports, checked before the typed parse.

use super::{field, ManifestError};
use serde_json::Value;

/// What each object may hold: `S` supported, `I` informational (accepted, no effect).
enum Kind {
    S,
    I,
    Obj(&'static [(&'static str, Kind)]),
    List(&'static [(&'static str, Kind)]),
    /// A map with free keys whose values are checked by the key list (resources).
    Keys(&'static [&'static str]),
}

use Kind::*;

const EXEC: (&str, Kind) = ("exec", Obj(&[("command", S)]));
const HTTP_GET: (&str, Kind) = (
    "httpGet",
    Obj(&[
        ("host", S),
        ("port", S),
        ("path", S),
        ("scheme", S),
        ("httpHeaders", List(&[("name", S), ("value", S)])),
    ]),
);
const TCP_SOCKET: (&str, Kind) = ("tcpSocket", Obj(&[("host", S), ("port", S)]));

const PROBE: &[(&str, Kind)] = &[
    EXEC,
    HTTP_GET,
    TCP_SOCKET,
    ("initialDelaySeconds", S),
    ("periodSeconds", S),
    ("timeoutSeconds", S),
    ("successThreshold", S),
    ("failureThreshold", S),
    ("terminationGracePeriodSeconds", S),
];

const HOOK: &[(&str, Kind)] = &[EXEC, HTTP_GET, ("sleep", Obj(&[("seconds", S)]))];

const KEY_REF: &[(&str, Kind)] = &[("name", S), ("key", S), ("optional", S)];
const FIELD_REF: &[(&str, Kind)] = &[("fieldPath", S), ("apiVersion", S)];
const RESOURCE_REF: &[(&str, Kind)] = &[("containerName", S), ("resource", S), ("divisor", S)];
const ITEMS: (&str, Kind) = ("items", List(&[("key", S), ("path", S), ("mode", S)]));
const DOWNWARD_ITEMS: (&str, Kind) = (
    "items",
    List(&[
        ("path", S),
        ("mode", S),
        ("fieldRef", Obj(FIELD_REF)),
        ("resourceFieldRef", Obj(RESOURCE_REF)),
    ]),
);

const CONTAINER: &[(&str, Kind)] = &[
    ("name", S),
    ("image", I),
    ("imagePullPolicy", I),
    ("command", S),
    ("args", S),
    ("workingDir", S),
    (
        "env",
        List(&[
            ("name", S),
            ("value", S),
            (
                "valueFrom",
                Obj(&[
                    ("configMapKeyRef", Obj(KEY_REF)),
                    ("secretKeyRef", Obj(KEY_REF)),
                    ("fieldRef", Obj(FIELD_REF)),
                    ("resourceFieldRef", Obj(RESOURCE_REF)),
                ]),
            ),
        ]),
    ),
    (
        "envFrom",
        List(&[
            ("prefix", S),
            ("configMapRef", Obj(&[("name", S), ("optional", S)])),
            ("secretRef", Obj(&[("name", S), ("optional", S)])),
        ]),
    ),
    (
        "ports",
        List(&[
            ("containerPort", S),
            ("hostPort", S),
            ("hostIP", S),
            ("protocol", S),
            ("name", I),
        ]),
    ),
    (
        "resources",
        Obj(&[
            ("limits", Keys(&["cpu", "memory", "ephemeral-storage"])),
            ("requests", Keys(&["cpu", "memory", "ephemeral-storage"])),
        ]),
    ),
    ("restartPolicy", S),
    (
        "volumeMounts",
        List(&[
            ("name", S),
            ("mountPath", S),
            ("readOnly", S),
            ("subPath", S),
            ("subPathExpr", S),
            ("mountPropagation", S),
        ]),
    ),
    ("terminationMessagePath", I),
    ("terminationMessagePolicy", I),
    ("livenessProbe", Obj(PROBE)),
    ("readinessProbe", Obj(PROBE)),
    ("startupProbe", Obj(PROBE)),
    (
        "lifecycle",
        Obj(&[("postStart", Obj(HOOK)), ("preStop", Obj(HOOK))]),
    ),
    (
        "securityContext",
        Obj(&[
            ("privileged", S),
            ("runAsUser", S),
            ("runAsGroup", S),
            ("runAsNonRoot", S),
            ("capabilities", Obj(&[("add", S), ("drop", S)])),
            ("readOnlyRootFilesystem", S),
            ("allowPrivilegeEscalation", S),
            ("seccompProfile", Obj(SECCOMP)),
        ]),
    ),
];

const SECCOMP: &[(&str, Kind)] = &[("type", S), ("localhostProfile", S)];

const POD: &[(&str, Kind)] = &[
    ("apiVersion", S),
    ("kind", S),
    (
        "metadata",
        Obj(&[
            ("name", S),
            ("namespace", I),
            ("labels", I),
            ("annotations", I),
            ("uid", I),
            ("creationTimestamp", I),
        ]),
    ),
    (
        "spec",
        Obj(&[
            ("initContainers", List(CONTAINER)),
            ("containers", List(CONTAINER)),
            (
                "volumes",
                List(&[
                    ("name", S),
                    ("emptyDir", Obj(&[("medium", S), ("sizeLimit", S)])),
                    ("hostPath", Obj(&[("path", S), ("type", S)])),
                    (
                        "configMap",
                        Obj(&[("name", S), ITEMS, ("defaultMode", S), ("optional", S)]),
                    ),
                    (
                        "secret",
                        Obj(&[
                            ("secretName", S),
                            ITEMS,
                            ("defaultMode", S),
                            ("optional", S),
                        ]),
                    ),
                    ("downwardAPI", Obj(&[DOWNWARD_ITEMS, ("defaultMode", S)])),
                    (
                        "projected",
                        Obj(&[
                            ("defaultMode", S),
                            (
                                "sources",
                                List(&[
                                    ("configMap", Obj(&[("name", S), ITEMS, ("optional", S)])),
                                    ("secret", Obj(&[("name", S), ITEMS, ("optional", S)])),
                                    ("downwardAPI", Obj(&[DOWNWARD_ITEMS])),
                                ]),
                            ),
                        ]),
                    ),
                    (
                        "persistentVolumeClaim",
                        Obj(&[("claimName", S), ("readOnly", S)]),
                    ),
                ]),
            ),
            ("restartPolicy", S),
            ("terminationGracePeriodSeconds", S),
            ("activeDeadlineSeconds", S),
            ("hostname", S),
            ("shareProcessNamespace", S),
            ("hostNetwork", S),
            ("hostPID", S),
            ("hostIPC", S),
            (
                "securityContext",
                Obj(&[
                    ("runAsUser", S),
                    ("runAsGroup", S),
                    ("runAsNonRoot", S),
                    ("supplementalGroups", S),
                    ("seccompProfile", Obj(SECCOMP)),
                ]),
            ),
            (
                "resources",
                Obj(&[
                    ("limits", Keys(&["cpu", "memory"])),
                    ("requests", Keys(&["cpu", "memory"])),
                ]),
            ),
            ("dnsPolicy", I),
            ("schedulerName", I),
            ("serviceAccountName", S),
            ("enableServiceLinks", I),
        ]),
    ),
    ("status", I),
];

/// Errors for every field outside the supported schema, in document order.
fn check(value: &Value, schema: &Kind, path: &str, errors: &mut Vec<ManifestError>) {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match (schema, value) {
        (S | I, _) => {}
        (Obj(fields), Value::Object(map)) => {
            for (k, v) in map {
                match fields.iter().find(|(name, _)| name == k) {
                    Some((_, kind)) => check(v, kind, &join(k), errors),
                    None => errors.push(field(join(k), "not supported by launcher")),
                }
            }
        }
        (List(fields), Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                check(item, &Obj(fields), &format!("{path}[{i}]"), errors);
            }
        }
        (Keys(keys), Value::Object(map)) => {
            for k in map.keys().filter(|k| !keys.contains(&k.as_str())) {
                errors.push(field(join(k), "not supported by launcher"));
            }
        }
        // Wrong shapes are reported by the typed parse, with its own message.
        _ => {}
    }
}

/// Errors for every field of `pod` outside the supported schema, in document order.
pub fn check_pod(pod: &Value, errors: &mut Vec<ManifestError>) {
    check(pod, &Obj(POD), "", errors);
}
