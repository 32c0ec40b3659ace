//! The CMDB's vocabulary (psa.md "Asset"): an asset's lifecycle, the typed
//! relationships between assets and which way trouble flows along each, and
//! the field schema of an asset type with the check of an asset's
//! attributes against it.
//!
//! ```text
//! planned -> active <-> in_repair
//!    |         |            |
//!    '---------+------------'--> retired -> disposed
//! ```

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{
    Name,
    vocabulary::{Text, TextError},
};

crate::names!(
    /// Where an asset is in its life.
    pub enum AssetStatus {
        /// Bought or ordered, not yet in service.
        Planned = "planned",
        /// In service.
        Active = "active",
        /// Out of service for a while, coming back.
        InRepair = "in_repair",
        /// Out of service for good; kept for history (tickets, invoices).
        Retired = "retired",
        /// Gone (sold, recycled, destroyed); the record stays.
        Disposed = "disposed",
    }
);

/// A move the lifecycle does not allow, with the moves it does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {from} asset cannot become {to}; from {from} it can become: {allowed}")]
pub struct AssetTransitionError {
    pub from: AssetStatus,
    pub to: AssetStatus,
    pub allowed: String,
}

impl AssetStatus {
    /// The statuses an asset in this one may move to.
    pub fn next(self) -> &'static [AssetStatus] {
        use AssetStatus as S;
        match self {
            S::Planned => &[S::Active, S::Retired],
            S::Active => &[S::InRepair, S::Retired],
            S::InRepair => &[S::Active, S::Retired],
            S::Retired => &[S::Disposed],
            S::Disposed => &[],
        }
    }

    /// Retired and disposed assets are history: nothing about them changes
    /// any more but their way to disposal.
    pub fn is_history(self) -> bool {
        matches!(self, Self::Retired | Self::Disposed)
    }

    /// Checks a move; the error lists the moves that are allowed.
    pub fn transition(self, to: AssetStatus) -> Result<AssetStatus, AssetTransitionError> {
        if self.next().contains(&to) {
            Ok(to)
        } else {
            let allowed = self.next().iter().map(|s| s.as_str()).collect::<Vec<_>>();
            let allowed = if allowed.is_empty() { "nothing".to_owned() } else { allowed.join(", ") };
            Err(AssetTransitionError { from: self, to, allowed })
        }
    }
}

crate::names!(
    /// How one asset relates to another: `asset <kind> target`, read as a
    /// sentence ("vm-01 runs_on host-02").
    pub enum RelationshipKind {
        /// A virtual machine on its host, a service on its server.
        RunsOn = "runs_on",
        /// Needs the target to work (an application and its database).
        DependsOn = "depends_on",
        /// Reaches the network through the target (a workstation and its switch).
        ConnectedTo = "connected_to",
        /// Keeps the target's backups (a NAS and the server it protects).
        BacksUp = "backs_up",
        /// Software on the machine it is installed on.
        InstalledOn = "installed_on",
    }
);

impl RelationshipKind {
    /// Whether the target is hurt when the asset fails, rather than the
    /// other way round. When a host dies its virtual machines stop (trouble
    /// flows from target to asset); when a backup system dies, the server it
    /// protected loses its backups (from asset to target).
    pub fn failure_flows_to_target(self) -> bool {
        matches!(self, Self::BacksUp)
    }
}

/// A key in a schema: an asset type's key or a field's, `^[a-z][a-z0-9_]{0,39}$`
/// (`network_device`, `memory_gb`), so that one is never spelled two ways.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SchemaKey(String);

impl SchemaKey {
    pub const PATTERN: &'static str = "^[a-z][a-z0-9_]{0,39}$";

