//! The syscall filter a container's processes run under (securityContext.
//! seccompProfile): `RuntimeDefault` unless the pod says `Unconfined`, none for a
//! privileged container.
//!
//! RuntimeDefault has the semantics of containerd's and moby's default profile for
//! what it refuses: the calls that make namespaces (unshare, setns, clone with a
//! CLONE_NEW* flag; clone3, whose flags a filter cannot read, answers ENOSYS so that
//! the C library falls back to clone), mount and the new mount API, the keyring, bpf,
//! perf_event_open, kernel modules, kexec and reboot, open_by_handle_at, userfaultfd,
//! io_uring, the clock, swap, accounting, raw I/O ports, and the like, each allowed
//! again when the container holds the capability the kernel would check (moby's
//! `includes.caps`). It is built as a list of what is refused over a default of
//! allowing, where moby lists what is allowed over a default of refusing: a syscall
//! newer than this list is allowed here. x32-ABI calls (another numbering, which a
//! list by number would miss) are refused whole.
//!
//! The filters are compiled to BPF by seccompiler (pure Rust, so the launcher stays a
//! static musl binary without libseccomp), before clone; the child installs them last,
//! right before execve.

use crate::spec::Seccomp;
use caps::Capability::{self, *};
use seccompiler::{
    SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch,
};
use std::collections::BTreeMap;

/// One compiled filter, as seccomp(2) takes it.
pub type Program = Vec<libc::sock_filter>;

#[derive(Debug, thiserror::Error)]
#[error("failed to build the container's syscall filter: {0}")]
pub struct SeccompError(String);

/// Refused unless the container holds the capability (None: refused always).
const REFUSED: &[(&[libc::c_long], Option<Capability>)] = &[
    (
        &[
            libc::SYS_unshare,
            libc::SYS_setns,
            libc::SYS_mount,
            libc::SYS_umount2,
            libc::SYS_pivot_root,
            libc::SYS_fsopen,
            libc::SYS_fsconfig,
            libc::SYS_fsmount,
            libc::SYS_fspick,
            libc::SYS_move_mount,
            libc::SYS_open_tree,
            libc::SYS_mount_setattr,
            libc::SYS_bpf,
            libc::SYS_fanotify_init,
            libc::SYS_lookup_dcookie,
            libc::SYS_quotactl,
            libc::SYS_quotactl_fd,
            libc::SYS_name_to_handle_at,
            libc::SYS_swapon,
            libc::SYS_swapoff,
            libc::SYS_setdomainname,
            libc::SYS_sethostname,
        ],
        Some(CAP_SYS_ADMIN),
    ),
    (&[libc::SYS_perf_event_open], Some(CAP_PERFMON)),
    (&[libc::SYS_open_by_handle_at], Some(CAP_DAC_READ_SEARCH)),
    (
        &[
            libc::SYS_init_module,
            libc::SYS_finit_module,
            libc::SYS_delete_module,
        ],
        Some(CAP_SYS_MODULE),
    ),
    (
        &[
            libc::SYS_kexec_load,
            libc::SYS_kexec_file_load,
            libc::SYS_reboot,
        ],
        Some(CAP_SYS_BOOT),
    ),
    (&[libc::SYS_acct], Some(CAP_SYS_PACCT)),
    (&[libc::SYS_iopl, libc::SYS_ioperm], Some(CAP_SYS_RAWIO)),
    (
        &[
            libc::SYS_settimeofday,
            libc::SYS_clock_settime,
            libc::SYS_clock_adjtime,
            libc::SYS_adjtimex,
        ],
        Some(CAP_SYS_TIME),
    ),
    (&[libc::SYS_vhangup], Some(CAP_SYS_TTY_CONFIG)),
    (&[libc::SYS_syslog], Some(CAP_SYSLOG)),
    (
        &[
            libc::SYS_mbind,
            libc::SYS_set_mempolicy,
            libc::SYS_migrate_pages,
            libc::SYS_move_pages,
        ],
        Some(CAP_SYS_NICE),
    ),
    (&[libc::SYS_kcmp], Some(CAP_SYS_PTRACE)),
    (
        &[
            libc::SYS_keyctl,
            libc::SYS_add_key,
            libc::SYS_request_key,
            libc::SYS_userfaultfd,
            libc::SYS_io_uring_setup,
            libc::SYS_io_uring_enter,
            libc::SYS_io_uring_register,
            libc::SYS_uselib,
            libc::SYS_nfsservctl,
            libc::SYS_sysfs,
            libc::SYS__sysctl,
            libc::SYS_ustat,
        ],
        None,
    ),
];

