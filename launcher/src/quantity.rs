//! Kubernetes quantities and durations, as `kubectl` accepts them.
//!
//! Memory is bytes with a decimal (`k M G T P E`, powers of 1000) or binary (`Ki Mi Gi Ti
//! Pi Ei`, powers of 1024) suffix, or an exponent (`129e6`). CPU is cores, fractional or
//! milli (`0.5` = `500m`); anything finer than 1m is invalid. Durations are Go-style
//! (`30s`, `2m`, `1m30s`, `500ms`) or a bare number of seconds (`0`, `30`).

use std::fmt;
use std::time::Duration;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum QuantityError {
    #[error("invalid memory quantity {0:?} (examples: 128Mi, 1G, 129e6, 512974848)")]
    Memory(String),
    #[error("invalid cpu quantity {0:?} (examples: 500m, 0.5, 2; the finest unit is 1m)")]
    Cpu(String),
    #[error("invalid duration {0:?} (examples: 30s, 2m, 1m30s, 0)")]
    Duration(String),
    #[error("invalid duration {0:?}: must be at most 2147483647s (68 years)")]
    DurationRange(String),
    #[error("invalid count {0:?}: expected a whole number of at least 1")]
    Count(String),
}

/// Bytes of memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Memory(pub u64);

/// CPU in thousandths of a core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MilliCpu(pub u64);

/// Splits `s` into a non-negative decimal mantissa (as an exact rational: digits and
/// the count of fractional digits) and the rest.
fn split_number(s: &str) -> Option<(u128, u32, &str)> {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, rest) = s.split_at(end);
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty() || frac.contains('.') {
        return None;
    }
    let digits: u128 = format!("{int}{frac}").parse().ok()?;
    Some((digits, frac.len() as u32, rest))
}

/// `value * 10^exp10 * mult`, only if it is a whole number that fits in a u64.
fn exact(digits: u128, frac: u32, exp10: i32, mult: u128) -> Option<u64> {
    let mut num = digits.checked_mul(mult)?;
    let mut den: u128 = 10u128.checked_pow(frac)?;
    if exp10 >= 0 {
        num = num.checked_mul(10u128.checked_pow(exp10 as u32)?)?;
    } else {
        den = den.checked_mul(10u128.checked_pow(exp10.unsigned_abs())?)?;
    }
    if num % den != 0 {
        return None;
    }
    u64::try_from(num / den).ok()
}

impl std::str::FromStr for Memory {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || QuantityError::Memory(s.to_string());
        let (digits, frac, suffix) = split_number(s).ok_or_else(err)?;
        let (exp10, mult): (i32, u128) = match suffix {
            "" => (0, 1),
            "k" => (3, 1),
            "M" => (6, 1),
            "G" => (9, 1),
            "T" => (12, 1),
            "P" => (15, 1),
            "E" => (18, 1),
            "Ki" => (0, 1 << 10),
            "Mi" => (0, 1 << 20),
            "Gi" => (0, 1 << 30),
            "Ti" => (0, 1 << 40),
            "Pi" => (0, 1 << 50),
            "Ei" => (0, 1 << 60),
            e if e.starts_with(['e', 'E']) => (e[1..].parse::<i32>().map_err(|_| err())?, 1),
            _ => return Err(err()),
        };
        match exact(digits, frac, exp10, mult) {
            Some(0) | None => Err(err()),
            Some(bytes) => Ok(Memory(bytes)),
        }
    }
}

impl fmt::Display for Memory {
    /// The shortest exact binary form, as kubectl prints limits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (suffix, shift) in [
            ("Ei", 60),
            ("Pi", 50),
            ("Ti", 40),
            ("Gi", 30),
            ("Mi", 20),
            ("Ki", 10),
        ] {
            if self.0 % (1 << shift) == 0 {
                return write!(f, "{}{suffix}", self.0 >> shift);
            }
        }
        write!(f, "{}", self.0)
    }
}

impl std::str::FromStr for MilliCpu {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || QuantityError::Cpu(s.to_string());
        let (digits, frac, suffix) = split_number(s).ok_or_else(err)?;
        let exp10 = match suffix {
            "m" => 0,
            "" => 3,
            _ => return Err(err()),
        };
        match exact(digits, frac, exp10, 1) {
            Some(0) | None => Err(err()),
            Some(m) => Ok(MilliCpu(m)),
        }
    }
}

