//! The bounded parts of a batch. Every part of a batch has a type that
//! carries its bounds and enforces them while it is read, so reading a batch
//! never builds more than its limits allow, whatever the body says:
//!
//! - lists ([`seq`]) stop at their largest count;
//! - text ([`text`]) has a largest length, is refused before it is copied,
//!   and never holds NUL (PostgreSQL text and `jsonb` cannot);
//! - [`Labels`] are a small map of short names to short values;
//! - free-form documents ([`Inventory`], [`Event`]) are kept as the JSON
//!   text they came as (no tree of values is built), after a walk that
//!   checks their depth, their number of values, the members of each
//!   object, the items of each list and the length of each key and string.

use std::{cell::Cell, collections::BTreeMap, fmt, marker::PhantomData};

use serde::{
    Deserialize, Deserializer, Serialize,
    de::{self, DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor},
};
use serde_json::{Value, value::RawValue};

/// For `#[serde(deserialize_with)]`: a list of at most `MAX` items; the
/// item past the bound is refused before it is read.
pub fn seq<'de, D, T, const MAX: usize>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Bounded<T, const MAX: usize>(PhantomData<T>);

    impl<'de, T: Deserialize<'de>, const MAX: usize> Visitor<'de> for Bounded<T, MAX> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a list of at most {MAX} items")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::with_capacity(items.size_hint().unwrap_or(0).min(MAX).min(256));
            loop {
                if out.len() == MAX {
                    return match items.next_element::<IgnoredAny>()? {
                        Some(_) => Err(A::Error::custom(format!("at most {MAX} items"))),
                        None => Ok(out),
                    };
                }
                match items.next_element()? {
                    Some(item) => out.push(item),
                    None => return Ok(out),
                }
            }
        }
    }

    d.deserialize_seq(Bounded::<T, MAX>(PhantomData))
}

/// Whether `s` is text PostgreSQL can keep (no NUL) of at most `max` bytes.
fn text_fits(s: &str, max: usize) -> Result<(), String> {
    if s.len() > max {
        return Err(format!("at most {max} bytes"));
    }
    if s.contains('\0') {
        return Err("must not contain NUL (U+0000)".into());
    }
    Ok(())
}

/// For `#[serde(deserialize_with)]`: text of at most `MAX` bytes without
/// NUL, refused before it is copied.
pub fn text<'de, D: Deserializer<'de>, const MAX: usize>(d: D) -> Result<String, D::Error> {
    d.deserialize_str(Text::<MAX>)
}

struct Text<const MAX: usize>;

impl<'de, const MAX: usize> Visitor<'de> for Text<MAX> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a string of at most {MAX} bytes")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        text_fits(v, MAX).map_err(E::custom)?;
        Ok(v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        text_fits(&v, MAX).map_err(E::custom)?;
        Ok(v)
    }
}

/// The labels of a metric: at most [`Labels::MAX`] of them, each name 1-64
/// bytes of ASCII letters, digits, `_`, `.` and `-` starting with a letter or
/// `_`, each value a string of at most [`Labels::MAX_VALUE`] bytes. Kept as
/// one canonical JSON object's text (members sorted by name, no spaces):
/// one allocation per metric, and what the server stores and keys a series
/// by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Labels(String);

impl Labels {
    /// Most labels on one metric.
    pub const MAX: usize = 8;
    /// Longest label name, in bytes.
    pub const MAX_NAME: usize = 64;
    /// Longest label value, in bytes.
    pub const MAX_VALUE: usize = 256;

    /// The labels of `pairs` (the agent's side; bounds are the reader's
    /// business). A name given twice keeps its last value.
    pub fn new<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        let map: BTreeMap<String, String> = pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        Self(serde_json::to_string(&map).unwrap_or_else(|_| "{}".into()))
    }

    /// The canonical JSON object.
    pub fn json(&self) -> &str {
        &self.0
    }

    /// The labels, by name.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        serde_json::from_str(&self.0).unwrap_or_default()
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.to_map().remove(name)
    }

    pub fn is_empty(&self) -> bool {
        self.0 == "{}"
    }

    /// Whether `name` is a label name.
    pub fn valid_name(name: &str) -> bool {
        (1..=Self::MAX_NAME).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    }
}

impl Default for Labels {
    fn default() -> Self {
        Self("{}".into())
    }
}

impl<K: Into<String>, V: Into<String>, const N: usize> From<[(K, V); N]> for Labels {
    fn from(pairs: [(K, V); N]) -> Self {
        Self::new(pairs)
    }
}

