//! The benchmark report as JSON: enough about the adapter, the build and
//! the date that reports from different machines can be compared (`compare`)
//! and traced back to the code that produced them.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::Measurement;
use crate::gpu::{adapter, Gpu};

/// Version of the report's layout; `compare` reads this one.
pub const SCHEMA: u64 = 1;
/// `git rev-parse --short HEAD` at build time, or "unknown" (see build.rs).
pub const GIT_REVISION: &str = env!("GDL_GPU_GIT_REVISION");
/// This crate's version (Cargo.toml).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`, exact for all i64 days
/// that fit a year in i64).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `t` as RFC 3339 in UTC to the second: "2024-03-01T12:34:56Z". Times
/// before 1970 (a broken clock) are shown as they are, not refused.
pub fn rfc3339_utc(t: SystemTime) -> String {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs_f64().ceil() as i64),
    };
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, mo, d) = civil_from_days(days);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The adapter's identity and what gdl-gpu uses of it: the features it
/// enabled (after `GDL_GPU_DISABLE`) and the limits its kernels depend on.
pub fn adapter_json(gpu: &Gpu) -> Value {
    let i = &gpu.info;
    let limits: Map<String, Value> = adapter::key_limits(&gpu.limits)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), json!(v)))
        .collect();
    json!({
        "name": i.name,
        "vendor": i.vendor,
        "vendor_hex": format!("{:#06x}", i.vendor),
        "device": i.device,
        "device_hex": format!("{:#06x}", i.device),
        "device_type": format!("{:?}", i.device_type),
        "backend": format!("{:?}", i.backend),
        "driver": i.driver,
        "driver_info": i.driver_info,
        "features_used": {
            "subgroups": gpu.caps.subgroups,
            "subgroup_min_size": gpu.caps.subgroups.then_some(i.subgroup_min_size),
            "subgroup_max_size": gpu.caps.subgroups.then_some(i.subgroup_max_size),
            "timestamp_query": gpu.caps.timestamps,
        },
        "limits": limits,
    })
}

/// The whole report of one `gdl-gpu bench` run, dated now.
pub fn report_json(gpu: &Gpu, rows: &[Measurement], quick: bool) -> Value {
    json!({
        "schema": SCHEMA,
        "gdl_gpu": { "version": VERSION, "git_revision": GIT_REVISION },
        "date": rfc3339_utc(SystemTime::now()),
        "quick": quick,
        "adapter": adapter_json(gpu),
        "results": rows.iter().map(|r| {
            let (rate, unit) = r.rate();
            json!({
                "kernel": r.kernel,
                "shape": r.shape,
                "median_seconds": r.seconds,
                "rate": rate,
                "unit": unit,
                "higher_is_better": r.higher_is_better(),
                "clock": r.clock.name(),
            })
        }).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> String {
        rfc3339_utc(UNIX_EPOCH + Duration::from_secs(secs))
    }

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        // A leap day, a century leap year, the day after.
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(951_868_799), "2000-02-29T23:59:59Z");
        assert_eq!(at(951_868_800), "2000-03-01T00:00:00Z");
        assert_eq!(at(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(at(4_107_542_400), "2100-03-01T00:00:00Z"); // 2100 is no leap year
        assert_eq!(at(1_735_689_599), "2024-12-31T23:59:59Z");
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH - Duration::from_secs(1)),
            "1969-12-31T23:59:59Z"
        );
    }

    #[test]
    fn civil_from_days_round_trips_every_day_of_four_centuries() {
        // Count forward day by day from 1900-01-01 (day -25567) and check
        // the calendar by hand-rolled month lengths.
        let (mut y, mut m, mut d) = (1900i64, 1u32, 1u32);
        for days in -25_567..(-25_567 + 146_097) {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let len = match m {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            d += 1;
            if d > len {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }
}
