//! Who a container's processes run as, resolved as runc and containerd do it from the
//! (host's) /etc/passwd and /etc/group: runAsUser without runAsGroup takes the user's
//! primary group (0 when the user has no passwd entry, the kubelet's fallback); the
//! supplementary groups are that group, the groups that list the user by name in
//! /etc/group (Kubernetes' default supplementalGroupsPolicy, Merge), and the pod's
//! supplementalGroups.

use std::fs;

/// uid, gid and supplementary groups of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

impl Ids {
    /// Resolves with the machine's /etc/passwd and /etc/group, read now (with
    /// `strict`, the memberships in /etc/group left out: supplementalGroupsPolicy
    /// Strict).
    pub fn resolve(
        user: Option<u32>,
        group: Option<u32>,
        supplemental: &[u32],
        strict: bool,
    ) -> Ids {
        Accounts::read().ids(user, group, supplemental, strict)
    }

    pub fn resolve_in(
        passwd: &str,
        group_file: &str,
        user: Option<u32>,
        group: Option<u32>,
        supplemental: &[u32],
    ) -> Ids {
        let uid = user.unwrap_or(0);
        let entry = passwd.lines().find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.len() >= 4 && f[2].parse() == Ok(uid)).then(|| (f[0], f[3].parse::<u32>().ok()))
        });
        let gid = group.or(entry.and_then(|(_, g)| g)).unwrap_or(0);
        let mut groups = vec![gid];
        if let Some((name, _)) = entry {
            for line in group_file.lines() {
                let f: Vec<&str> = line.split(':').collect();
                if f.len() >= 4 && f[3].split(',').any(|m| m == name) {
                    if let Ok(g) = f[2].parse() {
                        groups.push(g);
                    }
                }
            }
        }
        groups.extend_from_slice(supplemental);
        let mut seen = Vec::with_capacity(groups.len());
        groups.retain(|g| {
            let new = !seen.contains(g);
            seen.push(*g);
            new
        });
        Ids { uid, gid, groups }
    }
}

/// The machine's /etc/passwd and /etc/group.
pub struct Accounts {
    passwd: String,
    group: String,
}

impl Accounts {
    pub fn read() -> Accounts {
        Accounts {
            passwd: fs::read_to_string("/etc/passwd").unwrap_or_default(),
            group: fs::read_to_string("/etc/group").unwrap_or_default(),
        }
    }

    /// Read once per process: for a command that reports on many containers (`ps`,
    /// `status`), not for the supervisor, whose processes take them as they are.
    pub fn cached() -> &'static Accounts {
        static ACCOUNTS: std::sync::OnceLock<Accounts> = std::sync::OnceLock::new();
        ACCOUNTS.get_or_init(Accounts::read)
    }

    /// As [`Ids::resolve`] with these files.
    pub fn ids(
        &self,
        user: Option<u32>,
        group: Option<u32>,
        supplemental: &[u32],
        strict: bool,
    ) -> Ids {
        let groups = if strict { "" } else { &self.group };
        Ids::resolve_in(&self.passwd, groups, user, group, supplemental)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\nnogroup-user:x:1001::\n";
    const GROUP: &str = "root:x:0:\naudio:x:29:alice,bob\nvideo:x:44:bob\nalice:x:1000:\n";

    #[test]
    fn run_as_user_alone_takes_the_primary_group_and_memberships() {
        let ids = Ids::resolve_in(PASSWD, GROUP, Some(1000), None, &[]);
        assert_eq!(
            ids,
            Ids {
                uid: 1000,
                gid: 1000,
                groups: vec![1000, 29]
            }
        );
    }

    #[test]
    fn run_as_group_wins_and_supplemental_groups_are_added_once() {
        let ids = Ids::resolve_in(PASSWD, GROUP, Some(1000), Some(5), &[44, 5, 29]);
        assert_eq!(ids.gid, 5);
        assert_eq!(ids.groups, vec![5, 29, 44]);
    }

    #[test]
    fn an_unknown_user_falls_back_to_group_0() {
        let ids = Ids::resolve_in(PASSWD, GROUP, Some(4242), None, &[]);
        assert_eq!((ids.uid, ids.gid, ids.groups), (4242, 0, vec![0]));
    }

    #[test]
    fn root_by_default_keeps_only_its_own_group() {
        let ids = Ids::resolve_in(PASSWD, GROUP, None, None, &[]);
        assert_eq!((ids.uid, ids.gid, ids.groups), (0, 0, vec![0]));
    }
}
