//! Unit tests of schedule parsing, slot arithmetic across daylight-saving changes, and the
//! catch-up rule.

use super::*;
use serde_json::json;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn schedule(cadence: Cadence, zone: &str) -> Schedule {
    Schedule {
        id: ScheduleId(7),
        name: "s".into(),
        task_type: TaskType::new("channel_scrape").unwrap(),
        params: json!({"channel": "UC1"}),
        priority: Priority::DEFAULT,
        cadence,
        time_zone: zone.into(),
        jitter: Duration::ZERO,
        paused: false,
        next_slot: ts("2026-01-01T06:00:00Z"),
        last_slot: None,
        last_task: None,
        created_at: ts("2026-01-01T00:00:00Z"),
    }
}

/// Every slot in `[from, to)` as the zone's civil date-times.
fn slots(cadence: &Cadence, zone: &str, from: &str, to: &str) -> Vec<String> {
    let tz = time_zone(zone).unwrap();
    let mut out = Vec::new();
    let mut t = cadence.next_after(&tz, ts(from)).unwrap();
    while t < ts(to) {
        out.push(t.to_zoned(tz.clone()).strftime("%F %T %Z").to_string());
        t = cadence.next_after(&tz, t).unwrap();
    }
    out
}

#[test]
fn every_parses_and_refuses_with_what_is_accepted() {
    assert_eq!(Cadence::every("6h").unwrap(), Cadence::EverySecs(21_600));
    assert_eq!(Cadence::every("1h30m").unwrap(), Cadence::EverySecs(5_400));
    assert_eq!(Cadence::every("1d").unwrap(), Cadence::EverySecs(86_400));
    assert_eq!(Cadence::every("1m").unwrap(), Cadence::EverySecs(60));
    for (text, needle) in [
        ("0s", "shorter than the minimum of 1 minute"),
        ("1ms", "shorter than the minimum of 1 minute"),
        ("59s", "shorter than the minimum of 1 minute"),
        ("367d", "longer than 366 days"),
        ("1m500ms", "not whole seconds"),
        ("six hours", "is not a duration"),
        ("6", "is not a duration"),
        ("", "is not a duration"),
        ("6w", "is not a duration"),
    ] {
        let e = Cadence::every(text).unwrap_err();
        assert_eq!(e.field, "every", "{text}");
        assert!(e.problem.contains(needle), "{text}: {e}");
        assert!(e.accepted.contains("1m to 366d"), "{text}: {e}");
    }
}

#[test]
fn cron_parses_five_fields_and_refuses_the_rest() {
    assert_eq!(
        Cadence::cron("0  */6 * * *").unwrap(),
        Cadence::Cron("0 */6 * * *".into())
    );
    for (text, needle) in [
        ("0 0 */6 * * * 2026", "has 7 fields"),
        ("0 0 */6 * * *", "has 6 fields"),
        ("* * * *", "has 4 fields"),
        ("*/0 * * * *", "step of 0"),
        ("0 */00 * * *", "step of 0"),
        ("61 * * * *", "not a valid expression"),
        ("0 0 * * MONDAYS", "not a valid expression"),
    ] {
        let e = Cadence::cron(text).unwrap_err();
        assert_eq!(e.field, "cron", "{text}");
        assert!(e.problem.contains(needle), "{text}: {e}");
        assert!(e.accepted.contains("exactly 5 fields"), "{text}: {e}");
    }
}

#[test]
fn zone_name_and_jitter_are_checked() {
    assert!(time_zone("Europe/Prague").is_ok());
    let e = time_zone("Mars/Olympus").unwrap_err();
    assert_eq!(e.field, "tz");
    assert!(e.accepted.contains("IANA"));
    for bad in ["", "-x", "has space", &"a".repeat(65)] {
        assert_eq!(check_name(bad).unwrap_err().field, "name", "{bad:?}");
    }
    check_name("channels-6h.v2_x").unwrap();
    let every = Cadence::every("10m").unwrap();
    check_jitter(Duration::from_secs(300), &every).unwrap();
    assert!(check_jitter(Duration::from_secs(600), &every)
        .unwrap_err()
        .problem
        .contains("not shorter than the interval"));
    assert!(check_jitter(
        Duration::from_secs(3_601),
        &Cadence::cron("0 * * * *").unwrap()
    )
    .unwrap_err()
    .problem
    .contains("over 1 hour"));
}

#[test]
fn new_schedule_validation_covers_every_field() {
    let tt = TaskType::new("channel_scrape").unwrap();
    let ok = NewSchedule::new("n", tt.clone(), json!({}), Cadence::every("6h").unwrap());
    ok.validate().unwrap();
    let mut bad_zone = ok.clone();
    bad_zone.time_zone = "Nowhere/Town".into();
    assert_eq!(bad_zone.validate().unwrap_err().field, "tz");
    let mut bad_params = ok.clone();
    bad_params.params = json!([1]);
    assert_eq!(bad_params.validate().unwrap_err().field, "params");
    let mut bad_every = ok.clone();
    bad_every.cadence = Cadence::EverySecs(0);
    assert_eq!(bad_every.validate().unwrap_err().field, "every");
    let mut bad_cron = ok;
    bad_cron.cadence = Cadence::Cron("*/0 * * * *".into());
    assert_eq!(bad_cron.validate().unwrap_err().field, "cron");
}

