//! The serde `Deserializer` with Go's decoding rules, over a JSON tree that keeps the
//! document's key order (Go's "last key wins" and "first unknown key" depend on it).

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Error, Number, Value};

use super::{fields, types};

/// A JSON document with objects in document order, duplicates kept.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Json {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Self>),
    Object(Vec<(String, Self)>),
}

impl From<Value> for Json {
    fn from(v: Value) -> Self {
        match v {
            Value::Null => Self::Null,
            Value::Bool(b) => Self::Bool(b),
            Value::Number(n) => Self::Number(n),
            Value::String(s) => Self::String(s),
            Value::Array(a) => Self::Array(a.into_iter().map(Self::from).collect()),
            Value::Object(m) => Self::Object(m.into_iter().map(|(k, v)| (k, v.into())).collect()),
        }
    }
}

impl<'de> de::Deserialize<'de> for Json {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
        Ok(Json::Bool(b))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
        Ok(Json::Number(n.into()))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
        Ok(Json::Number(n.into()))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Json, E> {
        Number::from_f64(n)
            .map(Json::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }
    fn visit_str<E>(self, s: &str) -> Result<Json, E> {
        Ok(Json::String(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Json, E> {
        Ok(Json::String(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Json::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut out = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Json>()? {
            out.push((k, v));
        }
        Ok(Json::Object(out))
    }
}

/// Where a value sits, for Go's type errors (Go: decodeState.errorContext): the innermost
/// struct, the JSON path of field names from the document's root (list indexes and map keys
/// are not part of it), and whether the value is an element of that field's list or map.
#[derive(Debug, Clone, Default)]
pub(super) struct Ctx {
    strukt: &'static str,
    path: String,
    field: String,
    elem: bool,
}

impl Ctx {
    /// The value of `field` of struct `strukt`, below `self`.
    fn field(&self, strukt: &'static str, field: &str) -> Self {
        let path = if self.path.is_empty() {
            field.to_owned()
        } else {
            format!("{}.{field}", self.path)
        };
        Self {
            strukt,
            path,
            field: field.to_owned(),
            elem: false,
        }
    }

    /// An element of this value's list or map.
    fn elem(&self) -> Self {
        Self {
            elem: true,
            ..self.clone()
        }
    }

    /// The Go type of the value as Go's errors name it: pointers are followed before Go
    /// stores into them, and an element has the element type.
    fn go_type(&self) -> Option<&'static str> {
        let t = types::go_type(self.strukt, &self.field)?;
        let t = if self.elem {
            t.strip_prefix("[]")
                .or_else(|| t.strip_prefix("map[string]"))
                .unwrap_or(t)
        } else {
            t
        };
        Some(t.trim_start_matches('*'))
    }
}

/// The range of a Go integer type.
fn go_int_range(t: &str) -> Option<(i128, i128)> {
    match t {
        "int" | "int64" | "time.Duration" => Some((i64::MIN.into(), i64::MAX.into())),
        "int32" => Some((i32::MIN.into(), i32::MAX.into())),
        "uint64" => Some((0, u64::MAX.into())),
        _ => None,
    }
}

/// nats-server's enums whose `UnmarshalJSON` refuses anything but their names with
/// `can not unmarshal "<the JSON>"` (Go: store.go, consumer.go).
const GO_ENUMS: &[&str] = &[
    "server.RetentionPolicy",
    "server.DiscardPolicy",
    "server.StorageType",
    "server.DeliverPolicy",
    "server.AckPolicy",
    "server.ReplayPolicy",
];

/// The deserializer of one value; `unknowns` collects the keys no struct field matched.
pub(super) struct De<'u> {
    v: Json,
    unknowns: &'u RefCell<Vec<String>>,
    ctx: Ctx,
}

impl<'u> De<'u> {
    pub(super) fn new(v: impl Into<Json>, unknowns: &'u RefCell<Vec<String>>) -> Self {
        Self {
            v: v.into(),
            unknowns,
            ctx: Ctx::default(),
        }
    }

    fn with_ctx(v: Json, unknowns: &'u RefCell<Vec<String>>, ctx: Ctx) -> Self {
        Self { v, unknowns, ctx }
    }

    /// How Go's errors describe the JSON value.
    fn kind_word(&self) -> &'static str {
        match &self.v {
            Json::Null => "null",
            Json::Bool(_) => "bool",
            Json::Number(_) => "number",
            Json::String(_) => "string",
            Json::Array(_) => "array",
            Json::Object(_) => "object",
        }
    }

    /// Go's error for a value that does not fit the field (Go: encoding/json
    /// UnmarshalTypeError, or the `UnmarshalJSON` of the field's type). `value`: Go's
    /// description of the JSON value; `rust`: the type to name when the field is not listed.
    fn type_error(&self, value: &str, rust: &str) -> Error {
        let ty = self.ctx.go_type().unwrap_or(rust);
        if GO_ENUMS.contains(&ty) {
            let raw = serde_json::to_string(&JsonRef(&self.v)).unwrap_or_default();
            return Error::custom(format!("can not unmarshal {}", super::go_quote(&raw)));
        }
        if ty == "time.Time" {
            return Error::custom("Time.UnmarshalJSON: input is not a JSON string");
        }
        if self.ctx.strukt.is_empty() {
            return Error::custom(format!(
                "json: cannot unmarshal {value} into Go value of type {ty}"
            ));
        }
        Error::custom(format!(
            "json: cannot unmarshal {value} into Go struct field {}.{} of type {ty}",
            self.ctx.strukt, self.ctx.path
        ))
    }

    /// An integer of Rust range `lo..=hi` (`rust` names it): Go refuses a number that is not
    /// an integer in its field's range with `number <literal>`.
    fn int<'de, V: Visitor<'de>>(
        self,
        visitor: V,
        lo: i128,
        hi: i128,
        rust: &str,
    ) -> Result<V::Value, Error> {
        match &self.v {
            Json::Null => visitor.visit_u64(0),
            Json::Number(n) => {
                let (glo, ghi) = self
                    .ctx
                    .go_type()
                    .and_then(go_int_range)
                    .unwrap_or((lo, hi));
                let int = n
                    .as_i64()
                    .map(i128::from)
                    .or_else(|| n.as_u64().map(i128::from));
                match int {
                    Some(i) if (glo..=ghi).contains(&i) && (lo..=hi).contains(&i) => {
                        de::Deserializer::deserialize_any(self, visitor)
                    }
                    _ => Err(self.type_error(&format!("number {n}"), rust)),
                }
            }
            _ => Err(self.type_error(self.kind_word(), rust)),
        }
    }
}

/// Finds the declared field a key names: the exact name first, then one equal under Go's case
/// folding (Go: encoding/json `fields.byExactName`, then `byFoldedName`).
pub(super) fn resolve<'f>(key: &str, names: &[&'f str]) -> Option<&'f str> {
    if let Some(n) = names.iter().find(|n| **n == key) {
        return Some(n);
    }
    names.iter().copied().find(|n| fold_eq(key, n))
}

