//! Plain serde values to and from automerge objects, for the server-owned parts (the instruction,
//! assignment entries): they are written as real maps and lists so any automerge client can read
//! `doc.instruction.site` without knowing our Rust types.

use automerge::{AutoCommit, ObjId, ObjType, ReadDoc, ScalarValue, Value, transaction::Transactable};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Map, Number, Value as Json};

use crate::schema::SchemaViolation;

/// Writes `value` as `obj[key]`, replacing whatever was there.
pub(crate) fn put<T: Serialize>(
    doc: &mut AutoCommit,
    obj: &ObjId,
    key: &str,
    value: &T,
) -> Result<(), PutError> {
    let json = serde_json::to_value(value).map_err(PutError::Serialize)?;
    put_json(doc, obj, key, &json)
}

/// Reads the object at `obj` back into `T`, refusing values `T` does not describe.
pub(crate) fn get<T: DeserializeOwned>(
    doc: &impl ReadDoc,
    obj: &ObjId,
    path: &str,
) -> Result<T, SchemaViolation> {
    let json = object_json(doc, obj, path)?;
    serde_json::from_value(json).map_err(|_| SchemaViolation::InvalidValue {
        path: path.to_owned(),
        expected: "the layout the server writes",
    })
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum PutError {
    #[error("cannot represent the value: {0}")]
    Serialize(serde_json::Error),
    #[error(transparent)]
    Automerge(#[from] automerge::AutomergeError),
}

fn put_json(doc: &mut AutoCommit, obj: &ObjId, key: &str, value: &Json) -> Result<(), PutError> {
    match value {
        Json::Array(items) => {
            let list = doc.put_object(obj, key, ObjType::List)?;
            for (i, item) in items.iter().enumerate() {
                insert_json(doc, &list, i, item)?;
            }
        }
        Json::Object(fields) => {
            let map = doc.put_object(obj, key, ObjType::Map)?;
            for (k, v) in fields {
                put_json(doc, &map, k, v)?;
            }
        }
        scalar => doc.put(obj, key, scalar_of(scalar))?,
    }
    Ok(())
}

fn insert_json(doc: &mut AutoCommit, list: &ObjId, index: usize, value: &Json) -> Result<(), PutError> {
    match value {
        Json::Array(items) => {
            let inner = doc.insert_object(list, index, ObjType::List)?;
            for (i, item) in items.iter().enumerate() {
                insert_json(doc, &inner, i, item)?;
            }
        }
        Json::Object(fields) => {
            let map = doc.insert_object(list, index, ObjType::Map)?;
            for (k, v) in fields {
                put_json(doc, &map, k, v)?;
            }
        }
        scalar => doc.insert(list, index, scalar_of(scalar))?,
    }
    Ok(())
}

fn scalar_of(value: &Json) -> ScalarValue {
    match value {
        Json::Bool(b) => ScalarValue::Boolean(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => ScalarValue::Int(i),
            (None, Some(u), _) => ScalarValue::Uint(u),
            (None, None, Some(f)) => ScalarValue::F64(f),
            (None, None, None) => ScalarValue::Null,
        },
        Json::String(s) => ScalarValue::Str(s.as_str().into()),
        Json::Null | Json::Array(_) | Json::Object(_) => ScalarValue::Null,
    }
}

fn object_json(doc: &impl ReadDoc, obj: &ObjId, path: &str) -> Result<Json, SchemaViolation> {
    let ty = doc
        .object_type(obj)
        .map_err(|_| SchemaViolation::InvalidValue { path: path.to_owned(), expected: "an object" })?;
    match ty {
        ObjType::Map | ObjType::Table => {
            let mut fields = Map::new();
            for k in doc.keys(obj) {
                let child_path = crate::schema::join(path, &k);
                if let Some((v, id)) = doc.get(obj, k.as_str()).ok().flatten() {
                    fields.insert(k, value_json(doc, v, &id, &child_path)?);
                }
            }
            Ok(Json::Object(fields))
        }
        ObjType::List => {
            let mut items = Vec::new();
            for i in 0..doc.length(obj) {
                let child_path = format!("{path}[{i}]");
                if let Some((v, id)) = doc.get(obj, i).ok().flatten() {
                    items.push(value_json(doc, v, &id, &child_path)?);
                }
            }
            Ok(Json::Array(items))
        }
        ObjType::Text => doc
            .text(obj)
            .map(Json::String)
            .map_err(|_| SchemaViolation::InvalidValue { path: path.to_owned(), expected: "text" }),
    }
}

fn value_json(doc: &impl ReadDoc, value: Value<'_>, id: &ObjId, path: &str) -> Result<Json, SchemaViolation> {
    let invalid = || SchemaViolation::InvalidValue {
        path: path.to_owned(),
        expected: "a string, number, boolean or null",
    };
    match value {
        Value::Object(_) => object_json(doc, id, path),
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(s) => Ok(Json::String(s.to_string())),
            ScalarValue::Int(i) | ScalarValue::Timestamp(i) => Ok(Json::Number((*i).into())),
            ScalarValue::Uint(u) => Ok(Json::Number((*u).into())),
            ScalarValue::F64(f) => Number::from_f64(*f).map(Json::Number).ok_or_else(invalid),
            ScalarValue::Boolean(b) => Ok(Json::Bool(*b)),
            ScalarValue::Null => Ok(Json::Null),
            ScalarValue::Bytes(_) | ScalarValue::Counter(_) | ScalarValue::Unknown { .. } => Err(invalid()),
        },
    }
}
