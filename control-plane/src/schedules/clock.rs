//! The clock schedules are counted by. In production it is the real
//! clock; a test that must watch eight cron minutes pass gives every
//! control-plane process the same `CONTROL_PLANE_TEST_CLOCK` and gets a
//! clock that runs `scale` times faster from a common origin, so that
//! processes started at different moments still agree on "now" (and so on
//! which cron occurrence is due). Leases and session times never use it.

/// Now for schedules: `origin + (real_now − origin) × scale` (ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleClock {
    origin_ms: i64,
    scale: i64,
}

impl Default for ScheduleClock {
    fn default() -> Self {
        ScheduleClock::real()
    }
}

impl ScheduleClock {
    /// The real clock.
    pub fn real() -> ScheduleClock {
        ScheduleClock {
            origin_ms: 0,
            scale: 1,
        }
    }

    /// A test clock from `<origin_ms>:<scale>` (the value of
    /// `CONTROL_PLANE_TEST_CLOCK`): `scale` is a whole number from 1 to
    /// 3600, the origin a time in milliseconds since the epoch.
    pub fn parse(spec: &str) -> Result<ScheduleClock, String> {
        let bad = || {
            format!("CONTROL_PLANE_TEST_CLOCK {spec:?} is not <origin_ms>:<scale>, e.g. 1767225600000:60 (scale 1 to 3600)")
        };
        let (origin, scale) = spec.trim().split_once(':').ok_or_else(bad)?;
        let origin_ms: i64 = origin.parse().map_err(|_| bad())?;
        let scale: i64 = scale.parse().map_err(|_| bad())?;
        if !(1..=3600).contains(&scale) || origin_ms < 0 {
            return Err(bad());
        }
        Ok(ScheduleClock { origin_ms, scale })
    }

    /// Whether this clock is the real one.
    pub fn is_real(&self) -> bool {
        self.scale == 1
    }

    /// What this clock reads when the real clock reads `real_ms`.
    pub fn at(&self, real_ms: i64) -> i64 {
        self.origin_ms + (real_ms - self.origin_ms) * self.scale
    }

    /// Now, in milliseconds since the epoch.
    pub fn now_ms(&self) -> i64 {
        self.at(chrono::Utc::now().timestamp_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_clock_runs_scale_times_faster_from_its_origin() {
        let c = ScheduleClock::parse("1000000:60").unwrap();
        assert_eq!(c.at(1_000_000), 1_000_000);
        assert_eq!(c.at(1_001_000), 1_060_000, "one real second is a minute");
        assert!(!c.is_real());
        let r = ScheduleClock::real();
        assert!(r.is_real());
        assert_eq!(r.at(123_456), 123_456);
        for bad in ["", "60", "x:60", "1000:0", "1000:3601", "-5:2", "1000:1.5"] {
            let e = ScheduleClock::parse(bad).unwrap_err();
            assert!(e.contains("<origin_ms>:<scale>"), "{bad}: {e}");
        }
    }
}