/// Go's `bytes.EqualFold` of a key against an ASCII field name: ASCII letters without case,
/// and the two non-ASCII letters whose fold sets hold ASCII ones, `ſ` (s) and the Kelvin sign
/// (k).
fn fold_eq(key: &str, name: &str) -> bool {
    let mut k = key.chars();
    for n in name.chars() {
        let Some(c) = k.next() else {
            return false;
        };
        let c = match c {
            '\u{17f}' => 's',
            '\u{212a}' => 'k',
            c => c.to_ascii_lowercase(),
        };
        if c != n.to_ascii_lowercase() {
            return false;
        }
    }
    k.next().is_none()
}

impl<'de> de::Deserializer<'de> for De<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let unknowns = self.unknowns;
        match self.v {
            Json::Null => visitor.visit_unit(),
            Json::Bool(b) => visitor.visit_bool(b),
            Json::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Json::String(s) => visitor.visit_string(s),
            Json::Array(a) => visitor.visit_seq(Seq {
                it: a.into_iter(),
                unknowns,
                ctx: self.ctx.elem(),
            }),
            Json::Object(m) => visitor.visit_map(Map {
                it: m.into_iter(),
                value: None,
                unknowns,
                ctx: self.ctx.elem(),
                strukt: None,
            }),
        }
    }

    // Go: `null` where no field is being set (a list element, a map value, the document)
    // decodes into a fresh, zero value.
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.v {
            Json::Null => visitor.visit_bool(false),
            Json::Bool(_) => self.deserialize_any(visitor),
            _ => Err(self.type_error(self.kind_word(), "bool")),
        }
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.int(visitor, i64::MIN.into(), i64::MAX.into(), "int64")
    }
    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.int(visitor, i8::MIN.into(), i8::MAX.into(), "int8")
    }
    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.int(visitor, i16::MIN.into(), i16::MAX.into(), "int16")
    }
    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.int(visitor, i32::MIN.into(), i32::MAX.into(), "int32")
    }
    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.int(visitor, i64::MIN.into(), u64::MAX.into(), "int64")
    }
    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.int(visitor, 0, u8::MAX.into(), "uint8")
    }
    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.int(visitor, 0, u16::MAX.into(), "uint16")
    }
    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.int(visitor, 0, u32::MAX.into(), "uint32")
    }
    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.int(visitor, 0, u64::MAX.into(), "uint64")
    }
    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.int(visitor, 0, u64::MAX.into(), "uint64")
    }
    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_f64(visitor)
    }
    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.v {
            Json::Null => visitor.visit_u64(0),
            Json::Number(_) => self.deserialize_any(visitor),
            _ => Err(self.type_error(self.kind_word(), "float64")),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.v {
            Json::Null => visitor.visit_str(""),
            Json::String(_) => self.deserialize_any(visitor),
            _ => Err(self.type_error(self.kind_word(), "string")),
        }
    }
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }
    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }
    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.v {
            Json::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.v {
            Json::Null => visitor.visit_seq(Seq {
                it: Vec::new().into_iter(),
                unknowns: self.unknowns,
                ctx: self.ctx,
            }),
            Json::Array(_) => self.deserialize_any(visitor),
            _ => Err(self.type_error(self.kind_word(), "[]interface {}")),
        }
    }
    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    /// A map (`metadata`): keys stay as sent.
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.v {
            Json::Null => visitor.visit_map(Map {
                it: Vec::new().into_iter(),
                value: None,
                unknowns: self.unknowns,
                ctx: self.ctx,
                strukt: None,
            }),
            Json::Object(_) => self.deserialize_any(visitor),
            _ => Err(self.type_error(self.kind_word(), "map[string]string")),
        }
    }

    /// A struct: keys renamed to the declared fields they match, `null` fields dropped,
    /// unknown keys collected, a repeated field's last value kept.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        names: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let entries = match self.v {
            Json::Null => Vec::new(),
            Json::Object(m) => struct_entries(name, names, m, self.unknowns)?,
            _ => {
                let go = format!("server.{name}");
                return Err(self.type_error(self.kind_word(), &go));
            }
        };
        visitor.visit_map(Map {
            it: entries.into_iter(),
            value: None,
            unknowns: self.unknowns,
            ctx: self.ctx,
            strukt: Some(name),
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        // No request carries a serde enum today; decode one as serde_json would.
        let v = serde_json::to_value(JsonRef(&self.v))?;
        de::Deserializer::deserialize_enum(v, name, variants, visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

fn struct_entries(
    name: &'static str,
    names: &'static [&'static str],
    m: Vec<(String, Json)>,
    unknowns: &RefCell<Vec<String>>,
) -> Result<Vec<(String, Json)>, Error> {
    let mut out: Vec<(String, Json)> = Vec::with_capacity(m.len());
    for (key, v) in m {
        let go = fields::go_fields(name);
        let Some(field) = resolve(&key, names) else {
            match resolve(&key, go) {
                // nats-server has the field and natsd does not use it: skipped, but a `null`
                // nats-server refuses is refused here too.
                Some(f) => {
                    if let (Json::Null, Some(why)) = (&v, fields::null_refused(name, f)) {
                        return Err(Error::custom(why));
                    }
                }
                None => unknowns.borrow_mut().push(key),
            }
            continue;
        };
        if v == Json::Null {
            if let Some(why) = fields::null_refused(name, field) {
                return Err(Error::custom(why));
            }
            // Go leaves the field as it was, an earlier value for it included.
            continue;
        }
        match out.iter_mut().find(|(f, _)| f == field) {
            Some(slot) => slot.1 = v,
            None => out.push((field.to_owned(), v)),
        }
    }
    Ok(out)
}

struct Seq<'u> {
    it: std::vec::IntoIter<Json>,
    unknowns: &'u RefCell<Vec<String>>,
    /// The context of each element.
    ctx: Ctx,
}

impl<'de> SeqAccess<'de> for Seq<'_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.it.next() {
            Some(v) => seed
                .deserialize(De::with_ctx(v, self.unknowns, self.ctx.clone()))
                .map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.it.len())
    }
}

