//! A serde `Deserializer` over toml's spanned document tree that does not stop at the first
//! problem.
//!
//! `toml::from_str` reports one error and gives up. An installer fixing a config by trial and
//! error wants every problem at once, each with `file:line:column` and the field path. This
//! deserializer walks the parsed tree ([`toml::de::DeTable`]) and, where serde's derived code
//! would fail, records a [`Problem`] and hands the visitor a harmless placeholder instead, so the
//! walk continues:
//!
//! - a value of the wrong type is recorded and replaced by a zero value of the expected type;
//! - a key that the struct does not declare (`deny_unknown_fields`) is recorded and skipped;
//! - an enum string that names no variant is recorded and replaced by the first variant.
//!
//! Structs are expected to carry `#[serde(default)]` at the container level, so a missing key
//! never aborts the walk; which keys are required is checked afterwards against [`Spans`], which
//! records the position of every value seen, by path. The same positions let later semantic
//! checks (an invalid polygon, an unknown model) point at the right line.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use toml::de::{DeTable, DeValue};

/// One problem found in a document, located by byte span and field path.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// Byte range in the source the problem points at.
    pub span: Range<usize>,
    /// Field path such as `cameras[0].zones[1].polygon`; empty for the document itself.
    pub path: String,
    /// What is wrong, in plain words.
    pub message: String,
}

/// Where each value of a document sits, by field path.
#[derive(Debug, Default, Clone)]
pub struct Spans {
    values: HashMap<String, Range<usize>>,
}

impl Spans {
    /// The span of the value at `path`, if the document has one there.
    pub fn get(&self, path: &str) -> Option<Range<usize>> {
        self.values.get(path).cloned()
    }

    /// Whether the document sets a value at `path`.
    pub fn contains(&self, path: &str) -> bool {
        self.values.contains_key(path)
    }

    /// The span of `path` or, when it is absent, of its nearest parent that is present
    /// (the document start as a last resort). Used to point at a table that lacks a key.
    pub fn nearest(&self, path: &str) -> Range<usize> {
        let mut p = path;
        loop {
            if let Some(s) = self.values.get(p) {
                return s.clone();
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return 0..0,
            }
        }
    }
}

/// The result of a tolerant walk: the value (with placeholders where problems were found),
/// the positions of every value, and the problems.
#[derive(Debug)]
pub struct Parsed<T> {
    /// The value, unless the walk had to stop (a syntax error, or a visitor's own error).
    pub value: Option<T>,
    /// Positions of every value seen, by path.
    pub spans: Spans,
    /// Every problem found, in no particular order.
    pub problems: Vec<Problem>,
}

impl<T> Parsed<T> {
    /// The value and spans if there were no problems, else the problems.
    pub fn into_result(self) -> Result<(T, Spans), Vec<Problem>> {
        match self.value {
            Some(v) if self.problems.is_empty() => Ok((v, self.spans)),
            _ => Err(self.problems),
        }
    }
}

/// Deserialize `T` from TOML source, collecting every problem instead of stopping at the first.
pub fn from_str<T: DeserializeOwned>(src: &str) -> Parsed<T> {
    let root = match DeTable::parse(src) {
        Ok(root) => root,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            return Parsed {
                value: None,
                spans: Spans::default(),
                problems: vec![Problem {
                    span,
                    path: String::new(),
                    message: format!("TOML syntax error: {}", e.message().trim()),
                }],
            };
        }
    };
    let ctx = Ctx::default();
    let span = root.span();
    let table = DeValue::Table(root.into_inner());
    let result = T::deserialize(ValueDe {
        ctx: &ctx,
        value: &table,
        span,
        path: String::new(),
    });
    let mut problems = ctx.problems.into_inner();
    let value = match result {
        Ok(v) => Some(v),
        Err(DeError::Recorded) => None,
        Err(DeError::Custom(message)) => {
            problems.push(Problem {
                span: 0..0,
                path: String::new(),
                message,
            });
            None
        }
    };
    Parsed {
        value,
        spans: Spans {
            values: ctx.spans.into_inner(),
        },
        problems,
    }
}

/// Add `semantic` problems to `structural` ones, leaving out those about a value (or a part or
/// a parent of a value) that already has a structural problem: a placeholder would only make
/// them misleading.
pub fn merge(mut structural: Vec<Problem>, semantic: Vec<Problem>) -> Vec<Problem> {
    let related = |a: &str, b: &str| {
        a == b
            || (a.starts_with(b) && matches!(a.as_bytes().get(b.len()), Some(b'.' | b'[')))
            || (b.starts_with(a) && matches!(b.as_bytes().get(a.len()), Some(b'.' | b'[')))
    };
    let keep: Vec<Problem> = semantic
        .into_iter()
        .filter(|p| {
            !structural
                .iter()
                .any(|s| !s.path.is_empty() && related(&s.path, &p.path))
        })
        .collect();
    structural.extend(keep);
    structural
}

#[derive(Default)]
struct Ctx {
    problems: RefCell<Vec<Problem>>,
    spans: RefCell<HashMap<String, Range<usize>>>,
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
#[derive(Debug)]
enum DeError {
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

struct ValueDe<'c, 'a, 'i> {
    ctx: &'c Ctx,
    value: &'a DeValue<'i>,
    span: Range<usize>,
    path: String,
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

/// A deserializer that yields the zero value of whatever is asked: the placeholder used for
/// the missing items of a too-short fixed-size array (already recorded as a problem).
struct Zero;

macro_rules! zero_method {
    ($($name:ident => $visit:ident($($v:expr)?)),* $(,)?) => {
        $(fn $name<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            visitor.$visit($($v)?)
        })*
    };
}

impl<'de> de::Deserializer<'de> for Zero {
    type Error = DeError;

