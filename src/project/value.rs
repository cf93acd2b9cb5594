//! The template's document tree.
//!
//! CloudFormation templates arrive as YAML (with short-form tags such as `!Ref`) or JSON. Both are
//! read into this one tree so the rest of lamb never sees the difference: short forms are rewritten
//! into their long forms (`!Ref X` becomes `{"Ref": "X"}`) while parsing, unknown tags are rejected
//! by the parser itself so their errors carry a line and column, a key written twice keeps its
//! last value (as SAM's loader does; the loader warns about it), and map order
//! is kept so the template can be written back in the order the user wrote it.

use std::fmt;

use indexmap::IndexMap;
use serde::de::{self, Deserialize, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// A YAML/JSON value with intrinsic functions in long form.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Seq(Vec<Value>),
    Map(IndexMap<String, Value>),
}

/// Short-form tags CloudFormation accepts, with the long-form key each stands for.
const SHORT_FORMS: &[(&str, &str)] = &[
    ("Ref", "Ref"),
    ("Condition", "Condition"),
    ("Base64", "Fn::Base64"),
    ("Cidr", "Fn::Cidr"),
    ("FindInMap", "Fn::FindInMap"),
    ("GetAtt", "Fn::GetAtt"),
    ("GetAZs", "Fn::GetAZs"),
    ("ImportValue", "Fn::ImportValue"),
    ("Join", "Fn::Join"),
    ("Select", "Fn::Select"),
    ("Split", "Fn::Split"),
    ("Sub", "Fn::Sub"),
    ("Transform", "Fn::Transform"),
    ("And", "Fn::And"),
    ("Equals", "Fn::Equals"),
    ("If", "Fn::If"),
    ("Not", "Fn::Not"),
    ("Or", "Fn::Or"),
    ("Length", "Fn::Length"),
    ("ToJsonString", "Fn::ToJsonString"),
];

/// The tag names lamb understands, for error messages.
pub fn known_tags() -> String {
    SHORT_FORMS.iter().map(|(tag, _)| format!("!{tag}")).collect::<Vec<_>>().join(", ")
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&IndexMap<String, Value>> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Value]> {
        match self {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// Looks up `key` when this is a map.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map().and_then(|m| m.get(key))
    }

    /// The intrinsic function this value is, if it is a one-key map whose key is `Ref`,
    /// `Condition` or `Fn::*`.
    pub fn as_intrinsic(&self) -> Option<(&str, &Value)> {
        let map = self.as_map()?;
        if map.len() != 1 {
            return None;
        }
        let (key, arg) = map.iter().next()?;
        (key == "Ref" || key == "Condition" || key.starts_with("Fn::")).then_some((key.as_str(), arg))
    }

    /// A scalar rendered the way CloudFormation stringifies it.
    pub fn scalar_string(&self) -> Option<String> {
        match self {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// A short description of the value's kind for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a map",
        }
    }

    /// JSON with map keys sorted at every level: the same value always gives the same text,
    /// whatever order its maps were written in (for hashing).
    pub fn canonical_json(&self) -> String {
        let mut out = String::new();
        self.write_canonical(&mut out);
        out
    }

    fn write_canonical(&self, out: &mut String) {
        match self {
            Value::Seq(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_canonical(out);
                }
                out.push(']');
            }
            Value::Map(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::String(k.clone()).to_string());
                    out.push(':');
                    m[k].write_canonical(out);
                }
                out.push('}');
            }
            scalar => out.push_str(&scalar.to_json().to_string()),
        }
    }

    /// Converts to `serde_json::Value` (for JSON output).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => serde_json::Value::Number(n.clone()),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Seq(s) => serde_json::Value::Array(s.iter().map(Value::to_json).collect()),
            Value::Map(m) => serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML or JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom(format!("the number {v} cannot be represented; quote it")))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = IndexMap::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(key) = map.next_key::<Key>()? {
            if key.0 == "<<" {
                return Err(de::Error::custom(
                    "YAML merge keys (`<<`) are not supported by CloudFormation; write the keys out in full",
                ));
            }
            // A key written twice keeps its last value, as SAM's loader does (and in the first
            // one's place); the template loader warns with both lines (see `duplicates`).
            let value = map.next_value()?;
            out.insert(key.0, value);
        }
        Ok(Value::Map(out))
    }

    /// serde_norway hands a tagged node (`!Ref Foo`) over as an enum whose variant is the tag.
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        let (tag, variant): (String, _) = data.variant()?;
        let Some((_, long)) = SHORT_FORMS.iter().find(|(short, _)| *short == tag) else {
            return Err(de::Error::custom(format!(
                "unknown tag `!{tag}`; CloudFormation understands {}",
                known_tags()
            )));
        };
        let arg: Value = variant.newtype_variant()?;
        let arg = match (tag.as_str(), arg) {
            // `!GetAtt Res.Attr` is the dotted form of `Fn::GetAtt: [Res, Attr]`.
            ("GetAtt", Value::String(s)) => match s.split_once('.') {
                Some((res, attr)) => Value::Seq(vec![res.into(), attr.into()]),
                None => {
                    return Err(de::Error::custom(format!("`!GetAtt {s}` needs the form `Resource.Attribute`")));
                }
            },
            // `!GetAZs` with no argument means the current region.
            ("GetAZs", Value::Null) => Value::String(String::new()),
            (_, arg) => arg,
        };
        let mut map = IndexMap::with_capacity(1);
        map.insert((*long).to_string(), arg);
        Ok(Value::Map(map))
    }
}

