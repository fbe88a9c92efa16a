//! How results look: aligned tables, times and durations for people.

use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Rows under a header, each column as wide as its widest cell, two
/// spaces apart; no trailing spaces.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            line.push_str(&format!("{cell:<width$}  "));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `yes`, `no`, or `-` where the node does not say.
pub fn yes_no(value: Option<bool>) -> String {
    match value {
        Some(true) => "yes",
        Some(false) => "no",
        None => "-",
    }
    .to_owned()
}

/// `-` for nothing.
pub fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
}

/// RFC 3339 in UTC, to the millisecond: `2026-12-07T17:50:01.123Z`.
pub fn rfc3339(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    let millis = at.replace_nanosecond(at.millisecond() as u32 * 1_000_000);
    millis
        .unwrap_or(at)
        .format(&Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// An RFC 3339 time as electd writes it; `None` when it is not one.
pub fn parse_rfc3339(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

/// A duration for people, to the second: `42s`, `3m 12s`, `2h 5m`, `4d 3h`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, minutes, seconds) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {minutes}m")
    } else if minutes > 0 {
        format!("{minutes}m {seconds}s")
    } else {
        format!("{seconds}s")
    }
}

/// A duration in milliseconds, for "how long it took": `12.3 ms`, `1.25 s`.
pub fn took(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_end_clean() {
        let text = table(
            &["ID", "ROLE"],
            &[
                vec!["web-10".into(), "leader".into()],
                vec!["w".into(), "-".into()],
            ],
        );
        assert_eq!(text, "ID      ROLE\nweb-10  leader\nw       -\n");
    }

    #[test]
    fn durations_for_people() {
        assert_eq!(duration(Duration::from_secs(42)), "42s");
        assert_eq!(duration(Duration::from_secs(192)), "3m 12s");
        assert_eq!(duration(Duration::from_secs(7500)), "2h 5m");
        assert_eq!(
            duration(Duration::from_secs(4 * 86_400 + 3 * 3600)),
            "4d 3h"
        );
        assert_eq!(took(Duration::from_micros(12_340)), "12.3 ms");
        assert_eq!(took(Duration::from_millis(1250)), "1.25 s");
    }

    #[test]
    fn times_round_trip() {
        let at = parse_rfc3339("2026-12-07T17:50:01.123456+01:00").unwrap();
        assert_eq!(rfc3339(at), "2026-12-07T16:50:01.123Z");
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