#[test]
fn durations_format_as_they_parse() {
    for s in ["6h", "1h30m", "1d", "0s", "1d1h1m1s"] {
        let d = parse_duration("x", s, "").unwrap();
        assert_eq!(format_duration(d), s);
    }
    assert_eq!(Cadence::every("90m").unwrap().to_string(), "every 1h30m");
    assert_eq!(
        "every 6h".parse::<Cadence>().unwrap(),
        Cadence::EverySecs(21_600)
    );
    assert_eq!(
        "cron 0 * * * *".parse::<Cadence>().unwrap(),
        Cadence::Cron("0 * * * *".into())
    );
}

#[test]
fn every_slots_are_multiples_of_the_interval_since_the_epoch() {
    let c = Cadence::every("6h").unwrap();
    let utc = TimeZone::UTC;
    assert_eq!(
        c.next_after(&utc, ts("2026-01-01T00:00:00Z")).unwrap(),
        ts("2026-01-01T06:00:00Z"),
        "strictly after"
    );
    assert_eq!(
        c.next_after(&utc, ts("2026-01-01T05:59:59.999Z")).unwrap(),
        ts("2026-01-01T06:00:00Z")
    );
    assert_eq!(
        c.latest_at_or_before(&utc, ts("2026-01-01T06:00:00Z"))
            .unwrap(),
        ts("2026-01-01T06:00:00Z"),
        "inclusive"
    );
    assert_eq!(
        c.latest_at_or_before(&utc, ts("2026-01-01T11:59:00Z"))
            .unwrap(),
        ts("2026-01-01T06:00:00Z")
    );
}

#[test]
fn cron_in_a_zone_reads_wall_clock_time() {
    let c = Cadence::cron("0 9 * * *").unwrap();
    let prague = time_zone("Europe/Prague").unwrap();
    // 09:00 in Prague is 08:00Z in winter.
    assert_eq!(
        c.next_after(&prague, ts("2026-01-01T00:00:00Z")).unwrap(),
        ts("2026-01-01T08:00:00Z")
    );
}

#[test]
fn los_angeles_spring_forward_runs_a_skipped_slot_once() {
    // 2026-03-08 02:00 PST jumps to 03:00 PDT: 02:30 does not exist that night.
    let got = slots(
        &Cadence::cron("30 2 * * *").unwrap(),
        "America/Los_Angeles",
        "2026-03-07T00:00:00Z",
        "2026-03-10T00:00:00Z",
    );
    assert_eq!(
        got,
        [
            "2026-03-07 02:30:00 PST",
            "2026-03-08 03:00:00 PDT",
            "2026-03-09 02:30:00 PDT",
        ]
    );
}

#[test]
fn los_angeles_fall_back_runs_a_repeated_slot_once() {
    // 2026-11-01 02:00 PDT falls back to 01:00 PST: 01:30 happens twice that night.
    let got = slots(
        &Cadence::cron("30 1 * * *").unwrap(),
        "America/Los_Angeles",
        "2026-10-31T12:00:00Z",
        "2026-11-03T00:00:00Z",
    );
    assert_eq!(got, ["2026-11-01 01:30:00 PDT", "2026-11-02 01:30:00 PST",]);
}

#[test]
fn prague_spring_forward_runs_a_skipped_slot_once() {
    // 2026-03-29 02:00 CET jumps to 03:00 CEST.
    let got = slots(
        &Cadence::cron("30 2 * * *").unwrap(),
        "Europe/Prague",
        "2026-03-28T00:00:00Z",
        "2026-03-31T00:00:00Z",
    );
    assert_eq!(
        got,
        [
            "2026-03-28 02:30:00 CET",
            "2026-03-29 03:00:00 CEST",
            "2026-03-30 02:30:00 CEST",
        ]
    );
}

#[test]
fn prague_fall_back_runs_a_repeated_slot_once() {
    // 2026-10-25 03:00 CEST falls back to 02:00 CET: 02:30 happens twice.
    let got = slots(
        &Cadence::cron("30 2 * * *").unwrap(),
        "Europe/Prague",
        "2026-10-24T00:00:00Z",
        "2026-10-27T00:00:00Z",
    );
    assert_eq!(
        got,
        [
            "2026-10-24 02:30:00 CEST",
            "2026-10-25 02:30:00 CEST",
            "2026-10-26 02:30:00 CET",
        ]
    );
}