/// A map key: YAML allows scalars of any kind as keys; CloudFormation treats them as strings.
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::Null => Ok(Key("null".into())),
            v => v
                .scalar_string()
                .map(Key)
                .ok_or_else(|| de::Error::custom(format!("a map key must be a string, not {}", v.kind()))),
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Number(n) => n.serialize(serializer),
            Value::String(s) => serializer.serialize_str(s),
            Value::Seq(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Map(m) => {
                let mut map = serializer.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_norway::from_str(s).unwrap()
    }

    #[test]
    fn short_forms_become_long_forms() {
        let v = yaml("A: !Ref P\nB: !GetAtt Fn.Arn\nC: !Sub 'x-${P}'\nD: !If [C, a, !Ref AWS::NoValue]\nE: !GetAZs\n");
        assert_eq!(v.get("A"), Some(&yaml("Ref: P")));
        assert_eq!(v.get("B"), Some(&yaml("Fn::GetAtt: [Fn, Arn]")));
        assert_eq!(v.get("C"), Some(&yaml("Fn::Sub: 'x-${P}'")));
        assert_eq!(v.get("D"), Some(&yaml("Fn::If: [C, a, {Ref: AWS::NoValue}]")));
        assert_eq!(v.get("E"), Some(&yaml("Fn::GetAZs: ''")));
    }

    #[test]
    fn getatt_list_form_is_kept() {
        let v = yaml("A: !GetAtt [Fn, Arn]");
        assert_eq!(v.get("A"), Some(&yaml("Fn::GetAtt: [Fn, Arn]")));
    }

    #[test]
    fn unknown_tag_is_an_error_with_location() {
        let err = serde_norway::from_str::<Value>("A: 1\nB:\n  C: !Reff X\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("unknown tag `!Reff`"), "{msg}");
        let loc = err.location().unwrap();
        assert_eq!((loc.line(), loc.column()), (3, 6));
    }

    #[test]
    fn duplicate_keys_keep_the_last_value_in_the_first_place_in_yaml_and_json() {
        let v = yaml("R:\n  A: 1\n  B: 0\n  A: 2\n");
        assert_eq!(v.get("R"), Some(&yaml("{A: 2, B: 0}")));
        assert_eq!(v.get("R").unwrap().as_map().unwrap().keys().collect::<Vec<_>>(), ["A", "B"]);
        let v: Value = serde_json::from_str("{\"R\": {\"A\": 1,\n \"A\": 2}}").unwrap();
        assert_eq!(v.get("R"), Some(&yaml("{A: 2}")));
    }

    #[test]
    fn merge_keys_are_refused_clearly() {
        let err = serde_norway::from_str::<Value>("base: &b {Runtime: x}\nFn:\n  <<: *b\n  Handler: h\n").unwrap_err();
        assert!(err.to_string().contains("merge keys (`<<`) are not supported"), "{err}");
    }

    #[test]
    fn map_order_is_preserved() {
        let v = yaml("z: 1\na: 2\nm: 3\n");
        let keys: Vec<_> = v.as_map().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["z", "a", "m"]);
    }

    #[test]
    fn non_string_keys_become_strings() {
        let v = yaml("1: a\ntrue: b\n");
        assert_eq!(v.get("1"), Some(&Value::from("a")));
        assert_eq!(v.get("true"), Some(&Value::from("b")));
    }
}