impl Serialize for Labels {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Canonical already: written as it is.
        RawValue::from_string(self.0.clone()).map_err(serde::ser::Error::custom)?.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct LabelsVisitor;

        impl<'de> Visitor<'de> for LabelsVisitor {
            type Value = Labels;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an object of at most {} labels", Labels::MAX)
            }

            fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<Labels, A::Error> {
                let mut labels = BTreeMap::new();
                while let Some(name) = members.next_key_seed(LabelName)? {
                    if labels.len() == Labels::MAX {
                        return Err(A::Error::custom(format!("at most {} labels", Labels::MAX)));
                    }
                    let value: String = members.next_value_seed(TextSeed::<{ Labels::MAX_VALUE }>)?;
                    if labels.insert(name, value).is_some() {
                        return Err(A::Error::custom("a label is named twice"));
                    }
                }
                Ok(Labels(serde_json::to_string(&labels).map_err(A::Error::custom)?))
            }
        }

        d.deserialize_map(LabelsVisitor)
    }
}

struct LabelName;

impl<'de> DeserializeSeed<'de> for LabelName {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        let name = d.deserialize_str(Text::<{ Labels::MAX_NAME }>)?;
        if !Labels::valid_name(&name) {
            return Err(D::Error::custom(
                "a label name is 1-64 of ASCII letters, digits, '_', '.' and '-', starting with a letter or '_'",
            ));
        }
        Ok(name)
    }
}

struct TextSeed<const MAX: usize>;

impl<'de, const MAX: usize> DeserializeSeed<'de> for TextSeed<MAX> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_str(Text::<MAX>)
    }
}

/// The bounds of a free-form JSON document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Objects and lists nested at most this deep (the document itself is 1).
    pub depth: usize,
    /// Values in all (objects, lists, strings, numbers, booleans, nulls).
    pub values: usize,
    /// Members of one object.
    pub members: usize,
    /// Items of one list.
    pub items: usize,
    /// Longest member name, in bytes.
    pub key_bytes: usize,
    /// Longest string, in bytes.
    pub string_bytes: usize,
}

/// A machine's inventory (and the facts it enrolls with).
pub const INVENTORY_BOUNDS: Bounds =
    Bounds { depth: 6, values: 100_000, members: 256, items: 20_000, key_bytes: 128, string_bytes: 1024 };

/// One event of a batch.
pub const EVENT_BOUNDS: Bounds =
    Bounds { depth: 4, values: 1_000, members: 32, items: 500, key_bytes: 64, string_bytes: 1024 };

/// Why a document is out of bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundsError(String);

impl fmt::Display for BoundsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BoundsError {}

/// Checks `json` against `bounds` without building it: it must be an
/// object; returns the string member `kind` when there is one.
fn walk(json: &str, bounds: &Bounds) -> Result<Option<String>, BoundsError> {
    let walker = Walker { bounds, values: Cell::new(0), kind: Cell::new(None) };
    let mut de = serde_json::Deserializer::from_str(json);
    Node { walker: &walker, depth: 0, top: true }.deserialize(&mut de).map_err(|e| BoundsError(strip_position(&e)))?;
    de.end().map_err(|e| BoundsError(e.to_string()))?;
    Ok(walker.kind.take())
}

/// serde_json's message without " at line 1 column 123": the raw document
/// is a part of the body, so its position would mislead.
fn strip_position(e: &serde_json::Error) -> String {
    let message = e.to_string();
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message,
    }
}

struct Walker<'b> {
    bounds: &'b Bounds,
    values: Cell<usize>,
    kind: Cell<Option<String>>,
}

impl Walker<'_> {
    fn count<E: de::Error>(&self) -> Result<(), E> {
        let values = self.values.get() + 1;
        if values > self.bounds.values {
            return Err(E::custom(format!("more than {} values", self.bounds.values)));
        }
        self.values.set(values);
        Ok(())
    }
}

/// One value of the document, `depth` containers deep.
#[derive(Clone, Copy)]
struct Node<'w, 'b> {
    walker: &'w Walker<'b>,
    depth: usize,
    /// The document itself: it must be an object.
    top: bool,
}

