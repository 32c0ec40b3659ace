//! Where the client company is and who works there: the vocabulary of sites
//! and contacts (names, postal addresses, time zones, email addresses,
//! phone numbers), each checked once when it is parsed.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::vocabulary::{Text, TextError};

crate::text_type!(
    /// What a site or a person is called: one line, up to 200 characters.
    Name,
    "a name",
    200,
    false
);
crate::text_type!(
    /// One line of a postal address.
    AddressLine,
    "an address line",
    200,
    false
);
crate::text_type!(
    /// A postal code, as the country writes it.
    PostalCode,
    "a postal code",
    20,
    false
);

/// A postal address, in the parts invoices need (EN 16931 BG-8: lines, city,
/// postal code, subdivision, country).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    pub line1: AddressLine,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<AddressLine>,
    pub city: AddressLine,
    /// State, county or province, where the country uses one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<AddressLine>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<PostalCode>,
    /// ISO 3166-1 alpha-2, e.g. `GB`.
    pub country: CountryCode,
}

/// The officially assigned ISO 3166-1 alpha-2 codes.
const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR \
BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI \
FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS \
IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO \
MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA \
RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT \
TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// A country, as its ISO 3166-1 alpha-2 code (upper case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        let code = raw.trim().to_ascii_uppercase();
        if code.len() == 2 && COUNTRIES.split(' ').any(|c| c == code) {
            let bytes = code.as_bytes();
            Ok(Self([bytes[0], bytes[1]]))
        } else {
            Err(TextError { what: "a country", reason: format!("{raw:?} is not an ISO 3166-1 alpha-2 code") })
        }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("ASCII letters")
    }
}

impl From<CountryCode> for String {
    fn from(code: CountryCode) -> Self {
        code.as_str().to_owned()
    }
}

/// An IANA time zone, e.g. `Europe/London`: business hours and SLA clocks
/// run in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct TimeZoneName(String);

/// The time zone database Anchor uses: the one built into the binary, so
/// that every process of an installation agrees on the zones (and on the
/// list the API documents), whatever the host has installed.
pub fn time_zones() -> &'static jiff::tz::TimeZoneDatabase {
    static BUNDLED: std::sync::OnceLock<jiff::tz::TimeZoneDatabase> = std::sync::OnceLock::new();
    BUNDLED.get_or_init(jiff::tz::TimeZoneDatabase::bundled)
}

impl TimeZoneName {
    /// Every IANA zone name Anchor knows, sorted.
    pub fn all() -> Vec<String> {
        let mut names: Vec<String> = time_zones().available().map(|n| n.to_string()).collect();
        names.sort();
        names
    }

    pub fn parse(raw: &str) -> Result<Self, TextError> {
        let name = raw.trim();
        match time_zones().get(name) {
            Ok(zone) => Ok(Self(zone.iana_name().unwrap_or(name).to_owned())),
            Err(_) => Err(TextError {
                what: "a time zone",
                reason: format!("{name:?} is not an IANA time zone name such as Europe/London"),
            }),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address (RFC 5322 addr-spec with a top-level domain), as typed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub const MAX_CHARS: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, TextError> {
        let text = raw.trim();
        let options = email_address::Options::default().with_required_tld().without_display_text();
        match email_address::EmailAddress::parse_with_options(text, options) {
            Ok(_) if text.len() <= Self::MAX_CHARS => Ok(Self(text.to_owned())),
            _ => Err(TextError {
                what: "an email address",
                reason: format!("{text:?} is not one, e.g. ann@example.com"),
            }),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A telephone number as people write it: digits with `+`, spaces, dots,
/// hyphens, slashes, parentheses and an extension (`x12`, `ext. 12`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        let text = raw.trim();
        let lower = text.to_ascii_lowercase();
        let (number, extension) = match lower.find("ext").or_else(|| lower.find('x')) {
            Some(at) => {
                let extension = lower[at..].trim_start_matches("ext").trim_start_matches('x').trim_start_matches('.');
                (lower[..at].trim(), Some(extension.trim()))
            }
            None => (lower.as_str(), None),
        };
        let digits = number.chars().filter(char::is_ascii_digit).count();
        let valid = text.len() <= 32
            && (5..=17).contains(&digits)
            && number
                .chars()
                .enumerate()
                .all(|(i, c)| c.is_ascii_digit() || " .-/()".contains(c) || (c == '+' && i == 0))
            && extension.is_none_or(|e| !e.is_empty() && e.chars().all(|c| c.is_ascii_digit()));
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            Err(TextError { what: "a phone number", reason: format!("{text:?} is not one, e.g. +44 20 7946 0958") })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The faces of the checked types above that are not made by `text_type!`.
macro_rules! checked {
    ($($ty:ident => $schema:tt),+ $(,)?) => {$(
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Text for $ty {
            fn text(&self) -> Cow<'_, str> {
                Cow::Borrowed(self.as_str())
            }
            fn from_text(text: &str) -> Result<Self, String> {
                Self::parse(text).map_err(|e| e.to_string())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = <Cow<'de, str>>::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }

        crate::inline_schema!($ty, $schema);

        crate::stored_as_text!($ty);
    )+};
}

checked!(
    CountryCode => {"type": "string", "enum": COUNTRIES.split(' ').collect::<Vec<_>>(), "description": "ISO 3166-1 alpha-2"},
    TimeZoneName => {"type": "string", "enum": TimeZoneName::all(), "description": "IANA time zone"},
    Email => {"type": "string", "format": "email", "maxLength": 254, "examples": ["ann@example.com"]},
    Phone => {"type": "string", "minLength": 5, "maxLength": 32, "examples": ["+44 20 7946 0958"],
              "pattern": "^\\+?[ .()/-]*([0-9][ .()/-]*){5,17}(([eE][xX][tT]\\.?|[xX]) ?[0-9]+)?$"},
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_zones_are_iana_names() {
        assert_eq!(TimeZoneName::parse(" Europe/London ").expect("zone").as_str(), "Europe/London");
        assert!(TimeZoneName::parse("UTC").is_ok());
        let err = TimeZoneName::parse("Mars/Olympus").expect_err("no such zone");
        assert!(err.to_string().contains("IANA"), "{err}");
    }

    #[test]
    fn emails_phones_and_countries_are_checked() {
        assert_eq!(Email::parse(" ann@example.com ").expect("email").as_str(), "ann@example.com");
        for bad in ["ann", "ann@", "@example.com", "ann@localhost", "a b@example.com"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        for good in ["+44 20 7946 0958", "(555) 123-4567", "030/1234567 x12", "+1 555.123.4567 ext. 9"] {
            assert!(Phone::parse(good).is_ok(), "{good}");
        }
        for bad in ["call me", "12", "+44 +44 1234", "555-1234 x"] {
            assert!(Phone::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(CountryCode::parse("gb").expect("GB").as_str(), "GB");
        assert!(CountryCode::parse("UK").is_err(), "UK is not an ISO code");
        let address: Address =
            serde_json::from_value(serde_json::json!({"line1": "1 High St", "city": "Leeds", "country": "gb"}))
                .expect("address");
        assert_eq!(serde_json::to_value(&address).expect("json")["country"], "GB");
    }
}
