//! Calendars and policies as people write them: JSON in, errors that name the field.

use anchor_sla::{BusinessCalendar, Calendar, Holiday, SlaPolicy, Target, Week, Window};
use time::macros::date;

use crate::support::{calendar, german_holidays, nine_to_five};

fn fields(errors: &anchor_sla::ValidationErrors) -> Vec<&str> {
    errors.errors().iter().map(|e| e.field.as_str()).collect()
}

#[test]
fn a_calendar_reads_from_json_and_writes_back_the_same() {
    let text = r#"{
        "version": 3,
        "time_zone": "Europe/Berlin",
        "week": {
            "monday": [{"start": "08:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}],
            "friday": [{"start": "08:00", "end": "24:00"}]
        },
        "holidays": [
            {"kind": "date", "date": "2026-05-25", "name": "Whit Monday"},
            {"kind": "range", "from": "2026-12-21", "to": "2027-01-03", "name": "Winter closure"},
            {"kind": "yearly", "month": 12, "day": 24}
        ]
    }"#;
    let cal = Calendar::from_json(text).unwrap();
    assert_eq!(cal.version, 3);
    assert_eq!(cal.week.monday, vec![Window::hm("08:00", "12:00"), Window::hm("13:00", "17:00")]);
    assert_eq!(cal.week.friday[0].end.to_string(), "24:00");
    assert!(cal.week.sunday.is_empty());
    assert_eq!(
        cal.holidays[1],
        Holiday::Range {
            from: date!(2026 - 12 - 21),
            to: date!(2027 - 01 - 03),
            name: Some("Winter closure".to_owned())
        }
    );
    let again = Calendar::from_json(&serde_json::to_string(&cal).unwrap()).unwrap();
    assert_eq!(again, cal);
    let json = serde_json::to_value(&cal).unwrap();
    assert_eq!(json["holidays"][0]["date"], "2026-05-25");
    assert_eq!(json["week"]["monday"][1]["start"], "13:00");
    assert!(json["week"].get("sunday").is_none(), "closed days are left out");
}

#[test]
fn a_malformed_time_names_its_field() {
    let text = r#"{"version": 1, "time_zone": "Europe/Berlin",
        "week": {"monday": [{"start": "09:00", "end": "17:00"}], "tuesday": [{"start": "25:00", "end": "26:00"}]}}"#;
    let err = Calendar::from_json(text).unwrap_err();
    assert_eq!(fields(&err), vec!["week.tuesday[0].start"]);
    assert!(err.to_string().contains("\"25:00\" is not a time of day; write HH:MM from 00:00 to 24:00"), "{err}");
    for bad in ["9:00", "09:60", "24:01", "09.00", "0900", " 09:00"] {
        assert!(bad.parse::<anchor_sla::WallTime>().is_err(), "{bad:?}");
    }
}

#[test]
fn a_malformed_date_or_unknown_field_names_its_field() {
    let text = r#"{"version": 1, "time_zone": "Europe/Berlin", "week": {"monday": [{"start": "09:00", "end": "17:00"}]},
        "holidays": [{"kind": "date", "date": "2026-02-30"}]}"#;
    let err = Calendar::from_json(text).unwrap_err();
    // A tagged holiday is read whole, so the path ends at the holiday.
    assert_eq!(fields(&err), vec!["holidays[0]"]);
    assert!(err.to_string().contains("is not a date; write YYYY-MM-DD"), "{err}");

    let week = r#""week": {"monday": [{"start": "09:00", "end": "17:00"}]}"#;
    let text = format!(r#"{{"version": 1, "time_zone": "UTC", {week}, "holidays": [{{"kind": "weekly", "day": 3}}]}}"#);
    let err = Calendar::from_json(&text).unwrap_err();
    assert_eq!(fields(&err), vec!["holidays[0].kind"]);
    assert!(err.to_string().contains("unknown variant `weekly`"), "{err}");
    let text = format!(
        r#"{{"version": 1, "time_zone": "UTC", {week}, "holidays": [{{"kind": "date", "date": "2026-01-01", "nme": "x"}}]}}"#
    );
    let err = Calendar::from_json(&text).unwrap_err();
    assert!(err.to_string().contains("unknown field `nme`"), "{err}");

    let text = r#"{"version": 1, "time_zone": "Europe/Berlin", "week": {"mondey": []}}"#;
    let err = Calendar::from_json(text).unwrap_err();
    assert_eq!(fields(&err), vec!["week.mondey"]);
    assert!(err.to_string().contains("unknown field `mondey`"), "{err}");
}

