//! A schedule's 5-field cron pattern (`minute hour day-of-month month
//! day-of-week`, Vixie rules: when both day fields are restricted either
//! may match), read in an IANA time zone. Parsing and matching are
//! croner's; what is ours is the error a person gets — it names the
//! field that is wrong, which croner's messages do not — and the
//! refusal of `@daily`-style nicknames and of seconds or year fields.
//!
//! Daylight saving time follows croner: a wall-clock time that a
//! spring-forward gap skips runs right after the gap, and one that a
//! fall-back overlap repeats runs once, at its first pass.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

/// The names of the five fields, in order.
pub(crate) const FIELDS: [&str; 5] = ["minute", "hour", "day-of-month", "month", "day-of-week"];

/// How many occurrences [`Pattern::count_between`] counts at most: a
/// schedule down for years must not make a tick walk forever.
pub(crate) const COUNT_CAP: u32 = 1000;

/// A checked cron pattern and the time zone it is read in.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    cron: Cron,
    tz: Tz,
}

fn parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
}

/// The time zone of an IANA name (`UTC`, `Europe/Paris`), or a message
/// that says what is wrong.
fn parse_timezone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|_| {
        format!("timezone {name:?} is not an IANA time zone name; give one such as UTC, Europe/Paris or America/New_York")
    })
}

/// Reads `pattern`: exactly five whitespace-separated fields, each valid
/// for its position; the message of a refusal names the field (or says
/// that five are needed).
/// The longest pattern taken: five fields of lists and ranges fit in far
/// less, and each tick parses it again inside the write lock.
const PATTERN_MAX: usize = 128;

fn parse_cron(pattern: &str) -> Result<Cron, String> {
    let p = pattern.trim();
    if p.len() > PATTERN_MAX {
        return Err(format!(
            "cron_schedule is {} bytes; give at most {PATTERN_MAX} (5 fields: minute hour day-of-month month day-of-week)",
            p.len()
        ));
    }
    if p.starts_with('@') || p.contains('@') {
        return Err(format!(
            "cron_schedule {pattern:?}: nicknames such as @daily are not supported; give 5 fields: minute hour day-of-month month day-of-week"
        ));
    }
    let fields: Vec<&str> = p.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "cron_schedule {pattern:?} has {} field(s); give 5: minute hour day-of-month month day-of-week",
            fields.len()
        ));
    }
    // Vixie cron: digits, `*`, `,`, `-`, `/` and month and day names;
    // the extensions some parsers take (`L`, `W`, `#`, `?`) are refused,
    // named with their field.
    for (i, f) in fields.iter().enumerate() {
        if let Some(c) = f.chars().find(|c| matches!(c, '#' | '?')) {
            return Err(format!(
                "cron_schedule field {} ({}) {f:?} uses {c:?}, which is not 5-field cron; use digits, '*', ',', '-' and '/'",
                i + 1,
                FIELDS[i]
            ));
        }
        let letters = f.chars().filter(char::is_ascii_alphabetic).count();
        let named = (i == 3 || i == 4)
            && letters > 0
            && f.split([',', '-', '/']).all(|part| {
                part.chars().all(|c| c.is_ascii_digit() || c == '*') || part.len() == 3
            });
        if letters > 0 && !named {
            return Err(format!(
                "cron_schedule field {} ({}) {f:?} is not valid: only month (jan–dec) and day-of-week (sun–sat) take names; `L` and `W` are not 5-field cron",
                i + 1,
                FIELDS[i]
            ));
        }
    }
    let whole = fields.join(" ");
    let err = match parser().parse(&whole) {
        Ok(c) => return Ok(c),
        Err(e) => e,
    };
    // Which field: each alone, the others '*'. The first that fails is it.
    for (i, f) in fields.iter().enumerate() {
        let mut one = ["*"; 5];
        one[i] = f;
        if let Err(e) = parser().parse(&one.join(" ")) {
            return Err(format!(
                "cron_schedule field {} ({}) {f:?} is not valid: {e}",
                i + 1,
                FIELDS[i]
            ));
        }
    }
    Err(format!("cron_schedule {pattern:?} is not valid: {err}"))
}

