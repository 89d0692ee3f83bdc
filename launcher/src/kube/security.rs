//! `securityContext`: user, group, runAsNonRoot, capabilities, privileged,
//! readOnlyRootFilesystem and allowPrivilegeEscalation of a container, and what a
//! pod's gives its containers (user, group, runAsNonRoot, supplementalGroups).

use super::{field, ManifestError};
use crate::spec::Seccomp;
use crate::spec::{capability_mask, default_capabilities, ContainerSpec};
use k8s_openapi::api::core::v1::{Capabilities, SeccompProfile, SecurityContext};

/// What a Pod's securityContext gives each of its containers.
#[derive(Default)]
pub struct PodSecurity {
    pub user: Option<u32>,
    pub group: Option<u32>,
    pub non_root: bool,
    pub groups: Vec<u32>,
    /// spec.securityContext.seccompProfile, for containers without their own.
    pub seccomp: Option<Seccomp>,
}

/// Who a container's processes are and what they may do: runAsUser, runAsGroup,
/// the capability set (None: the runtimes' default), a read-only
/// root file system, and whether no_new_privs is left unset.
pub struct Identity {
    pub seccomp: Option<Seccomp>,
    pub user: Option<u32>,
    pub group: Option<u32>,
    pub capabilities: Option<u64>,
    pub read_only_root: bool,
    pub privilege_escalation: bool,
}

/// A container's identity from its securityContext (at `<path>.securityContext`)
/// and its pod's.
pub fn decode(
    sc: Option<&SecurityContext>,
    path: &str,
    pod: &PodSecurity,
) -> Result<Identity, ManifestError> {
    let at = |key: &str| format!("{path}.securityContext.{key}");
    let user = id(sc.and_then(|s| s.run_as_user), &at("runAsUser"))?.or(pod.user);
    let group = id(sc.and_then(|s| s.run_as_group), &at("runAsGroup"))?.or(pod.group);
    let non_root = sc.and_then(|s| s.run_as_non_root).unwrap_or(pod.non_root);
    if non_root && user.unwrap_or(0) == 0 {
        return Err(field(
            format!("{path}.securityContext.runAsNonRoot"),
            "the container would run as root: set runAsUser to a non-zero user",
        ));
    }
    let capabilities = sc
        .and_then(|s| s.capabilities.as_ref())
        .map(|caps| capability_set(caps, &format!("{path}.securityContext.capabilities")))
        .transpose()?;
    let privileged = sc.and_then(|s| s.privileged).unwrap_or(false);
    let sys_admin =
        capabilities.is_some_and(|c| c & capability_mask([caps::Capability::CAP_SYS_ADMIN]) != 0);
    // As the API server validates it; and since no_new_privs is set for every other
    // container, `true` is accepted only where Kubernetes could not refuse `false`.
    let privilege_escalation = match sc.and_then(|s| s.allow_privilege_escalation) {
        Some(false) if privileged => {
            return Err(field(
                at("allowPrivilegeEscalation"),
                "cannot set allowPrivilegeEscalation to false and privileged to true",
            ))
        }
        Some(false) if sys_admin => {
            return Err(field(
                at("allowPrivilegeEscalation"),
                "cannot set allowPrivilegeEscalation to false and capabilities.Add CAP_SYS_ADMIN",
            ))
        }
        Some(true) if !privileged && !sys_admin => {
            return Err(field(
                at("allowPrivilegeEscalation"),
                "may be true only with privileged or CAP_SYS_ADMIN: launcher sets no_new_privs for every other container",
            ))
        }
        Some(allow) => allow,
        None => false,
    };
    let seccomp = match sc.and_then(|s| s.seccomp_profile.as_ref()) {
        Some(p) => Some(seccomp(p, &at("seccompProfile"))?),
        None => pod.seccomp.clone(),
    };
    Ok(Identity {
        seccomp,
        user,
        group,
        capabilities,
        read_only_root: sc
            .and_then(|s| s.read_only_root_filesystem)
            .unwrap_or(false),
        privilege_escalation,
    })
}