impl<'de> DeserializeSeed<'de> for Node<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.top { "a JSON object" } else { "a JSON value" })
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.scalar()
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.scalar()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.scalar()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.scalar()
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.scalar()
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.scalar()?;
        text_fits(v, self.walker.bounds.string_bytes).map_err(|e| E::custom(format!("a string: {e}")))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        if self.top {
            return Err(A::Error::custom("must be an object"));
        }
        let inner = self.enter()?;
        let mut n = 0;
        while items.next_element_seed(inner)?.is_some() {
            n += 1;
            if n > self.walker.bounds.items {
                return Err(A::Error::custom(format!("a list of more than {} items", self.walker.bounds.items)));
            }
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<(), A::Error> {
        let inner = self.enter()?;
        let mut n = 0;
        while let Some(key) = members.next_key_seed(Key { bounds: self.walker.bounds })? {
            n += 1;
            if n > self.walker.bounds.members {
                return Err(A::Error::custom(format!("an object of more than {} members", self.walker.bounds.members)));
            }
            if self.top && key {
                let kind = members.next_value_seed(KindSeed { walker: self.walker })?;
                self.walker.kind.set(Some(kind));
            } else {
                members.next_value_seed(inner)?;
            }
        }
        Ok(())
    }
}

impl<'w, 'b> Node<'w, 'b> {
    fn scalar<E: de::Error>(self) -> Result<(), E> {
        if self.top {
            return Err(E::custom("must be an object"));
        }
        self.walker.count()
    }

    /// The node for the values inside this container.
    fn enter<E: de::Error>(self) -> Result<Node<'w, 'b>, E> {
        self.walker.count()?;
        let depth = self.depth + 1;
        if depth > self.walker.bounds.depth {
            return Err(E::custom(format!("nested deeper than {} levels", self.walker.bounds.depth)));
        }
        Ok(Node { walker: self.walker, depth, top: false })
    }
}

/// A member name; `true` when it is `kind`.
struct Key<'b> {
    bounds: &'b Bounds,
}

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        text_fits(v, self.bounds.key_bytes).map_err(|e| E::custom(format!("a member name: {e}")))?;
        Ok(v == "kind")
    }
}

/// The top-level `kind` member: a string, kept.
struct KindSeed<'w, 'b> {
    walker: &'w Walker<'b>,
}

impl<'de> DeserializeSeed<'de> for KindSeed<'_, '_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        self.walker.count()?;
        d.deserialize_str(KindText { max: self.walker.bounds.string_bytes })
    }
}

struct KindText {
    max: usize,
}

impl<'de> Visitor<'de> for KindText {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`kind` as a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        text_fits(v, self.max).map_err(|e| E::custom(format!("kind: {e}")))?;
        Ok(v.to_owned())
    }
}

/// A machine's inventory: a JSON object within [`INVENTORY_BOUNDS`], kept
/// as the text it came as.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct Inventory(Box<RawValue>);

impl Inventory {
    /// An inventory of `value` (an object within the bounds).
    pub fn new(value: &Value) -> Result<Self, BoundsError> {
        Self::from_raw(serde_json::value::to_raw_value(value).map_err(|e| BoundsError(e.to_string()))?)
    }

    fn from_raw(raw: Box<RawValue>) -> Result<Self, BoundsError> {
        walk(raw.get(), &INVENTORY_BOUNDS)?;
        Ok(Self(raw))
    }

    /// The object, as JSON text.
    pub fn json(&self) -> &str {
        self.0.get()
    }

    /// The object as a tree of values (bounded by [`INVENTORY_BOUNDS`]).
    pub fn to_value(&self) -> Value {
        serde_json::from_str(self.0.get()).unwrap_or_default()
    }
}

impl<'de> Deserialize<'de> for Inventory {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::from_raw(Box::<RawValue>::deserialize(d)?).map_err(D::Error::custom)
    }
}

/// Something that happened on the agent: a JSON object within
/// [`EVENT_BOUNDS`] whose `kind` names it (1-120 of a-z, 0-9, `.`, `_`, `-`,
/// starting with a letter), kept as the text it came as.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct Event {
    raw: Box<RawValue>,
    #[serde(skip)]
    kind: String,
}

impl Event {
    /// An event of `value` (an object within the bounds, with a `kind`).
    pub fn new(value: &Value) -> Result<Self, BoundsError> {
        Self::from_raw(serde_json::value::to_raw_value(value).map_err(|e| BoundsError(e.to_string()))?)
    }

    fn from_raw(raw: Box<RawValue>) -> Result<Self, BoundsError> {
        let kind = walk(raw.get(), &EVENT_BOUNDS)?.ok_or_else(|| BoundsError("an event needs a `kind`".into()))?;
        if !crate::valid_name(&kind) {
            return Err(BoundsError("kind: 1-120 of a-z, 0-9, '.', '_' and '-', starting with a letter".into()));
        }
        Ok(Self { raw, kind })
    }

    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The event, as JSON text.
    pub fn json(&self) -> &str {
        self.raw.get()
    }