fn utc(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

impl Pattern {
    /// Checks `cron` and `timezone`; the message of a refusal names what
    /// is wrong. A pattern that matches no time at all (`0 0 30 2 *`) is
    /// refused too: it would never run.
    pub(crate) fn parse(cron: &str, timezone: &str) -> Result<Pattern, String> {
        let tz = parse_timezone(timezone)?;
        let cron = parse_cron(cron)?;
        let p = Pattern { cron, tz };
        if p.next_after(Utc::now().timestamp_millis()).is_none() {
            return Err(format!(
                "cron_schedule {:?} matches no date: check day-of-month against month",
                p.cron.as_str()
            ));
        }
        Ok(p)
    }

    /// The first occurrence strictly after `ms` (milliseconds since the
    /// epoch, UTC), if there is one.
    pub(crate) fn next_after(&self, ms: i64) -> Option<i64> {
        let at = utc(ms).with_timezone(&self.tz);
        self.cron
            .find_next_occurrence(&at, false)
            .ok()
            .map(|t| t.timestamp_millis())
    }

    /// The last occurrence at or before `ms`, if there is one.
    pub(crate) fn latest_at_or_before(&self, ms: i64) -> Option<i64> {
        let at = utc(ms).with_timezone(&self.tz);
        self.cron
            .find_previous_occurrence(&at, true)
            .ok()
            .map(|t| t.timestamp_millis())
    }

    /// How many occurrences fall in `[from, to)`, counted up to
    /// [`COUNT_CAP`].
    pub(crate) fn count_between(&self, from: i64, to: i64) -> u32 {
        let mut n = 0;
        // `from` itself counts when it is an occurrence.
        let mut t = self.next_after(from - 1);
        while let Some(at) = t {
            if at >= to || n >= COUNT_CAP {
                break;
            }
            n += 1;
            t = self.next_after(at);
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(rfc3339: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_millis()
    }

    fn at(ms: i64) -> String {
        utc(ms).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    #[test]
    fn a_bad_field_is_named() {
        for (bad, field) in [
            ("61 * * * *", "(minute)"),
            ("* 24 * * *", "(hour)"),
            ("* * 0 * *", "(day-of-month)"),
            ("* * 32 * *", "(day-of-month)"),
            ("* * * 13 *", "(month)"),
            ("* * * * 8", "(day-of-week)"),
            ("*/0 * * * *", "(minute)"),
            ("0 9 * * mon-frx", "(day-of-week)"),
            ("0 x * * *", "(hour)"),
            ("0 0 L * *", "(day-of-month)"),
            ("0 0 15W * *", "(day-of-month)"),
            ("0 0 * * 5#3", "(day-of-week)"),
            ("0 0 ? * *", "(day-of-month)"),
            ("0 0 * * 0L", "(day-of-week)"),
        ] {
            let e = Pattern::parse(bad, "UTC").unwrap_err();
            assert!(e.contains(field), "{bad}: {e}");
            assert!(e.starts_with("cron_schedule field"), "{bad}: {e}");
        }
    }

    #[test]
    fn names_work_where_cron_has_them_and_long_patterns_are_refused() {
        for ok in ["0 9 * * mon-fri", "0 9 1 jan,jul *", "*/15 0-6 * * sun"] {
            assert!(Pattern::parse(ok, "UTC").is_ok(), "{ok}");
        }
        let long = format!("{} * * * *", vec!["1"; 80].join(","));
        let e = Pattern::parse(&long, "UTC").unwrap_err();
        assert!(e.contains("at most 128"), "{e}");
    }

    #[test]
    fn five_fields_and_no_nicknames() {
        for bad in [
            "* * * *",
            "* * * * * *",
            "0 0 9 * * * 2030",
            "",
            "   ",
            "@daily",
            "@every 5m",
        ] {
            let e = Pattern::parse(bad, "UTC").unwrap_err();
            assert!(e.contains("give 5"), "{bad:?}: {e}");
        }
        let e = Pattern::parse("0 0 30 2 *", "UTC").unwrap_err();
        assert!(e.contains("matches no date"), "{e}");
        for good in [
            "* * * * *",
            "*/5 * * * *",
            "0 9 * * 1-5",
            "0 6 * * *",
            "0 0 1 1 *",
            "15,45 8-18/2 1,15 jan-jun sun",
            "0 0 * * 7",
        ] {
            Pattern::parse(good, "UTC").unwrap_or_else(|e| panic!("{good}: {e}"));
        }
    }

    #[test]
    fn a_timezone_must_be_an_iana_name() {
        for bad in ["Mars/Olympus", "", "CEST", "utc+2"] {
            let e = Pattern::parse("* * * * *", bad).unwrap_err();
            assert!(e.contains("timezone"), "{bad}: {e}");
        }
        Pattern::parse("* * * * *", "Europe/Paris").unwrap();
        Pattern::parse("* * * * *", "UTC").unwrap();
    }

    #[test]
    fn the_next_occurrence_is_in_the_schedules_time_zone_across_a_dst_change() {
        let p = Pattern::parse("0 9 * * *", "Europe/Paris").unwrap();
        // Winter (CET, UTC+1): 09:00 is 08:00Z.
        let n = p.next_after(ms("2026-03-28T00:00:00Z")).unwrap();
        assert_eq!(at(n), "2026-03-28T08:00:00Z");
        // Clocks go forward on 29 March 2026 at 02:00: 09:00 is now 07:00Z.
        let n = p.next_after(n).unwrap();
        assert_eq!(at(n), "2026-03-29T07:00:00Z");
        // In UTC nothing moves.
        let u = Pattern::parse("0 9 * * *", "UTC").unwrap();
        assert_eq!(
            at(u.next_after(ms("2026-03-29T00:00:00Z")).unwrap()),
            "2026-03-29T09:00:00Z"
        );
        // A time the gap skips (02:30 on 29 March) runs once that day, right
        // after the gap (03:00 CEST = 01:00Z), and at 02:30 CEST the next.
        let g = Pattern::parse("30 2 * * *", "Europe/Paris").unwrap();
        let a = g.next_after(ms("2026-03-28T12:00:00Z")).unwrap();
        assert_eq!(at(a), "2026-03-29T01:00:00Z");
        let b = g.next_after(a).unwrap();
        assert_eq!(at(b), "2026-03-30T00:30:00Z");
        // A time the overlap repeats (02:30 on 25 October) runs once.
        let a = g.next_after(ms("2026-10-24T12:00:00Z")).unwrap();
        assert_eq!(at(a), "2026-10-25T00:30:00Z");
        let b = g.next_after(a).unwrap();
        assert_eq!(at(b), "2026-10-26T01:30:00Z");
        // The latest at or before an occurrence is itself.
        assert_eq!(g.latest_at_or_before(b), Some(b));
        assert_eq!(g.latest_at_or_before(b - 1), Some(a));
    }

    #[test]
    fn occurrences_between_two_times_are_counted_up_to_the_cap() {
        let p = Pattern::parse("* * * * *", "UTC").unwrap();
        let t = ms("2026-01-01T10:11:00Z");
        // [10:11, 10:15): 11, 12, 13, 14.
        assert_eq!(p.count_between(t, t + 4 * 60_000), 4);
        assert_eq!(p.count_between(t + 1, t + 4 * 60_000), 3);
        assert_eq!(p.count_between(t, t), 0);
        assert_eq!(p.count_between(t, t + 100_000 * 60_000), COUNT_CAP);
    }
}