/// The flags of clone(2) that make a namespace.
const CLONE_NEW: [u64; 7] = [
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWCGROUP as u64,
];

/// The filters for a process of a container with `profile` that holds `capabilities`
/// (None: every one, a privileged container); none for Unconfined or privileged.
/// Compiled once per supervisor (or `exec`) for each profile and capability set:
/// a probe that runs every second starts under the filters its container started
/// under, and a Localhost profile is read when its container first starts, as the
/// kubelet reads it when it creates the container.
pub fn filters(
    profile: Option<&Seccomp>,
    capabilities: Option<u64>,
) -> Result<Vec<Program>, SeccompError> {
    type Key = (Option<Seccomp>, Option<u64>);
    // A handful of entries: one per container's profile and capability set.
    static COMPILED: std::sync::Mutex<Vec<(Key, Vec<Program>)>> = std::sync::Mutex::new(Vec::new());
    let key: Key = (profile.cloned(), capabilities);
    let mut compiled = COMPILED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, programs)) = compiled.iter().find(|(k, _)| *k == key) {
        return Ok(programs.clone());
    }
    let programs = compile(profile, capabilities)?;
    compiled.push((key, programs.clone()));
    Ok(programs)
}

fn compile(
    profile: Option<&Seccomp>,
    capabilities: Option<u64>,
) -> Result<Vec<Program>, SeccompError> {
    let Some(caps) = capabilities else {
        return Ok(Vec::new());
    };
    match profile {
        Some(Seccomp::Unconfined) => return Ok(Vec::new()),
        Some(Seccomp::Localhost { path, .. }) => return localhost(path, caps),
        Some(Seccomp::RuntimeDefault) | None => {}
    }
    let has = |cap: Capability| caps & crate::spec::capability_mask([cap]) != 0;
    let err = |e: &dyn std::fmt::Display| SeccompError(e.to_string());
    let mut refused: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (calls, cap) in REFUSED {
        if cap.is_some_and(has) {
            continue;
        }
        for &nr in *calls {
            refused.insert(nr, Vec::new());
        }
    }
    let mut clone3: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    if !has(CAP_SYS_ADMIN) {
        let rules = CLONE_NEW
            .iter()
            .map(|&flag| {
                let cond = SeccompCondition::new(
                    0,
                    SeccompCmpArgLen::Qword,
                    SeccompCmpOp::MaskedEq(flag),
                    flag,
                )
                .map_err(|e| err(&e))?;
                SeccompRule::new(vec![cond]).map_err(|e| err(&e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        refused.insert(libc::SYS_clone, rules);
        clone3.insert(libc::SYS_clone3, Vec::new());
    }
    let arch = TargetArch::x86_64;
    let compile = |rules, errno: i32| -> Result<Program, SeccompError> {
        let filter = SeccompFilter::new(
            rules,
            SeccompAction::Allow,
            SeccompAction::Errno(errno as u32),
            arch,
        )
        .map_err(|e| err(&e))?;
        let program: seccompiler::BpfProgram = filter
            .try_into()
            .map_err(|e: seccompiler::BackendError| err(&e))?;
        Ok(program
            .into_iter()
            .map(|i| libc::sock_filter {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
            .collect())
    };
    let mut programs = vec![x32_refused(), compile(refused, libc::EPERM)?];
    if !clone3.is_empty() {
        programs.push(compile(clone3, libc::ENOSYS)?);
    }
    Ok(programs)
}

/// The most a Localhost profile may be (moby's default is about 20 KiB).
const MAX_PROFILE: u64 = 1 << 20;

/// A Localhost profile: an OCI/Docker seccomp JSON file (`defaultAction`, `syscalls`
/// with `names`, `action`, `errnoRet`, `args`, `includes`/`excludes` of caps and
/// arches), compiled for a process holding `caps`. Its rules become stacked filters,
/// one for the default action and what it allows, one per other action; the kernel
/// takes the strictest answer. Names this machine's architecture does not have
/// (a profile lists every architecture's) are skipped, as libseccomp skips them.
pub fn localhost(path: &std::path::Path, caps: u64) -> Result<Vec<Program>, SeccompError> {
    use serde_json::{json, Value};
    let bad = |why: String| SeccompError(format!("{}: {why}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| bad(crate::sys::strerror(&e)))?;
    let mut text = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_PROFILE + 1), &mut text)
        .map_err(|e| bad(crate::sys::strerror(&e)))?;
    if text.len() as u64 > MAX_PROFILE {
        return Err(bad("larger than 1 MiB".into()));
    }
    let profile: Value =
        serde_json::from_slice(&text).map_err(|e| bad(format!("not a seccomp profile: {e}")))?;
    let errno_of = |v: &Value| v.as_u64().unwrap_or(libc::EPERM as u64);
    let action = |name: &Value, errno: &Value| -> Result<Value, SeccompError> {
        Ok(match name.as_str().unwrap_or_default() {
            "SCMP_ACT_ALLOW" => json!("allow"),
            "SCMP_ACT_ERRNO" => json!({ "errno": errno_of(errno) }),
            "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => json!("kill_thread"),
            "SCMP_ACT_KILL_PROCESS" => json!("kill_process"),
            "SCMP_ACT_TRAP" => json!("trap"),
            "SCMP_ACT_LOG" => json!("log"),
            "SCMP_ACT_TRACE" => json!({ "trace": errno_of(errno) }),
            other => return Err(bad(format!("unknown action {other:?}"))),
        })
    };
    let default = action(&profile["defaultAction"], &profile["defaultErrnoRet"])?;
    let has = |name: &str| {
        let name = format!("CAP_{}", name.trim_start_matches("CAP_"));
        name.parse::<Capability>()
            .is_ok_and(|cap| caps & crate::spec::capability_mask([cap]) != 0)
    };
    let our_arch = |arches: &Value| {
        arches.as_array().is_some_and(|a| {
            a.iter()
                .any(|x| matches!(x.as_str(), Some("amd64" | "x86_64" | "SCMP_ARCH_X86_64")))
        })
    };
    // Rules by action: what the default does not do, grouped.
    let mut groups: Vec<(Value, Vec<Value>)> = Vec::new();
    for (i, g) in profile["syscalls"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let inc = &g["includes"];
        let exc = &g["excludes"];
        let caps_in = inc["caps"].as_array().into_iter().flatten();
        if !caps_in.filter_map(Value::as_str).all(has)
            || (inc["arches"].is_array() && !our_arch(&inc["arches"]))
            || exc["caps"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .any(has)
            || our_arch(&exc["arches"])
        {
            continue;
        }
        let act = action(&g["action"], &g["errnoRet"])?;
        let mut conds = Vec::new();
        for a in g["args"].as_array().into_iter().flatten() {
            let op = match a["op"].as_str().unwrap_or_default() {
                "SCMP_CMP_EQ" => json!("eq"),
                "SCMP_CMP_NE" => json!("ne"),
                "SCMP_CMP_LT" => json!("lt"),
                "SCMP_CMP_LE" => json!("le"),
                "SCMP_CMP_GT" => json!("gt"),
                "SCMP_CMP_GE" => json!("ge"),
                "SCMP_CMP_MASKED_EQ" => json!({ "masked_eq": a["value"] }),
                other => return Err(bad(format!("syscalls[{i}]: unknown op {other:?}"))),
            };
            let val = match op.is_object() {
                true => &a["valueTwo"],
                false => &a["value"],
            };
            conds.push(json!({
                "index": a["index"],
                "type": "qword",
                "op": op,
                "val": val.as_u64().unwrap_or(0),
            }));
        }
        let rules: Vec<Value> = g["names"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|name| known(name))
            .map(|name| match conds.is_empty() {
                true => json!({ "syscall": name }),
                false => json!({ "syscall": name, "args": conds }),
            })
            .collect();
        match groups.iter_mut().find(|(a, _)| *a == act) {
            Some((_, all)) => all.extend(rules),
            None => groups.push((act, rules)),
        }
    }
    let allow = json!("allow");
    let mut filters = serde_json::Map::new();
    let allowed: Vec<Value> = groups
        .iter()
        .filter(|(a, _)| *a == allow)
        .flat_map(|(_, r)| r.clone())
        .collect();
    if default != allow {
        filters.insert(
            "default".into(),
            json!({ "mismatch_action": default, "match_action": "allow", "filter": allowed }),
        );
    }
    for (i, (act, rules)) in groups.into_iter().enumerate() {
        if act != allow && act != default && !rules.is_empty() {
            filters.insert(
                format!("group{i}"),
                json!({ "mismatch_action": "allow", "match_action": act, "filter": rules }),
            );
        }
    }
    let text = serde_json::to_vec(&Value::Object(filters)).unwrap_or_default();
    let compiled = seccompiler::compile_from_json(text.as_slice(), TargetArch::x86_64)
        .map_err(|e| bad(e.to_string()))?;
    // The default's filter first: of two answers of one kind the kernel keeps the
    // later-installed filter's, so a group's own errno wins over the default's.
    let mut compiled: Vec<(String, seccompiler::BpfProgram)> = compiled.into_iter().collect();
    compiled.sort_by_key(|(name, _)| (name != "default", name.clone()));
    let mut programs = vec![x32_refused()];
    programs.extend(compiled.into_iter().map(|(_, p)| {
        p.into_iter()
            .map(|i| libc::sock_filter {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
            .collect()
    }));
    Ok(programs)
}

/// Whether seccompiler knows syscall `name` on x86_64: a filter of it alone compiles
/// (its two actions differ: seccompiler refuses a filter whose actions are one).
fn known(name: &str) -> bool {
    let probe = serde_json::json!({
        "p": { "mismatch_action": "allow", "match_action": "log", "filter": [{ "syscall": name }] }
    });
    let text = serde_json::to_vec(&probe).unwrap_or_default();
    seccompiler::compile_from_json(text.as_slice(), TargetArch::x86_64).is_ok()
}

/// Every call of the x32 ABI (its numbers carry __X32_SYSCALL_BIT) refused.
fn x32_refused() -> Program {
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    vec![
        // The syscall number: offset 0 of struct seccomp_data.
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16,
            jt: 1,
            jf: 0,
            k: X32_SYSCALL_BIT,
        },
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
        stmt(
            libc::BPF_RET | libc::BPF_K,
            libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unconfined_and_privileged_run_without_a_filter() {
        let caps = Some(crate::spec::default_capabilities());
        assert!(filters(Some(&Seccomp::Unconfined), caps)
            .unwrap()
            .is_empty());
        assert!(filters(None, None).unwrap().is_empty());
        assert_eq!(filters(None, caps).unwrap().len(), 3);
        // CAP_SYS_ADMIN lets namespaces be made: clone3 is not refused either.
        let admin = caps.map(|c| c | crate::spec::capability_mask([CAP_SYS_ADMIN]));
        assert_eq!(filters(None, admin).unwrap().len(), 2);
    }

    #[test]
    fn a_localhost_profile_compiles_with_other_arches_names_and_caps() {
        let dir = crate::testing::TempDir::new("seccomp");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.json");
        // Allow-listing, as moby's: names of 32-bit arches and caps included or not.
        std::fs::write(
            &path,
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
                "syscalls": [
                  {"names": ["read", "write", "_llseek", "chown32", "exit_group"], "action": "SCMP_ACT_ALLOW"},
                  {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                   "args": [{"index": 0, "value": 0, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
                  {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                  {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                  {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                   "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}
                ]}"#,
        )
        .unwrap();
        let caps = crate::spec::default_capabilities();
        let programs = localhost(&path, caps).unwrap();
        // x32's, the default's with what it allows, mkdir's EACCES.
        assert_eq!(programs.len(), 3);
        std::fs::write(&path, r#"{"defaultAction": "SCMP_ACT_NOPE"}"#).unwrap();
        let err = localhost(&path, caps).unwrap_err().to_string();
        assert!(err.ends_with("unknown action \"SCMP_ACT_NOPE\""), "{err}");
    }
}
