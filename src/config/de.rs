//! Values written as one string (addresses, header names, peers), parsed while the file is read so errors name the key and index.

use serde::de::{Deserialize, Deserializer, Error, Visitor};
use std::fmt;
use std::marker::PhantomData;

/// A config value spelled as one string, from the file or an environment variable.
pub(super) trait ConfigStr: Sized {
    /// What a good value looks like, for type errors (a number where a string belongs).
    const EXPECTING: &'static str;
    /// Parse `s`, or say what is wrong with it (the caller adds the key).
    fn parse_config(s: &str) -> Result<Self, String>;
}

/// Parses inside the YAML reader's string callback: an error raised there is
/// tagged with the element's own path (`listen[0]`), one raised after
/// `String::deserialize` returns only with its parent's (`listen`).
struct StrVisitor<T>(PhantomData<T>);

impl<T: ConfigStr> Visitor<'_> for StrVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_str<E: Error>(self, s: &str) -> Result<T, E> {
        T::parse_config(s).map_err(E::custom)
    }
}

/// One value (`#[serde(deserialize_with = "de::one")]`).
pub(super) fn one<'de, D: Deserializer<'de>, T: ConfigStr>(d: D) -> Result<T, D::Error> {
    d.deserialize_str(StrVisitor(PhantomData))
}

/// A list of values (`#[serde(deserialize_with = "de::list")]`).
pub(super) fn list<'de, D: Deserializer<'de>, T: ConfigStr>(d: D) -> Result<Vec<T>, D::Error> {
    struct Item<T>(T);
    impl<'de, T: ConfigStr> Deserialize<'de> for Item<T> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            one(d).map(Item)
        }
    }
    let items = Vec::<Item<T>>::deserialize(d)?;
    Ok(items.into_iter().map(|Item(v)| v).collect())
}