struct Map<'u> {
    it: std::vec::IntoIter<(String, Json)>,
    value: Option<(String, Json)>,
    unknowns: &'u RefCell<Vec<String>>,
    /// A struct's: the struct's own context; a map's: the context of each value.
    ctx: Ctx,
    /// The struct whose fields these are; `None` for a map.
    strukt: Option<&'static str>,
}

impl<'de> MapAccess<'de> for Map<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.it.next() {
            Some((k, v)) => {
                self.value = Some((k.clone(), v));
                seed.deserialize(de::value::StringDeserializer::<Error>::new(k))
                    .map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, Error> {
        let (k, v) = self
            .value
            .take()
            .ok_or_else(|| Error::custom("value asked for before its key"))?;
        let ctx = match self.strukt {
            Some(name) => self.ctx.field(name, &k),
            None => self.ctx.clone(),
        };
        seed.deserialize(De::with_ctx(v, self.unknowns, ctx))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.it.len())
    }
}

/// Serializes a [`Json`] back (for the enum fallback).
struct JsonRef<'a>(&'a Json);

impl serde::Serialize for JsonRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Number(n) => n.serialize(s),
            Json::String(v) => s.serialize_str(v),
            Json::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(&JsonRef(v))?;
                }
                seq.end()
            }
            Json::Object(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(k, &JsonRef(v))?;
                }
                map.end()
            }
        }
    }
}