impl fmt::Display for MilliCpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 % 1000 == 0 {
            write!(f, "{}", self.0 / 1000)
        } else {
            write!(f, "{}m", self.0)
        }
    }
}

/// The longest duration any flag or field takes: 2^31-1 seconds, the range of the
/// API server's int32 seconds fields. Kept far from where time arithmetic overflows.
pub const MAX_SECONDS: u64 = i32::MAX as u64;

/// A duration: Go style (`1m30s`, `500ms`) or bare seconds (`30`, `0`), at most
/// [`MAX_SECONDS`].
pub fn parse_duration(s: &str) -> Result<Duration, QuantityError> {
    let err = || QuantityError::Duration(s.to_string());
    let d = if let Ok(secs) = s.parse::<u64>() {
        Duration::from_secs(secs)
    } else if s.is_empty() || s.starts_with('-') {
        return Err(err());
    } else {
        // A number too large for a u64 of seconds is out of range, not malformed.
        humantime::parse_duration(s).map_err(|e| match e {
            humantime::DurationError::NumberOverflow => QuantityError::DurationRange(s.to_string()),
            _ => err(),
        })?
    };
    if d > Duration::from_secs(MAX_SECONDS) {
        return Err(QuantityError::DurationRange(s.to_string()));
    }
    Ok(d)
}

/// Formats a duration the way it is parsed back (`30s`, `1m30s`, `250ms`).
pub fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    humantime::format_duration(d).to_string().replace(' ', "")
}

pub fn parse_count(s: &str) -> Result<u64, QuantityError> {
    match s.parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(QuantityError::Count(s.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_forms_kubectl_accepts() {
        let cases = [
            ("128Mi", 134_217_728),
            ("1G", 1_000_000_000),
            ("129e6", 129_000_000),
            ("129E6", 129_000_000),
            ("512974848", 512_974_848),
            ("1.5Gi", 1_610_612_736),
            ("100k", 100_000),
            ("1Ki", 1024),
        ];
        for (s, want) in cases {
            assert_eq!(s.parse::<Memory>(), Ok(Memory(want)), "{s}");
        }
    }

    #[test]
    fn malformed_memory_is_rejected() {
        for s in [
            "12Zi",
            "-1",
            "1.5.5",
            "",
            "Mi",
            "0",
            "1.5",
            "0.1",
            "1e-3",
            "1K",
            "99999999999Ei",
        ] {
            assert!(s.parse::<Memory>().is_err(), "{s} accepted");
        }
    }

    #[test]
    fn cpu_forms_and_limits() {
        for (s, want) in [
            ("500m", 500),
            ("0.5", 500),
            ("2", 2000),
            ("1.25", 1250),
            ("1m", 1),
        ] {
            assert_eq!(s.parse::<MilliCpu>(), Ok(MilliCpu(want)), "{s}");
        }
        for s in ["0.0001", "-1", "1.5.5", "12Zi", "", "m", "0", "0.5m", "1Ki"] {
            assert!(s.parse::<MilliCpu>().is_err(), "{s} accepted");
        }
    }

    #[test]
    fn display_round_trips() {
        assert_eq!(Memory(134_217_728).to_string(), "128Mi");
        assert_eq!(Memory(1_000_000_000).to_string(), "1000000000");
        assert_eq!(MilliCpu(500).to_string(), "500m");
        assert_eq!(MilliCpu(2000).to_string(), "2");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        for s in ["", "-1", "abc", "5x", "1.5.5s"] {
            assert!(parse_duration(s).is_err(), "{s} accepted");
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        for s in [
            "18446744073709551615",
            "2147483648",
            "99999999999999999999s",
            "600000h",
        ] {
            assert_eq!(
                parse_duration(s),
                Err(QuantityError::DurationRange(s.into())),
                "{s}"
            );
        }
        assert_eq!(
            parse_duration("2147483647"),
            Ok(Duration::from_secs(MAX_SECONDS))
        );
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }
}
