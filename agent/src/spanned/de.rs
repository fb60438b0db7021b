//! The tolerant walk: serde's `Deserializer`, `SeqAccess` and `MapAccess` over toml's
//! document tree, recording a [`Problem`] and handing over a placeholder where serde's derived
//! code would fail.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

use serde::de::{self, IntoDeserializer, Visitor};
use toml::de::{DeTable, DeValue};

use super::Problem;
use super::zero::Zero;

/// What a walk collects: its problems and the position of every value, by path.
#[derive(Default)]
pub(super) struct Ctx {
    pub(super) problems: RefCell<Vec<Problem>>,
    pub(super) spans: RefCell<HashMap<String, Range<usize>>>,
}

impl Ctx {
    fn record(&self, span: Range<usize>, path: &str, message: String) {
        self.problems.borrow_mut().push(Problem {
            span,
            path: path.to_string(),
            message,
        });
    }
}

/// Error type of the walk. `Recorded` means the problem is already in the list and only
/// unwinds; `Custom` comes from a visitor and is recorded at the nearest value.
/// Why a walk stopped: a problem already recorded, or a visitor's own error.
#[derive(Debug)]
pub(super) enum DeError {
    Recorded,
    Custom(String),
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeError::Recorded => f.write_str("(recorded)"),
            DeError::Custom(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError::Custom(msg.to_string())
    }
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

fn integer(v: &DeValue<'_>) -> Option<i128> {
    match v {
        DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix()).ok(),
        _ => None,
    }
}

fn float(v: &DeValue<'_>) -> Option<f64> {
    match v {
        DeValue::Float(f) => match f.as_str() {
            "inf" | "+inf" => Some(f64::INFINITY),
            "-inf" => Some(f64::NEG_INFINITY),
            "nan" | "+nan" | "-nan" => Some(f64::NAN),
            s => s.parse().ok(),
        },
        DeValue::Integer(_) => integer(v).map(|i| i as f64),
        _ => None,
    }
}

/// The walk at one value: where it is, at which path.
pub(super) struct ValueDe<'c, 'a, 'i> {
    pub(super) ctx: &'c Ctx,
    pub(super) value: &'a DeValue<'i>,
    pub(super) span: Range<usize>,
    pub(super) path: String,
}

impl ValueDe<'_, '_, '_> {
    fn mismatch(&self, expected: &str) {
        self.ctx.record(
            self.span.clone(),
            &self.path,
            format!("expected {expected}, found {}", type_name(self.value)),
        );
    }

    /// Records a visitor's own error at this value; passes already-recorded errors through.
    fn catch<T>(&self, r: Result<T, DeError>) -> Result<T, DeError> {
        match r {
            Err(DeError::Custom(m)) => {
                self.ctx.record(self.span.clone(), &self.path, m);
                Err(DeError::Recorded)
            }
            other => other,
        }
    }

    fn seq<'s>(&'s self, items: &'s [toml::Spanned<DeValue<'s>>], len: Option<usize>) -> SeqDe<'s> {
        SeqDe {
            ctx: self.ctx,
            items,
            path: &self.path,
            index: 0,
            len: len.unwrap_or(items.len()),
        }
    }

    fn int<'de, V: Visitor<'de>>(
        self,
        visitor: V,
        min: i128,
        max: i128,
    ) -> Result<V::Value, DeError> {
        let n = match integer(self.value) {
            Some(n) if (min..=max).contains(&n) => n,
            Some(n) => {
                self.ctx.record(
                    self.span.clone(),
                    &self.path,
                    format!("{n} is out of range ({min} to {max})"),
                );
                0
            }
            None => {
                self.mismatch("an integer");
                0
            }
        };
        let r = if n < 0 {
            visitor.visit_i64(n as i64)
        } else {
            visitor.visit_u64(n as u64)
        };
        self.catch(r)
    }
}

macro_rules! int_method {
    ($name:ident, $t:ty) => {
        fn $name<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            self.int(visitor, <$t>::MIN as i128, <$t>::MAX as i128)
        }
    };
}