    /// The event as a tree of values (bounded by [`EVENT_BOUNDS`]).
    pub fn to_value(&self) -> Value {
        serde_json::from_str(self.raw.get()).unwrap_or_default()
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::from_raw(Box::<RawValue>::deserialize(d)?).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn documents_are_walked_within_their_bounds_and_kept_as_text() {
        let inventory: Inventory = serde_json::from_str(r#"{"os": "Debian", "list": [{"name": "a"}]}"#).expect("ok");
        assert_eq!(inventory.json(), r#"{"os": "Debian", "list": [{"name": "a"}]}"#);
        assert_eq!(inventory.to_value()["list"][0]["name"], "a");
        let deep = (0..7).fold(json!(1), |v, _| json!([v]));
        let err = Inventory::new(&json!({"deep": deep})).expect_err("too deep");
        assert!(err.to_string().contains("nested deeper than 6"), "{err}");
        let err = Inventory::new(&json!({"list": vec![0; 20_001]})).expect_err("too long");
        assert!(err.to_string().contains("more than 20000 items"), "{err}");
        let err = Inventory::new(&json!({"s": "x".repeat(1025)})).expect_err("too long");
        assert!(err.to_string().contains("at most 1024 bytes"), "{err}");
        let err = Inventory::new(&json!({"s": "a\u{0}b"})).expect_err("NUL");
        assert!(err.to_string().contains("NUL"), "{err}");
        let many: Vec<Value> = (0..10_000).map(|_| json!([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])).collect();
        let err = Inventory::new(&json!({"a": many})).expect_err("too many values");
        assert!(err.to_string().contains("more than 100000 values"), "{err}");
        assert!(Inventory::new(&json!([1])).is_err(), "an object");
        assert!(serde_json::from_str::<Inventory>("[]").is_err());

        let event = Event::new(&json!({"kind": "agent.started", "at": "x"})).expect("event");
        assert_eq!(event.kind(), "agent.started");
        assert!(Event::new(&json!({"at": "x"})).is_err(), "a kind is required");
        assert!(Event::new(&json!({"kind": "Bad Kind"})).is_err());
        assert!(Event::new(&json!({"kind": "a", "nested": {"kind": 5}})).is_ok(), "only the top-level kind");
        assert_eq!(serde_json::to_string(&vec![event]).expect("json"), r#"[{"at":"x","kind":"agent.started"}]"#);
    }

    #[test]
    fn labels_and_lists_stop_at_their_bounds() {
        let labels: Labels = serde_json::from_str(r#"{"mount": "/", "device": "sda1"}"#).expect("labels");
        assert_eq!(labels.get("mount").as_deref(), Some("/"));
        assert_eq!(labels.json(), r#"{"device":"sda1","mount":"/"}"#, "canonical");
        assert_eq!(serde_json::to_string(&labels).expect("json"), labels.json());
        assert_eq!(Labels::from([("mount", "/"), ("device", "sda1")]), labels);
        for bad in [
            r#"{"a": "1", "b": "2", "c": "3", "d": "4", "e": "5", "f": "6", "g": "7", "h": "8", "i": "9"}"#,
            r#"{"Bad Name": "x"}"#,
            r#"{"mount": 5}"#,
            r#"{"mount": "/", "mount": "/srv"}"#,
        ] {
            assert!(serde_json::from_str::<Labels>(bad).is_err(), "{bad}");
        }
        let long = format!(r#"{{"mount": "{}"}}"#, "x".repeat(257));
        assert!(serde_json::from_str::<Labels>(&long).is_err());

        #[derive(Debug, Deserialize)]
        struct Three {
            #[serde(deserialize_with = "seq::<_, u8, 3>")]
            items: Vec<u8>,
            #[serde(deserialize_with = "text::<_, 4>")]
            name: String,
        }
        let three = serde_json::from_str::<Three>(r#"{"items": [1, 2, 3], "name": "abcd"}"#).expect("ok");
        assert_eq!((three.items.len(), three.name.as_str()), (3, "abcd"));
        assert!(serde_json::from_str::<Three>(r#"{"items": [1, 2, 3, 4], "name": "a"}"#).is_err());
        assert!(serde_json::from_str::<Three>(r#"{"items": [], "name": "abcde"}"#).is_err());
    }
}