/// A seccompProfile (at `path`), as the API server validates its type.
pub fn seccomp(p: &SeccompProfile, path: &str) -> Result<Seccomp, ManifestError> {
    match p.type_.as_str() {
        "RuntimeDefault" => Ok(Seccomp::RuntimeDefault),
        "Unconfined" => Ok(Seccomp::Unconfined),
        "Localhost" => {
            let profile = p
                .localhost_profile
                .clone()
                .filter(|p| !p.is_empty())
                .ok_or_else(|| field(format!("{path}.localhostProfile"), "required when type is Localhost"))?;
            // A path below the profile root, as the kubelet takes it.
            let below = !profile.starts_with('/')
                && std::path::Path::new(&profile)
                    .components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !below {
                return Err(field(
                    format!("{path}.localhostProfile"),
                    "must be a relative path without \"..\" (below --seccomp-profile-root)",
                ));
            }
            Ok(Seccomp::Localhost {
                profile,
                path: Default::default(),
            })
        }
        other => Err(field(
            format!("{path}.type"),
            format!("Unsupported value: {other:?}: supported values: \"Localhost\", \"RuntimeDefault\", \"Unconfined\""),
        )),
    }
}

/// A user or group id; -1 (4294967295) is not one.
pub fn id(v: Option<i64>, path: &str) -> Result<Option<u32>, ManifestError> {
    v.map(|v| {
        u32::try_from(v)
            .ok()
            .filter(|&v| v != u32::MAX)
            .ok_or_else(|| field(path, "must be between 0 and 4294967294"))
    })
    .transpose()
}

/// The runtimes' default set with `drop` removed and `add` added ("ALL" for every one).
fn capability_set(caps: &Capabilities, path: &str) -> Result<u64, ManifestError> {
    let all = capability_mask(caps::all());
    let parse = |list: &Option<Vec<String>>, key: &str| -> Result<(bool, u64), ManifestError> {
        let mut set = 0u64;
        let mut has_all = false;
        for (j, name) in list.iter().flatten().enumerate() {
            if name == "ALL" {
                has_all = true;
                continue;
            }
            let full = format!("CAP_{}", name.trim_start_matches("CAP_"));
            let cap = full.parse::<caps::Capability>().map_err(|_| {
                field(
                    format!("{path}.{key}[{j}]"),
                    format!("unknown capability {name:?}"),
                )
            })?;
            set |= capability_mask([cap]);
        }
        Ok((has_all, set))
    };
    let (drop_all, dropped) = parse(&caps.drop, "drop")?;
    let (add_all, added) = parse(&caps.add, "add")?;
    let mut set = if drop_all {
        0
    } else {
        default_capabilities() & !dropped
    };
    set |= if add_all { all } else { added };
    Ok(set)
}

/// A container's securityContext, or None when it has nothing to say.
pub fn encode(c: &ContainerSpec, privileged: bool) -> Option<SecurityContext> {
    let caps = c.capabilities.map(|set| {
        let add: std::collections::BTreeSet<String> = caps::all()
            .into_iter()
            .filter(|cap| set & (1 << cap.index()) != 0)
            .map(|cap| cap.to_string().trim_start_matches("CAP_").to_string())
            .collect();
        Capabilities {
            add: Some(add.into_iter().collect()),
            drop: Some(vec!["ALL".into()]),
        }
    });
    let sc = SecurityContext {
        privileged: privileged.then_some(true),
        run_as_user: c.user.map(i64::from),
        run_as_group: c.group.map(i64::from),
        capabilities: caps,
        read_only_root_filesystem: c.read_only_root.then_some(true),
        allow_privilege_escalation: c.privilege_escalation.then_some(true),
        seccomp_profile: c.seccomp.as_ref().map(|s| SeccompProfile {
            type_: s.name().into(),
            localhost_profile: match s {
                Seccomp::Localhost { profile, .. } => Some(profile.clone()),
                _ => None,
            },
        }),
        ..Default::default()
    };
    (sc != SecurityContext::default()).then_some(sc)
}