    pub fn parse(raw: &str) -> Result<Self, TextError> {
        let ok = (1..=40).contains(&raw.len())
            && raw.starts_with(|c: char| c.is_ascii_lowercase())
            && raw.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            let shown: String = raw.chars().take(60).collect();
            Err(TextError {
                what: "a key",
                reason: format!("{shown:?} is not a key: 1-40 lower case letters, digits or _, starting with a letter"),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SchemaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for SchemaKey {
    type Err = TextError;
    fn from_str(s: &str) -> Result<Self, TextError> {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for SchemaKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <Cow<'de, str>>::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl Text for SchemaKey {
    fn text(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.0)
    }
    fn from_text(text: &str) -> Result<Self, String> {
        Self::parse(text).map_err(|e| e.to_string())
    }
}

crate::inline_schema!(SchemaKey, {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,39}$", "examples": ["server"]});

impl utoipa::PartialSchema for SchemaKey {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::vocabulary::openapi_string(None, Some(Self::PATTERN))
    }
}

impl utoipa::ToSchema for SchemaKey {}

crate::stored_as_text!(SchemaKey);

/// A calendar day, `YYYY-MM-DD` (a purchase date, the end of a warranty).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(jiff::civil::Date);

impl Day {
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        let bad = || TextError {
            what: "a date",
            reason: format!("{:?} is not a date as YYYY-MM-DD", raw.chars().take(40).collect::<String>()),
        };
        // The strict form only: no times, no week dates, no signs.
        let strict = raw.len() == 10
            && raw.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
        if !strict {
            return Err(bad());
        }
        // Years 1 to 9999: what PostgreSQL's `date` and this form both hold.
        raw.parse::<jiff::civil::Date>().ok().filter(|d| d.year() >= 1).map(Self).ok_or_else(bad)
    }

    pub fn date(self) -> jiff::civil::Date {
        self.0
    }
}

impl std::fmt::Display for Day {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Day {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <Cow<'de, str>>::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl Text for Day {
    fn text(&self) -> Cow<'_, str> {
        Cow::Owned(self.to_string())
    }
    fn from_text(text: &str) -> Result<Self, String> {
        Self::parse(text).map_err(|e| e.to_string())
    }
}

crate::inline_schema!(Day, {"type": "string", "format": "date", "examples": ["2025-03-31"]});

impl utoipa::PartialSchema for Day {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::KnownFormat(KnownFormat::Date))).into()
    }
}

impl utoipa::ToSchema for Day {}

crate::stored_as_text!(Day);

crate::text_type!(
    /// A manufacturer's serial number or service tag.
    Serial,
    "a serial number",
    100,
    false
);

crate::names!(
    /// What an attribute of an asset type holds.
    pub enum FieldKind {
        /// One line of text, up to 500 characters.
        Text = "text",
        /// A number (memory in GB, a price).
        Number = "number",
        /// A whole number (ports, seats).
        Integer = "integer",
        Boolean = "boolean",
        /// A day, `YYYY-MM-DD`.
        Date = "date",
        /// One of the field's `options`.
        Choice = "choice",
    }
);

/// The longest text attribute, in characters.
pub const MAX_TEXT_ATTRIBUTE: usize = 500;
/// The most fields an asset type declares.
pub const MAX_FIELDS: usize = 40;
/// The most options of a choice field.
pub const MAX_OPTIONS: usize = 50;

/// One attribute an asset of a type may carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldDef {
    /// The attribute's key in `attributes`.
    #[schema(value_type = String, pattern = "^[a-z][a-z0-9_]{0,39}$", example = "memory_gb")]
    pub key: SchemaKey,
    /// What people see.
    #[schema(value_type = String, example = "Memory (GB)")]
    pub label: Name,
    #[schema(value_type = String, example = "number")]
    pub kind: FieldKind,
    /// Every asset of the type must give it.
    #[serde(default)]
    pub required: bool,
    /// The values a `choice` field takes (1-50 of them); none for the other kinds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<String>)]
    #[schemars(length(max = 50))]
    pub options: Vec<Name>,
}

/// An asset type as an admin sends it: its name and fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({"name": "UPS", "fields": [
    {"key": "capacity_va", "label": "Capacity (VA)", "kind": "integer", "required": true},
    {"key": "battery_replaced_on", "label": "Battery replaced on", "kind": "date"}]}))]
pub struct AssetTypeInput {
    pub name: Name,
    /// The attributes its assets carry (at most 40; keys unique; options
    /// for a `choice` only).
    #[serde(default)]
    #[schemars(length(max = 40))]
    pub fields: Vec<FieldDef>,
}

/// Why an attribute (or a field of a schema) was refused: where (a JSON
/// Pointer such as `/attributes/memory_gb`) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl FieldError {
    fn at(path: String, message: impl Into<String>) -> Self {
        Self { path, message: message.into() }
    }
}

