//! The three faces every vocabulary type shows besides Rust: a PostgreSQL
//! `text` value, a JSON string, and a JSON Schema. They are written once here,
//! as macros, so that an id, a closed set of names or a checked piece of text
//! is declared in one line and can be bound, fetched (`sqlx::FromRow`),
//! (de)serialised and described without a conversion at any call site.
//!
//! - [`names!`](crate::names) declares a closed set of names (a status, a
//!   priority) with `as_str`, `parse`, `ALL` and the three faces;
//! - [`text_type!`](crate::text_type) declares text a person typed, checked
//!   once (trimmed, bounded, printable);
//! - [`stored_as_text!`](crate::stored_as_text) gives any type with
//!   [`Text`] its database face (the prefixed ids use it).

use std::borrow::Cow;

/// A value that is stored and sent as text, and parsed back with a reason
/// when the text is not one.
pub trait Text: Sized {
    fn text(&self) -> Cow<'_, str>;
    fn from_text(text: &str) -> Result<Self, String>;
}

/// The JSON Schema of a type that is always written out inline where it is
/// used, never referenced by name.
#[macro_export]
macro_rules! inline_schema {
    ($name:ty, $($schema:tt)+) => {
        impl schemars::JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!($($schema)+)
            }
        }
    };
}

/// Text a person typed, checked once: trimmed, within `max` characters,
/// without control characters other than line breaks and tabs (when
/// `multiline`).
pub fn checked_text(raw: &str, what: &'static str, max: usize, multiline: bool) -> Result<String, TextError> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(TextError { what, reason: "must not be empty".into() });
    }
    // Bounded as sent, so that the bound its JSON Schema states holds.
    let length = raw.chars().count();
    if length > max {
        return Err(TextError { what, reason: format!("is {length} characters; at most {max}") });
    }
    let allowed = |c: char| !c.is_control() || (multiline && matches!(c, '\n' | '\r' | '\t'));
    if !text.chars().all(allowed) {
        return Err(TextError { what, reason: "must not contain control characters".into() });
    }
    Ok(text.to_owned())
}

/// Why a piece of text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {reason}")]
pub struct TextError {
    pub what: &'static str,
    pub reason: String,
}

/// The OpenAPI schema of a string value: one of `names`, or matching
/// `pattern`. Vocabulary types implement `utoipa::PartialSchema` with it, so
/// a query parameter of such a type (`#[param(inline)]`) documents exactly
/// the values the API accepts.
pub fn openapi_string(
    names: Option<&[&str]>,
    pattern: Option<&str>,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new().schema_type(Type::String).enum_values(names.map(|n| n.to_vec())).pattern(pattern).into()
}

/// For `#[serde(default, deserialize_with = "nullable")]` on an
/// `Option<Option<T>>` member of a change: absent is `None` (leave it),
/// `null` is `Some(None)` (clear it), a value is `Some(Some(v))`.
pub fn nullable<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

/// `sqlx` encoding and decoding as PostgreSQL `text` for a type with [`Text`].
/// Decoding parses again: a row that breaks the rule was written by hand and
/// is reported, not trusted.
#[macro_export]
macro_rules! stored_as_text {
    ($ty:ty) => {
        impl sqlx::Type<sqlx::Postgres> for $ty {
            fn type_info() -> sqlx::postgres::PgTypeInfo {
                <str as sqlx::Type<sqlx::Postgres>>::type_info()
            }
            fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
                <str as sqlx::Type<sqlx::Postgres>>::compatible(ty)
            }
        }

        impl sqlx::postgres::PgHasArrayType for $ty {
            fn array_type_info() -> sqlx::postgres::PgTypeInfo {
                <&str as sqlx::postgres::PgHasArrayType>::array_type_info()
            }
        }

        impl sqlx::Encode<'_, sqlx::Postgres> for $ty {
            fn encode_by_ref(
                &self,
                buf: &mut sqlx::postgres::PgArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<sqlx::Postgres>>::encode($crate::vocabulary::Text::text(self).as_ref(), buf)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Postgres> for $ty {
            fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let raw = <&str as sqlx::Decode<sqlx::Postgres>>::decode(value)?;
                <$ty as $crate::vocabulary::Text>::from_text(raw).map_err(Into::into)
            }
        }
    };
}