#[test]
fn every_problem_is_reported_at_once_naming_its_field() {
    let mut week = Week::default();
    week.set(
        time::Weekday::Monday,
        vec![Window::hm("09:00", "12:30"), Window::hm("12:00", "13:00"), Window::hm("17:00", "09:00")],
    );
    week.set(time::Weekday::Tuesday, vec![Window::hm("10:00", "10:00")]);
    let cal = Calendar {
        version: 0,
        time_zone: "Europe/Berlln".to_owned(),
        week,
        holidays: vec![
            Holiday::date(date!(2026 - 05 - 25)),
            Holiday::range(date!(2027 - 01 - 03), date!(2026 - 12 - 21)),
            Holiday::yearly(2, 30),
            Holiday::yearly(13, 1),
        ],
    };
    let err = cal.validate().unwrap_err();
    assert_eq!(
        fields(&err),
        vec![
            "version",
            "time_zone",
            "week.monday[2]",
            "week.monday[1]",
            "week.tuesday[0]",
            "holidays[1]",
            "holidays[2]",
            "holidays[3]",
        ]
    );
    let message = |field| err.for_field(field).unwrap().message.clone();
    assert_eq!(message("time_zone"), "\"Europe/Berlln\" is not an IANA time zone name such as Europe/Berlin");
    assert!(message("week.monday[2]").contains("ends before it starts; an overnight window"));
    assert_eq!(
        message("week.monday[1]"),
        "12:00-13:00 overlaps 09:00-12:30 (week.monday[0]); windows of one day must not overlap"
    );
    assert!(message("week.tuesday[0]").contains("is empty"));
    assert_eq!(message("holidays[1]"), "the range ends (2026-12-21) before it starts (2027-01-03)");
    assert!(message("holidays[2]").contains("month 2, day 30 is not a day of the year"));
    assert!(BusinessCalendar::new(&cal).is_err());
}

#[test]
fn a_calendar_with_no_working_time_is_refused() {
    let closed = calendar("Europe/Berlin", Week::default(), vec![]);
    let err = closed.validate().unwrap_err();
    assert_eq!(fields(&err), vec!["week"]);
    assert!(err.to_string().contains("has no opening hours on any day"), "{err}");
}

#[test]
fn touching_windows_are_fine_and_29_february_is_a_day_of_the_year() {
    let week = Week::monday_to_friday(&[Window::hm("08:00", "12:00"), Window::hm("12:00", "24:00")]);
    let cal = calendar("Asia/Kolkata", week, vec![Holiday::yearly(2, 29)]);
    cal.validate().unwrap();
    let mut with_fixture = calendar("Europe/Berlin", nine_to_five(), german_holidays());
    with_fixture.holidays.push(Holiday::Yearly { month: 12, day: 31, name: Some("New Year's Eve".to_owned()) });
    BusinessCalendar::new(&with_fixture).unwrap();
}

#[test]
fn a_policy_reads_from_json_with_defaults() {
    let text = r#"{
        "version": 2,
        "targets": {
            "urgent": {"first_response_minutes": 30, "next_update_minutes": 120, "resolution_minutes": 480},
            "low": {"resolution_minutes": 4800}
        },
        "pausing_statuses": ["waiting_on_client"]
    }"#;
    let policy = SlaPolicy::from_json(text).unwrap();
    assert_eq!(policy.warning_percent, 80);
    assert_eq!(policy.on_reopen, anchor_sla::ReopenRule::Resume);
    assert_eq!(policy.target("urgent", Target::FirstResponse), Some(time::Duration::minutes(30)));
    assert_eq!(policy.target("low", Target::FirstResponse), None);
    assert_eq!(policy.target("unheard-of", Target::Resolution), None);
    assert!(policy.pauses_on("waiting_on_client"));
    assert!(!policy.pauses_on("open"));
}

#[test]
fn a_policy_names_its_bad_fields() {
    let text = r#"{"version": 1, "targets": {"high": {"resolution_minutes": 99999999}},
        "warning_percent": 120, "pausing_statuses": [" "]}"#;
    let err = SlaPolicy::from_json(text).unwrap_err();
    assert_eq!(fields(&err), vec!["targets.high.resolution_minutes", "warning_percent", "pausing_statuses"]);
    let err = SlaPolicy::from_json(r#"{"version": 1, "targets": {}}"#).unwrap_err();
    assert_eq!(fields(&err), vec!["targets"]);
    let err = SlaPolicy::from_json(r#"{"version": 1, "targets": {"high": {"resolution_minutes": -5}}}"#).unwrap_err();
    assert_eq!(fields(&err), vec!["targets.high.resolution_minutes"]);
    let err = SlaPolicy::from_json(r#"{"version": 1, "targets": {"high": {"resolution_minute": 5}}}"#).unwrap_err();
    assert_eq!(fields(&err), vec!["targets.high.resolution_minute"]);
}