/// Checks a type's fields: keys unique, options exactly where a choice
/// needs them, within the bounds. Every problem, each with its place
/// (`/fields/2/options`).
pub fn check_fields(fields: &[FieldDef]) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    if fields.len() > MAX_FIELDS {
        errors.push(FieldError::at("/fields".into(), format!("at most {MAX_FIELDS} fields")));
    }
    for (i, field) in fields.iter().enumerate().take(MAX_FIELDS) {
        if fields[..i].iter().any(|f| f.key == field.key) {
            errors.push(FieldError::at(format!("/fields/{i}/key"), format!("{} is declared twice", field.key)));
        }
        let path = format!("/fields/{i}/options");
        match (field.kind, field.options.len()) {
            (FieldKind::Choice, 0) => errors.push(FieldError::at(path, "a choice needs its options")),
            (FieldKind::Choice, n) if n > MAX_OPTIONS => {
                errors.push(FieldError::at(path, format!("at most {MAX_OPTIONS} options")));
            }
            (FieldKind::Choice, _) => {
                if let Some(j) = (1..field.options.len()).find(|&j| field.options[..j].contains(&field.options[j])) {
                    errors.push(FieldError::at(format!("{path}/{j}"), "this option is given twice"));
                }
            }
            (_, 0) => {}
            (kind, _) => errors.push(FieldError::at(path, format!("only a choice has options, not a {kind}"))),
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// Checks an asset's attributes against its type's fields: only declared
/// keys, each of its kind, every required one given. Every problem, each
/// with its place (`/attributes/<key>`).
pub fn check_attributes(fields: &[FieldDef], attributes: &Map<String, Value>) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    for (key, value) in attributes {
        let path = format!("/attributes/{}", key.replace('~', "~0").replace('/', "~1"));
        let Some(field) = fields.iter().find(|f| f.key.as_str() == key) else {
            let known: Vec<&str> = fields.iter().map(|f| f.key.as_str()).collect();
            let known = if known.is_empty() { "none".to_owned() } else { known.join(", ") };
            let shown: String = key.chars().take(60).collect();
            errors.push(FieldError::at(path, format!("{shown:?} is not a field of this type (its fields: {known})")));
            continue;
        };
        if let Err(message) = check_value(field, value) {
            errors.push(FieldError::at(path, message));
        }
    }
    for field in fields.iter().filter(|f| f.required && !attributes.contains_key(f.key.as_str())) {
        errors.push(FieldError::at(format!("/attributes/{}", field.key), format!("{} is required", field.label)));
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

fn check_value(field: &FieldDef, value: &Value) -> Result<(), String> {
    let wrong = || {
        let expected = match field.kind {
            FieldKind::Text => "text",
            FieldKind::Number => "a number",
            FieldKind::Integer => "a whole number",
            FieldKind::Boolean => "true or false",
            FieldKind::Date => "a date (YYYY-MM-DD)",
            FieldKind::Choice => "one of its options",
        };
        format!("{} is {expected}", field.label)
    };
    match (field.kind, value) {
        (FieldKind::Text, Value::String(s)) => {
            crate::vocabulary::checked_text(s, "the text", MAX_TEXT_ATTRIBUTE, false)
                .map(drop)
                .map_err(|e| format!("{}: {e}", field.label))
        }
        (FieldKind::Number, Value::Number(_)) => Ok(()),
        (FieldKind::Integer, Value::Number(n)) if n.is_i64() => Ok(()),
        (FieldKind::Boolean, Value::Bool(_)) => Ok(()),
        (FieldKind::Date, Value::String(s)) => Day::parse(s).map(drop).map_err(|e| format!("{}: {e}", field.label)),
        (FieldKind::Choice, Value::String(s)) if field.options.iter().any(|o| o.as_str() == s) => Ok(()),
        (FieldKind::Choice, _) => {
            let options: Vec<&str> = field.options.iter().map(Name::as_str).collect();
            Err(format!("{} is one of: {}", field.label, options.join(", ")))
        }
        _ => Err(wrong()),
    }
}

/// `attributes` with `patch` merged in (RFC 7396 at the top level): a key
/// given a value takes it, a key given `null` goes.
pub fn merge_attributes(attributes: &Map<String, Value>, patch: &Map<String, Value>) -> Map<String, Value> {
    let mut merged = attributes.clone();
    for (key, value) in patch {
        if value.is_null() {
            merged.remove(key);
        } else {
            merged.insert(key.clone(), value.clone());
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use AssetStatus as S;

    fn fields() -> Vec<FieldDef> {
        serde_json::from_value(json!([
            {"key": "memory_gb", "label": "Memory (GB)", "kind": "number", "required": true},
            {"key": "ports", "label": "Ports", "kind": "integer"},
            {"key": "managed", "label": "Managed", "kind": "boolean"},
            {"key": "renewal", "label": "Renewal", "kind": "date"},
            {"key": "tier", "label": "Tier", "kind": "choice", "options": ["gold", "silver"]},
            {"key": "model", "label": "Model", "kind": "text"}
        ]))
        .expect("fields")
    }

    #[test]
    fn the_lifecycle_moves_and_nothing_else() {
        let mut moves = 0;
        for from in S::ALL {
            for to in S::ALL {
                if from.transition(to).is_ok() {
                    moves += 1;
                } else {
                    assert!(!from.next().contains(&to));
                }
            }
        }
        assert_eq!(moves, 7);
        let err = S::Disposed.transition(S::Active).expect_err("disposed is the end");
        assert!(err.to_string().ends_with("nothing"), "{err}");
        assert!(S::Retired.is_history() && !S::InRepair.is_history());
    }

    #[test]
    fn attributes_follow_their_fields() {
        let fields = fields();
        let good = json!({"memory_gb": 15.5, "ports": 48, "managed": true, "renewal": "2027-01-31",
                          "tier": "gold", "model": "Dell R740"});
        assert_eq!(check_attributes(&fields, good.as_object().expect("object")), Ok(()));

        let bad = json!({"ports": 4.5, "managed": "yes", "renewal": "31/01/2027", "tier": "bronze",
                         "colour": "red", "model": "a\u{7}b"});
        let errors = check_attributes(&fields, bad.as_object().expect("object")).expect_err("bad");
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        for path in [
            "/attributes/ports",
            "/attributes/managed",
            "/attributes/renewal",
            "/attributes/tier",
            "/attributes/colour",
            "/attributes/model",
            "/attributes/memory_gb",
        ] {
            assert!(paths.contains(&path), "{path} in {errors:?}");
        }
        assert!(errors.iter().any(|e| e.message.contains("gold, silver")), "{errors:?}");
        assert!(errors.iter().any(|e| e.message.contains("Memory (GB) is required")), "{errors:?}");
    }

    #[test]
    fn merging_sets_and_removes() {
        let now = json!({"a": 1, "b": 2});
        let patch = json!({"b": null, "c": 3});
        let merged = merge_attributes(now.as_object().expect("o"), patch.as_object().expect("o"));
        assert_eq!(Value::Object(merged), json!({"a": 1, "c": 3}));
    }

    #[test]
    fn field_schemas_are_checked() {
        let fields: Vec<FieldDef> = serde_json::from_value(json!([
            {"key": "tier", "label": "Tier", "kind": "choice"},
            {"key": "tier", "label": "Tier again", "kind": "text", "options": ["x"]},
            {"key": "size", "label": "Size", "kind": "choice", "options": ["s", "m", "s"]}
        ]))
        .expect("fields");
        let errors = check_fields(&fields).expect_err("bad");
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["/fields/0/options", "/fields/1/key", "/fields/1/options", "/fields/2/options/2"]);
        assert!(serde_json::from_value::<FieldDef>(json!({"key": "Bad Key", "label": "x", "kind": "text"})).is_err());
    }

    #[test]
    fn days_are_strict() {
        assert_eq!(Day::parse("2025-02-28").expect("day").to_string(), "2025-02-28");
        for bad in ["2025-02-30", "0000-01-01", "2025-2-28", "20250228", "2025-02-28T00:00:00Z", "+2025-02-28", ""] {
            assert!(Day::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_are_one_spelling() {
        assert!(SchemaKey::parse("network_device").is_ok());
        for bad in ["", "Network", "1x", "a-b", &"x".repeat(41)] {
            assert!(SchemaKey::parse(bad).is_err(), "{bad}");
        }
    }
}