/// A closed set of names: a Rust enum whose values are stored and sent as
/// the given strings, with `ALL`, `as_str`, `parse`, `Display` and the three
/// faces.
#[macro_export]
macro_rules! names {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }

            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.into_iter().find(|v| v.as_str() == s)
            }

            /// Every name, as a list for people: `a, b or c`.
            pub fn listed() -> String {
                let names: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                match names.split_last() {
                    Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
                    _ => names.join(""),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                Self::parse(s).ok_or_else(|| format!("unknown {} {s:?}; one of {}", stringify!($name), Self::listed()))
            }
        }

        impl $crate::vocabulary::Text for $name {
            fn text(&self) -> std::borrow::Cow<'_, str> {
                std::borrow::Cow::Borrowed(self.as_str())
            }
            fn from_text(text: &str) -> Result<Self, String> {
                text.parse()
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::parse(&raw).ok_or_else(|| {
                    serde::de::Error::custom(format!("unknown variant `{raw}`, expected one of {}", Self::listed()))
                })
            }
        }

        $crate::inline_schema!($name, {"type": "string", "enum": [$($text),+]});

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::vocabulary::openapi_string(Some(&[$($text),+]), None)
            }
        }

        impl utoipa::ToSchema for $name {}

        $crate::stored_as_text!($name);
    };
}

/// Text a person typed, checked once by [`checked_text`]: `$what` names it in
/// errors, `$max` bounds its characters, `$multiline` allows line breaks.
#[macro_export]
macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:literal, $multiline:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const MAX_CHARS: usize = $max;

            pub fn parse(raw: &str) -> Result<Self, $crate::vocabulary::TextError> {
                $crate::vocabulary::checked_text(raw, $what, $max, $multiline).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }

        impl $crate::vocabulary::Text for $name {
            fn text(&self) -> std::borrow::Cow<'_, str> {
                std::borrow::Cow::Borrowed(&self.0)
            }
            fn from_text(text: &str) -> Result<Self, String> {
                Self::parse(text).map_err(|e| e.to_string())
            }
        }

        // Not blank, and no control characters (but line breaks and tabs in
        // multi-line text): what `checked_text` accepts.
        $crate::inline_schema!($name, {
            "type": "string", "minLength": 1, "maxLength": $max,
            "allOf": [
                {"pattern": "\\S"},
                {"pattern": if $multiline { "^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f]*$" } else { "^[^\\x00-\\x1f\\x7f-\\x9f]*$" }}
            ]
        });

        $crate::stored_as_text!($name);
    };
}

#[cfg(test)]
#[allow(unreachable_pub)]
mod tests {
    use super::*;

    crate::names!(
        /// A test set.
        enum Colour {
            Red = "red",
            LightBlue = "light_blue",
        }
    );

    #[test]
    fn names_round_trip_through_every_face() {
        for colour in Colour::ALL {
            assert_eq!(Colour::parse(colour.as_str()), Some(colour));
            assert_eq!(serde_json::to_value(colour).expect("json"), colour.as_str());
            assert_eq!(Colour::from_text(&colour.text()).expect("text"), colour);
        }
        let err = serde_json::from_str::<Colour>("\"green\"").expect_err("unknown");
        assert!(err.to_string().contains("red or light_blue"), "{err}");
        let schema = schemars::schema_for!(Colour);
        assert_eq!(schema.get("enum").expect("enum"), &serde_json::json!(["red", "light_blue"]));
    }

    #[test]
    fn text_is_trimmed_bounded_and_printable() {
        assert_eq!(checked_text("  x ", "it", 4, false).expect("ok"), "x");
        assert!(checked_text("  x  ", "it", 4, false).is_err(), "bounded as sent");
        assert!(checked_text("", "it", 3, false).is_err());
        assert!(checked_text("abcd", "it", 3, false).is_err());
        assert!(checked_text("a\nb", "it", 3, false).is_err());
        assert!(checked_text("a\nb", "it", 3, true).is_ok());
    }
}
