//! The fields of a Pod this runtime supports, checked beside the typed parse.
//!
//! A field outside this list is one of two things, told apart by the typed parse's
//! own round trip (k8s-openapi keeps every field Kubernetes knows and drops the
//! rest): a field of the Pod API this runtime does not support, or a field no Pod
//! has, reported as the API server's strict decoding does (`unknown field "..."`),
//! with the closest supported name when one is near.

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
    ("grpc", Obj(&[("port", S), ("service", S), ("mode", S)])),
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
    ("terminationMessagePath", S),
    ("terminationMessagePolicy", S),
    ("stdin", S),
    ("stdinOnce", S),
    ("tty", S),
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
            // What the API server adds: an exported Pod starts again as it is.
            ("generateName", I),
            ("resourceVersion", I),
            ("generation", I),
            ("selfLink", I),
            ("managedFields", I),
            ("ownerReferences", I),
            ("finalizers", I),
            ("deletionTimestamp", I),
            ("deletionGracePeriodSeconds", I),
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
                    (
                        "emptyDir",
                        Obj(&[("medium", S), ("sizeLimit", S), ("mode", S)]),
                    ),
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
                    ("sysctls", List(&[("name", S), ("value", S)])),
                    ("fsGroup", S),
                    ("fsGroupChangePolicy", S),
                    ("supplementalGroupsPolicy", S),
                ]),
            ),
            (
                "resources",
                Obj(&[
                    ("limits", Keys(&["cpu", "memory"])),
                    ("requests", Keys(&["cpu", "memory"])),
                ]),
            ),
            ("dnsPolicy", S),
            (
                "dnsConfig",
                Obj(&[
                    ("nameservers", S),
                    ("searches", S),
                    ("options", List(&[("name", S), ("value", S)])),
                ]),
            ),
            ("hostAliases", List(&[("ip", S), ("hostnames", S)])),
            ("subdomain", S),
            ("setHostnameAsFQDN", S),
            ("schedulerName", I),
            ("serviceAccountName", S),
            ("enableServiceLinks", I),
            // Scheduling, done: the pod is on this node.
            ("nodeName", I),
            ("priority", I),
            ("priorityClassName", I),
            ("preemptionPolicy", I),
            ("tolerations", I),
            ("serviceAccount", I),
            ("imagePullSecrets", I),
        ]),
    ),
    ("status", I),
];

/// Errors for every field outside the supported schema, in document order; `known` is
/// the same place in the typed parse's round trip.
fn check(
    value: &Value,
    known: Option<&Value>,
    schema: &Kind,
    path: &str,
    errors: &mut Vec<ManifestError>,
) {
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
                let inner = known.and_then(|o| o.get(k));
                match fields.iter().find(|(name, _)| name == k) {
                    Some((_, kind)) => check(v, inner, kind, &join(k), errors),
                    // null is unset, for Kubernetes as here.
                    None if v.is_null() => {}
                    None if inner.is_some() => {
                        errors.push(field(join(k), "not supported by launcher"))
                    }
                    None => errors.push(unknown(&join(k), k, fields.iter().map(|(name, _)| *name))),
                }
            }
        }
        (List(fields), Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let inner = known.and_then(|l| l.get(i));
                check(item, inner, &Obj(fields), &format!("{path}[{i}]"), errors);
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

/// Errors for every field of `pod` outside the supported schema, in document order;
/// `known` is the typed Pod serialized again: what Kubernetes' Pod has of `pod`.
pub fn check_pod(pod: &Value, known: &Value, errors: &mut Vec<ManifestError>) {
    check(pod, Some(known), &Obj(POD), "", errors);
}

/// `unknown field "PATH"` as the API server's strict decoding says it, with the
/// supported name closest to `name` if it is a typo's distance away.
fn unknown<'a>(path: &str, name: &str, names: impl Iterator<Item = &'a str>) -> ManifestError {
    let near = names
        .map(|n| (edit_distance(&name.to_lowercase(), &n.to_lowercase()), n))
        .filter(|&(d, n)| d <= (n.len() / 3).max(1))
        .min_by_key(|&(d, _)| d);
    ManifestError::Unknown {
        path: path.into(),
        hint: near.map(|(_, n)| n.to_string()),
    }
}

/// Levenshtein distance: insertions, deletions and substitutions of one character.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::edit_distance;

    #[test]
    fn edit_distance_counts_single_character_edits() {
        assert_eq!(edit_distance("comand", "command"), 1);
        assert_eq!(edit_distance("command", "command"), 0);
        assert_eq!(edit_distance("args", "env"), 4);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("imgae", "image"), 2);
    }
}
