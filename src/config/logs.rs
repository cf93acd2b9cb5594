//! `lamb logs` flags, checked once: `--since` as an age (`10m`) or a time (RFC 3339) becomes
//! milliseconds since the epoch, and an empty `--filter` means no filter.

use super::ConfigError;
use crate::cli::{Format, LogsArgs};

/// What `lamb logs` reads and how it prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogsConfig {
    /// Function ids as given (resolved against the template by the command).
    pub ids: Vec<String>,
    /// Events stamped from this time on (ms since the epoch).
    pub since_ms: i64,
    pub filter: Option<String>,
    pub tail: bool,
    pub format: Format,
}

/// Checks the flags; `now_ms` is the clock (passed in for tests).
pub fn logs(args: &LogsArgs, now_ms: i64) -> Result<LogsConfig, ConfigError> {
    let since_ms = since(&args.since, now_ms)
        .map_err(|reason| ConfigError::Since { value: args.since.clone(), reason: reason.to_string() })?;
    Ok(LogsConfig {
        ids: args.resource_ids.clone(),
        since_ms,
        filter: args.filter.clone().filter(|f| !f.trim().is_empty()),
        tail: args.tail,
        format: args.output,
    })
}

const FORMS: &str = "give an age (30s, 10m, 2h, 1d, 1w; `10 minutes ago` too) or a time (2026-01-31T12:00:00Z, 2026-01-31T12:00:00+01:00)";

/// `--since`: an age before `now_ms`, or an absolute time; the reason names the forms taken.
fn since(text: &str, now_ms: i64) -> Result<i64, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err(format!("empty; {FORMS}"));
    }
    let ms = if t.as_bytes()[0].is_ascii_digit() && t.len() >= 10 && t.as_bytes().get(4) == Some(&b'-') {
        time(t).ok_or_else(|| format!("not a time lamb reads; {FORMS}"))?
    } else {
        now_ms - age(t).ok_or_else(|| format!("not an age or a time; {FORMS}"))?
    };
    if ms > now_ms {
        return Err("is in the future; give a time before now".into());
    }
    Ok(ms)
}

/// `10m`, `90s`, `2 hours`, `5 mins ago` -> milliseconds.
fn age(text: &str) -> Option<i64> {
    let t = text.strip_suffix("ago").unwrap_or(text).trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let n: i64 = t[..digits].parse().ok()?;
    let unit_ms = match t[digits..].trim() {
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        "w" | "week" | "weeks" => 7 * 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit_ms)
}

/// RFC 3339 (`T` or a space between date and time; seconds and fraction optional; `Z` or an
/// offset, none meaning UTC) -> milliseconds since the epoch.
fn time(text: &str) -> Option<i64> {
    let (date, rest) = text.split_at(10);
    let mut d = date.split('-');
    let (y, mo, da): (i64, i64, i64) = (d.next()?.parse().ok()?, d.next()?.parse().ok()?, d.next()?.parse().ok()?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) {
        return None;
    }
    let rest = rest.strip_prefix(['T', 't', ' ']).unwrap_or(rest);
    let (clock, offset_min) = if rest.is_empty() {
        ("00:00:00", 0)
    } else if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else if let Some(i) = rest.rfind(['+', '-']).filter(|i| *i >= 5) {
        let (c, off) = rest.split_at(i);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (oh, om) = off[1..].split_once(':')?;
        (c, sign * (oh.parse::<i64>().ok()? * 60 + om.parse::<i64>().ok()?))
    } else {
        (rest, 0)
    };
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut parts = hms.split(':');
    let h: i64 = parts.next()?.parse().ok()?;
    let mi: i64 = parts.next()?.parse().ok()?;
    let s: i64 = parts.next().map_or(Some(0), |s| s.parse().ok())?;
    if parts.next().is_some() || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let ms: i64 = if frac.is_empty() {
        0
    } else {
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        format!("{frac:0<3}")[..3].parse().ok()?
    };
    let days = days_from_civil(y, mo, da);
    Some(((days * 86_400 + h * 3_600 + mi * 60 + s - offset_min * 60) * 1_000) + ms)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_796_695_466_720;

    #[test]
    fn ages_count_back_from_now() {
        assert_eq!(since("10m", NOW), Ok(NOW - 600_000));
        assert_eq!(since("90s", NOW), Ok(NOW - 90_000));
        assert_eq!(since("2h", NOW), Ok(NOW - 7_200_000));
        assert_eq!(since("1d", NOW), Ok(NOW - 86_400_000));
        assert_eq!(since("5 mins ago", NOW), Ok(NOW - 300_000));
        assert_eq!(since("0s", NOW), Ok(NOW));
    }

    #[test]
    fn times_are_rfc_3339_in_any_offset() {
        assert_eq!(since("1970-01-01T00:00:00Z", NOW), Ok(0));
        assert_eq!(since("2026-12-08T02:04:26.72Z", NOW), Ok(NOW));
        assert_eq!(since("2026-12-08 03:04:26.720+01:00", NOW), Ok(NOW));
        assert_eq!(since("2026-12-07T21:04:26.720-05:00", NOW), Ok(NOW));
        assert_eq!(since("2026-12-08", NOW), Ok(NOW - (2 * 3600 + 4 * 60 + 26) * 1000 - 720));
    }

    #[test]
    fn bad_values_say_which_forms_are_taken() {
        for bad in ["", "soon", "10 parsecs", "m10", "2026-13-01T00:00:00Z", "2026-01-01T25:00:00Z", "2026-01-01Tnoon"]
        {
            let e = since(bad, NOW).unwrap_err();
            assert!(e.contains("30s, 10m") || e.contains("empty"), "{bad}: {e}");
        }
        assert!(since("2999-01-01T00:00:00Z", NOW).unwrap_err().contains("future"));
    }

    #[test]
    fn days_round_trip_with_the_printer() {
        for days in [-1, 0, 59, 365, 11_016, 20_430, 100_000] {
            let (y, m, d) = crate::output::civil_from_days(days);
            assert_eq!(days_from_civil(y, i64::from(m), i64::from(d)), days);
        }
    }
}
