//! cpu controller, as kubelet + runc/crun/youki write it.
//! - limit: `cpu.max` = "<quota> 100000", quota = milliCPU x 100, at least 1000.
//! - request: shares = milliCPU x 1024 / 1000 (at least 2), then `cpu.weight` by the
//!   quadratic map runc >= 1.3.2, crun and youki use, which sends 1024 shares to 100.

use super::{read, write, CgroupError};
use std::path::Path;

pub const CONTROLLER: &str = "cpu";
const PERIOD: u64 = 100_000;

pub fn max_value(milli: u64) -> String {
    format!("{} {PERIOD}", (milli * PERIOD / 1000).max(1000))
}

pub fn set_max(dir: &Path, milli: u64) -> Result<(), CgroupError> {
    write(dir, "cpu.max", &max_value(milli))
}

pub fn shares(milli: u64) -> u64 {
    (milli * 1024 / 1000).max(2)
}

/// cpu.weight for cgroup v1 shares: 1 at <= 2, 10000 at >= 262144, in between
/// ceil(10^((l^2 + 125 l) / 612 - 7/34)) with l = log2(shares).
pub fn weight(shares: u64) -> u64 {
    if shares <= 2 {
        return 1;
    }
    if shares >= 262_144 {
        return 10_000;
    }
    let l = (shares as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    10f64.powf(exponent).ceil() as u64
}

pub fn set_weight(dir: &Path, request_milli: u64) -> Result<(), CgroupError> {
    write(
        dir,
        "cpu.weight",
        &weight(shares(request_milli)).to_string(),
    )
}

/// CPU time used by the cgroup's processes, in microseconds: `usage_usec` of
/// cpu.stat, which cgroup2 keeps for every cgroup, the cpu controller enabled or not.
pub fn usage_usec(dir: &Path) -> Option<u64> {
    read(dir, "cpu.stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("usage_usec ")?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_is_milli_times_100_with_a_floor() {
        assert_eq!(max_value(500), "50000 100000");
        assert_eq!(max_value(2000), "200000 100000");
        assert_eq!(max_value(1), "1000 100000");
    }

    #[test]
    fn weight_matches_the_runtimes() {
        // Values runc's TestConvertCPUSharesToCgroupV2Value expects.
        assert_eq!(weight(0), 1);
        assert_eq!(weight(2), 1);
        assert_eq!(weight(1024), 100);
        assert_eq!(weight(262_144), 10_000);
        assert_eq!(weight(shares(1000)), 100);
        assert_eq!(shares(1), 2);
        assert_eq!(weight(shares(500)), 59);
        assert_eq!(weight(shares(250)), 35);
        assert_eq!(weight(shares(2000)), 174);
    }
}