    zero_method! {
        deserialize_any => visit_unit(),
        deserialize_bool => visit_bool(false),
        deserialize_i8 => visit_i64(0),
        deserialize_i16 => visit_i64(0),
        deserialize_i32 => visit_i64(0),
        deserialize_i64 => visit_i64(0),
        deserialize_u8 => visit_u64(0),
        deserialize_u16 => visit_u64(0),
        deserialize_u32 => visit_u64(0),
        deserialize_u64 => visit_u64(0),
        deserialize_f32 => visit_f64(0.0),
        deserialize_f64 => visit_f64(0.0),
        deserialize_char => visit_char('\0'),
        deserialize_str => visit_str(""),
        deserialize_string => visit_str(""),
        deserialize_bytes => visit_bytes(&[]),
        deserialize_byte_buf => visit_bytes(&[]),
        deserialize_option => visit_none(),
        deserialize_unit => visit_unit(),
        deserialize_identifier => visit_str(""),
        deserialize_ignored_any => visit_unit(),
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_seq(de::value::SeqDeserializer::new(std::iter::empty::<Zero>()))
    }
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_map(de::value::MapDeserializer::new(std::iter::empty::<(
            Zero,
            Zero,
        )>()))
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }
    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_seq(de::value::SeqDeserializer::new(
            std::iter::repeat_with(|| Zero).take(len),
        ))
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_tuple(len, visitor)
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let first = variants.first().copied().unwrap_or("");
        visitor.visit_enum(IntoDeserializer::<DeError>::into_deserializer(first))
    }
}

impl<'de> IntoDeserializer<'de, DeError> for Zero {
    type Deserializer = Zero;
    fn into_deserializer(self) -> Zero {
        self
    }
}

/// Lines and columns of a source, for turning byte spans into `line:column` (both 1-based;
/// the column counts characters, as editors do).
pub struct LineIndex<'s> {
    src: &'s str,
    starts: Vec<usize>,
}

impl<'s> LineIndex<'s> {
    /// Index the line starts of `src`.
    pub fn new(src: &'s str) -> Self {
        let mut starts = vec![0];
        starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { src, starts }
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.src.len());
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let col = self
            .src
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        (line, col)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Inner {
        name: String,
        size: u16,
        point: [f32; 2],
        mode: Mode,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        #[default]
        Tcp,
        Udp,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Outer {
        title: String,
        inner: Vec<Inner>,
        ratio: Option<f64>,
    }

    #[test]
    fn a_valid_document_deserializes_with_spans() {
        let src = "title = \"x\"\nratio = 2\n[[inner]]\nname = \"a\"\nsize = 7\npoint = [0.5, 1]\nmode = \"udp\"\n";
        let (v, spans) = from_str::<Outer>(src).into_result().expect("valid");
        assert_eq!(v.title, "x");
        assert_eq!(v.ratio, Some(2.0));
        assert_eq!(
            v.inner,
            vec![Inner {
                name: "a".into(),
                size: 7,
                point: [0.5, 1.0],
                mode: Mode::Udp
            }]
        );
        let s = spans.get("inner[0].size").expect("span");
        assert_eq!(&src[s], "7");
        assert!(spans.contains("inner[0]"));
        assert!(!spans.contains("inner[0].nope"));
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let src = "title = 3\nextra = 1\n[[inner]]\nname = \"a\"\nsize = 70000\n[[inner]]\npoint = [1]\nmode = \"sctp\"\nbogus = true\n";
        let problems = from_str::<Outer>(src).into_result().expect_err("invalid");
        let mut found: Vec<(String, String)> = problems
            .iter()
            .map(|p| (p.path.clone(), p.message.clone()))
            .collect();
        found.sort();
        let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "extra",
                "inner[0].size",
                "inner[1].bogus",
                "inner[1].mode",
                "inner[1].point",
                "title"
            ],
            "{found:?}"
        );
        let title = problems.iter().find(|p| p.path == "title").expect("title");
        assert_eq!(title.message, "expected a string, found an integer");
        assert_eq!(&src[title.span.clone()], "3");
        let extra = problems.iter().find(|p| p.path == "extra").expect("extra");
        assert!(
            extra.message.starts_with("unknown field \"extra\""),
            "{}",
            extra.message
        );
        let size = problems
            .iter()
            .find(|p| p.path == "inner[0].size")
            .expect("size");
        assert!(size.message.contains("out of range"), "{}", size.message);
    }

    #[test]
    fn syntax_errors_are_located() {
        let problems = from_str::<Outer>("title = \"x\"\ninner = [\n")
            .into_result()
            .expect_err("syntax");
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.starts_with("TOML syntax error"));
    }

    #[test]
    fn nearest_falls_back_to_parent() {
        let src = "[[inner]]\nname = \"a\"\n";
        let (_, spans) = from_str::<Outer>(src).into_result().expect("valid");
        assert_eq!(
            spans.nearest("inner[0].size"),
            spans.get("inner[0]").expect("inner")
        );
        assert_eq!(spans.nearest("nothing.here"), 0..0);
    }

    #[test]
    fn line_index_counts_characters() {
        let idx = LineIndex::new("ab\ncé d\n");
        assert_eq!(idx.line_col(0), (1, 1));
        assert_eq!(idx.line_col(3), (2, 1));
        assert_eq!(idx.line_col(7), (2, 4));
    }
}
