//! The devices a non-privileged pod may use, enforced by the kernel on every open and
//! mknod in the pod's cgroup: cgroup v2 has no devices controller, so, as runc and crun
//! do, a BPF_PROG_TYPE_CGROUP_DEVICE program on the pod's cgroup decides.
//!
//! Allowed, as runc allows them by default: creating any device node (useless without
//! the right to open it), and opening null, zero, full, random, urandom, tty, console,
//! ptmx and the pod's pseudo-terminals. Everything else, a disk above all, is refused
//! with EPERM, even to root in the pod with CAP_MKNOD and a writable directory.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;

const CHAR: i32 = 2; // BPF_DEVCG_DEV_CHAR
const MKNOD: i32 = 1; // BPF_DEVCG_ACC_MKNOD

/// (type, major, minor or any) that may be opened for reading and writing.
const ALLOWED: [(i32, i32, Option<i32>); 9] = [
    (CHAR, 1, Some(3)), // null
    (CHAR, 1, Some(5)), // zero
    (CHAR, 1, Some(7)), // full
    (CHAR, 1, Some(8)), // random
    (CHAR, 1, Some(9)), // urandom
    (CHAR, 5, Some(0)), // tty
    (CHAR, 5, Some(1)), // console
    (CHAR, 5, Some(2)), // ptmx
    (CHAR, 136, None),  // pts/*
];

// eBPF encoding (Documentation/bpf/standardization/instruction-set.rst).
const LDX_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const MOV_X: u8 = 0xbf; // dst = src (64-bit)
const MOV_K: u8 = 0xb7; // dst = imm (64-bit)
const AND_K: u8 = 0x57; // dst &= imm
const RSH_K: u8 = 0x77; // dst >>= imm
const JNE_K: u8 = 0x55; // if dst != imm: pc += off
const EXIT: u8 = 0x95;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    u64::from(code)
        | u64::from(dst | src << 4) << 8
        | u64::from(off as u16) << 16
        | u64::from(imm as u32) << 32
}

/// The program: r1 points at `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major;
/// u32 minor; }`, access_type being (access << 16) | type. Returns 1 to allow.
pub fn program() -> Vec<u64> {
    let allow = [insn(MOV_K, 0, 0, 0, 1), insn(EXIT, 0, 0, 0, 0)];
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),      // r2 = access_type
        insn(MOV_X, 3, 2, 0, 0),      // r3 = r2
        insn(AND_K, 3, 0, 0, 0xffff), // r3 = type
        insn(RSH_K, 2, 0, 0, 16),     // r2 = access
        insn(LDX_W, 4, 1, 4, 0),      // r4 = major
        insn(LDX_W, 5, 1, 8, 0),      // r5 = minor
        insn(JNE_K, 2, 0, 2, MKNOD),  // only mknod: allowed
    ];
    p.extend(allow);
    for (kind, major, minor) in ALLOWED {
        let mut tests = vec![(3, kind), (4, major)];
        tests.extend(minor.map(|m| (5, m)));
        // Each failed test jumps past the rest of this rule.
        let len = tests.len() + allow.len();
        for (i, (reg, value)) in tests.into_iter().enumerate() {
            p.push(insn(JNE_K, reg, 0, (len - i - 1) as i16, value));
        }
        p.extend(allow);
    }
    p.extend([insn(MOV_K, 0, 0, 0, 0), insn(EXIT, 0, 0, 0, 0)]);
    p
}

/// The filter, loaded into the kernel, for [`restrict`].
pub fn load() -> io::Result<OwnedFd> {
    crate::sys::load_device_filter(&program())
}

/// Puts the filter (from [`load`]) on the cgroup `dir` and below.
pub fn restrict(dir: &File, filter: &OwnedFd) -> io::Result<()> {
    crate::sys::attach_device_filter(dir, filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: i32 = 1; // BPF_DEVCG_DEV_BLOCK

    /// Runs the program on one access, the way the kernel would.
    fn run(access: i32, kind: i32, major: i32, minor: i32) -> bool {
        let p = program();
        let mut r = [0i64; 6];
        let ctx = [(access << 16 | kind) as i64, major as i64, minor as i64];
        let mut pc = 0;
        loop {
            let i = p[pc];
            let (code, dst, src) = (i as u8, (i >> 8) as usize & 0xf, (i >> 12) as usize & 0xf);
            let (off, imm) = ((i >> 16) as u16 as i16, (i >> 32) as u32 as i32);
            pc += 1;
            match code {
                LDX_W => r[dst] = ctx[usize::try_from(off).unwrap() / 4],
                MOV_X => r[dst] = r[src],
                MOV_K => r[dst] = i64::from(imm),
                AND_K => r[dst] &= i64::from(imm),
                RSH_K => r[dst] >>= imm,
                JNE_K if r[dst] != i64::from(imm) => pc += usize::try_from(off).unwrap(),
                JNE_K => {}
                EXIT => return r[0] == 1,
                other => panic!("unknown opcode {other:#x}"),
            }
        }
    }

    #[test]
    fn allows_the_default_devices_and_nothing_else() {
        const READ_WRITE: i32 = 2 | 4;
        for minor in [3, 5, 7, 8, 9] {
            assert!(run(READ_WRITE, CHAR, 1, minor), "1:{minor}");
        }
        assert!(run(READ_WRITE, CHAR, 5, 0));
        assert!(run(READ_WRITE, CHAR, 5, 2));
        assert!(run(READ_WRITE, CHAR, 136, 7));
        assert!(!run(READ_WRITE, CHAR, 1, 1), "/dev/mem");
        assert!(!run(READ_WRITE, CHAR, 1, 11), "/dev/kmsg");
        assert!(!run(2, BLOCK, 8, 0), "a disk");
        assert!(!run(2, BLOCK, 1, 3), "block 1:3 is not null");
        assert!(run(MKNOD, BLOCK, 8, 0), "mknod alone");
        assert!(!run(MKNOD | 2, BLOCK, 8, 0));
    }
}