#[test]
fn hourly_cron_across_fall_back_never_repeats_an_instant() {
    let got = slots(
        &Cadence::cron("0 * * * *").unwrap(),
        "Europe/Prague",
        "2026-10-24T22:30:00Z",
        "2026-10-25T03:30:00Z",
    );
    let tz = time_zone("Europe/Prague").unwrap();
    let mut seen = std::collections::HashSet::new();
    for s in &got {
        assert!(seen.insert(s.clone()), "{s} twice in {got:?}");
    }
    // Strictly increasing instants.
    let mut t = ts("2026-10-24T22:30:00Z");
    let c = Cadence::cron("0 * * * *").unwrap();
    for _ in 0..6 {
        let n = c.next_after(&tz, t).unwrap();
        assert!(n > t);
        t = n;
    }
}

#[test]
fn firing_in_the_repeated_hour_does_not_fire_the_slot_again() {
    // Fired for 01:30 PDT (08:30Z); the clock reaches 01:45 PST (09:45Z).
    let mut s = schedule(Cadence::cron("30 1 * * *").unwrap(), "America/Los_Angeles");
    s.next_slot = ts("2026-11-02T09:30:00Z");
    assert_eq!(s.firing(ts("2026-11-01T09:45:00Z")).unwrap(), None);
}

#[test]
fn due_schedule_fires_its_slot() {
    let s = schedule(Cadence::every("6h").unwrap(), "UTC");
    assert_eq!(
        s.firing(ts("2026-01-01T05:59:59Z")).unwrap(),
        None,
        "not yet"
    );
    assert_eq!(
        s.firing(ts("2026-01-01T06:00:00Z")).unwrap(),
        Some(Firing {
            slot: ts("2026-01-01T06:00:00Z"),
            next_slot: ts("2026-01-01T12:00:00Z"),
            caught_up: false,
        })
    );
}

#[test]
fn after_downtime_fires_once_for_the_latest_missed_slot() {
    let s = schedule(Cadence::every("6h").unwrap(), "UTC");
    // Down from before 06:00 until 2026-01-03T16:00: nine slots missed.
    let f = s.firing(ts("2026-01-03T16:00:00Z")).unwrap().unwrap();
    assert_eq!(f.slot, ts("2026-01-03T12:00:00Z"), "the latest missed slot");
    assert_eq!(
        f.next_slot,
        ts("2026-01-03T18:00:00Z"),
        "then the timetable"
    );
    assert!(f.caught_up);
    // Once advanced, nothing is due until the next slot.
    let mut after = s.clone();
    after.next_slot = f.next_slot;
    assert_eq!(after.firing(ts("2026-01-03T17:59:00Z")).unwrap(), None);
}

#[test]
fn cron_catch_up_fires_once_across_a_dst_change() {
    let mut s = schedule(Cadence::cron("30 2 * * *").unwrap(), "Europe/Prague");
    s.next_slot = ts("2026-03-27T01:30:00Z");
    let f = s.firing(ts("2026-03-29T12:00:00Z")).unwrap().unwrap();
    assert_eq!(
        f.slot,
        ts("2026-03-29T01:00:00Z"),
        "03:00 CEST, after the gap"
    );
    assert_eq!(f.next_slot, ts("2026-03-30T00:30:00Z"), "02:30 CEST");
    assert!(f.caught_up);
}

#[test]
fn paused_schedule_never_fires() {
    let mut s = schedule(Cadence::every("6h").unwrap(), "UTC");
    s.paused = true;
    assert_eq!(s.firing(ts("2026-02-01T00:00:00Z")).unwrap(), None);
}

#[test]
fn slot_tasks_carry_key_priority_and_jitter() {
    let mut s = schedule(Cadence::every("6h").unwrap(), "UTC");
    s.priority = Priority::new(8).unwrap();
    let slot = ts("2026-01-01T06:00:00Z");
    let t = s.task_for_slot(slot);
    assert_eq!(
        t.idempotency_key.as_deref(),
        Some("schedule:7:2026-01-01T06:00:00Z")
    );
    assert_eq!(t.priority.get(), 8);
    assert_eq!(t.run_after, Some(slot), "no jitter");
    s.jitter = Duration::from_secs(300);
    let offsets: Vec<Duration> = (0..50)
        .map(|i| {
            s.jitter_offset(
                slot.checked_add(jiff::SignedDuration::from_hours(6 * i))
                    .unwrap(),
            )
        })
        .collect();
    assert!(offsets.iter().all(|o| *o <= Duration::from_secs(300)));
    assert!(
        offsets.iter().any(|o| *o != offsets[0]),
        "offsets vary by slot"
    );
    assert_eq!(s.jitter_offset(slot), s.jitter_offset(slot), "stable");
    let t = s.task_for_slot(slot);
    assert_eq!(
        t.run_after.unwrap().duration_since(slot).as_secs() as u64,
        s.jitter_offset(slot).as_secs()
    );
    let r = s.task_for_run_now(ts("2026-01-01T07:00:00Z"));
    assert_eq!(
        r.idempotency_key.as_deref(),
        Some("schedule:7:run-now:2026-01-01T07:00:00Z")
    );
}
