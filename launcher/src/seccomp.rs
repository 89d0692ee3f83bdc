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
pub fn filters(
    profile: Option<Seccomp>,
    capabilities: Option<u64>,
) -> Result<Vec<Program>, SeccompError> {
    let Some(caps) = capabilities else {
        return Ok(Vec::new());
    };
    if profile == Some(Seccomp::Unconfined) {
        return Ok(Vec::new());
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
        assert!(filters(Some(Seccomp::Unconfined), caps).unwrap().is_empty());
        assert!(filters(None, None).unwrap().is_empty());
        assert_eq!(filters(None, caps).unwrap().len(), 3);
        // CAP_SYS_ADMIN lets namespaces be made: clone3 is not refused either.
        let admin = caps.map(|c| c | crate::spec::capability_mask([CAP_SYS_ADMIN]));
        assert_eq!(filters(None, admin).unwrap().len(), 2);
    }
}