impl<'de> de::Deserializer<'de> for ValueDe<'_, '_, '_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match self.value {
            DeValue::String(s) => visitor.visit_str(s),
            DeValue::Integer(_) => match integer(self.value) {
                Some(n) if n < 0 => visitor.visit_i64(n as i64),
                Some(n) => visitor.visit_u64(n as u64),
                None => {
                    self.mismatch("an integer that fits 64 bits");
                    visitor.visit_u64(0)
                }
            },
            DeValue::Float(_) => visitor.visit_f64(float(self.value).unwrap_or(0.0)),
            DeValue::Boolean(b) => visitor.visit_bool(*b),
            DeValue::Datetime(d) => visitor.visit_string(d.to_string()),
            DeValue::Array(a) => visitor.visit_seq(self.seq(a, None)),
            DeValue::Table(t) => visitor.visit_map(MapDe::new(self.ctx, t, &self.path, None)),
        };
        self.catch(r)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let b = match self.value {
            DeValue::Boolean(b) => *b,
            _ => {
                self.mismatch("a boolean (true or false)");
                false
            }
        };
        self.catch(visitor.visit_bool(b))
    }

    int_method!(deserialize_i8, i8);
    int_method!(deserialize_i16, i16);
    int_method!(deserialize_i32, i32);
    int_method!(deserialize_i64, i64);
    int_method!(deserialize_u8, u8);
    int_method!(deserialize_u16, u16);
    int_method!(deserialize_u32, u32);
    int_method!(deserialize_u64, u64);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let f = match float(self.value) {
            Some(f) => f,
            None => {
                self.mismatch("a number");
                0.0
            }
        };
        self.catch(visitor.visit_f64(f))
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match self.value {
            DeValue::String(s) => visitor.visit_str(s),
            _ => {
                self.mismatch("a string");
                visitor.visit_str("")
            }
        };
        self.catch(r)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.mismatch("nothing");
        self.catch(visitor.visit_unit())
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match self.value {
            DeValue::Array(a) => visitor.visit_seq(self.seq(a, None)),
            _ => {
                self.mismatch("an array");
                visitor.visit_seq(self.seq(&[], None))
            }
        };
        self.catch(r)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let r = match self.value {
            DeValue::Array(a) => {
                if a.len() != len {
                    self.ctx.record(
                        self.span.clone(),
                        &self.path,
                        format!("expected an array of {len} items, found {}", a.len()),
                    );
                }
                visitor.visit_seq(self.seq(a, Some(len)))
            }
            _ => {
                self.mismatch(&format!("an array of {len} items"));
                visitor.visit_seq(self.seq(&[], Some(len)))
            }
        };
        self.catch(r)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.table(None, visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.table(Some(fields), visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let first = variants.first().copied().unwrap_or("");
        let chosen: &str = match self.value {
            DeValue::String(s) if variants.contains(&s.as_ref()) => s,
            DeValue::String(s) => {
                self.ctx.record(
                    self.span.clone(),
                    &self.path,
                    format!(
                        "unknown value \"{s}\", expected one of {}",
                        quoted(variants)
                    ),
                );
                first
            }
            _ => {
                self.mismatch(&format!("one of {}", quoted(variants)));
                first
            }
        };
        let r = visitor.visit_enum(IntoDeserializer::<DeError>::into_deserializer(chosen));
        self.catch(r)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

impl<'c, 'a, 'i> ValueDe<'c, 'a, 'i> {
    fn table<'de, V: Visitor<'de>>(
        self,
        fields: Option<&'static [&'static str]>,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let r = match self.value {
            DeValue::Table(t) => visitor.visit_map(MapDe::new(self.ctx, t, &self.path, fields)),
            _ => {
                self.mismatch("a table");
                visitor.visit_map(MapDe::empty(self.ctx, &self.path))
            }
        };
        self.catch(r)
    }
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

struct SeqDe<'s> {
    ctx: &'s Ctx,
    items: &'s [toml::Spanned<DeValue<'s>>],
    path: &'s str,
    index: usize,
    /// Items to hand out: more than `items.len()` pads with zero values (fixed-size tuples).
    len: usize,
}

impl<'de> de::SeqAccess<'de> for SeqDe<'_> {
    type Error = DeError;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        if self.index >= self.len {
            return Ok(None);
        }
        let i = self.index;
        self.index += 1;
        match self.items.get(i) {
            Some(item) => {
                let path = format!("{}[{i}]", self.path);
                self.ctx
                    .spans
                    .borrow_mut()
                    .insert(path.clone(), item.span());
                seed.deserialize(ValueDe {
                    ctx: self.ctx,
                    value: item.get_ref(),
                    span: item.span(),
                    path,
                })
                .map(Some)
            }
            None => seed.deserialize(Zero).map(Some),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.len - self.index)
    }
}

struct MapDe<'s, 'i> {
    ctx: &'s Ctx,
    entries: Vec<(
        &'s toml::Spanned<toml::de::DeString<'i>>,
        &'s toml::Spanned<DeValue<'i>>,
    )>,
    path: &'s str,
    next: usize,
}

impl<'s, 'i> MapDe<'s, 'i> {
    fn new(
        ctx: &'s Ctx,
        table: &'s DeTable<'i>,
        path: &'s str,
        fields: Option<&'static [&'static str]>,
    ) -> Self {
        let mut entries = Vec::with_capacity(table.len());
        for (k, v) in table.iter() {
            let key: &str = k.get_ref();
            let known = fields.is_none_or(|f| f.contains(&key));
            if known {
                entries.push((k, v));
            } else {
                let allowed = fields.map(quoted).unwrap_or_default();
                ctx.record(
                    k.span(),
                    &join(path, key),
                    format!("unknown field \"{key}\", expected one of {allowed}"),
                );
            }
        }
        MapDe {
            ctx,
            entries,
            path,
            next: 0,
        }
    }

    fn empty(ctx: &'s Ctx, path: &'s str) -> Self {
        MapDe {
            ctx,
            entries: Vec::new(),
            path,
            next: 0,
        }
    }
}

impl<'de> de::MapAccess<'de> for MapDe<'_, '_> {
    type Error = DeError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.entries.get(self.next) {
            Some((k, _)) => {
                let key: &str = k.get_ref();
                seed.deserialize(IntoDeserializer::<DeError>::into_deserializer(key))
                    .map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DeError> {
        let Some((k, v)) = self.entries.get(self.next) else {
            return Err(DeError::Custom(
                "value requested past the end of a table".into(),
            ));
        };
        self.next += 1;
        let path = join(self.path, k.get_ref());
        self.ctx.spans.borrow_mut().insert(path.clone(), v.span());
        seed.deserialize(ValueDe {
            ctx: self.ctx,
            value: v.get_ref(),
            span: v.span(),
            path,
        })
    }
}
