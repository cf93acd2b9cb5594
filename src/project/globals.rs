//! The template's `Globals` section, merged into resources the way the SAM translator does it
//! (samtranslator/plugins/globals/globals.py): a resource's own value wins for scalars and
//! intrinsics, maps merge key by key, and lists are the global items followed by the local ones.

use indexmap::IndexMap;

use super::value::Value;

/// Globals sections SAM accepts, and the resource type each applies to.
pub const SECTIONS: &[(&str, &str)] = &[
    ("Function", "AWS::Serverless::Function"),
    ("Api", "AWS::Serverless::Api"),
    ("HttpApi", "AWS::Serverless::HttpApi"),
    ("SimpleTable", "AWS::Serverless::SimpleTable"),
    ("StateMachine", "AWS::Serverless::StateMachine"),
    ("LayerVersion", "AWS::Serverless::LayerVersion"),
    ("CapacityProvider", "AWS::Serverless::CapacityProvider"),
    ("WebSocketApi", "AWS::Serverless::WebSocketApi"),
];

/// Merges `global` under `local`: what the resource says wins, what it leaves out comes from
/// Globals.
pub fn merge(global: &Value, local: &Value) -> Value {
    match (global, local) {
        (Value::Map(g), Value::Map(l)) if global.as_intrinsic().is_none() && local.as_intrinsic().is_none() => {
            let mut out: IndexMap<String, Value> = g.clone();
            for (k, lv) in l {
                let merged = match g.get(k) {
                    Some(gv) => merge(gv, lv),
                    None => lv.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Map(out)
        }
        (Value::Seq(g), Value::Seq(l)) => Value::Seq(g.iter().chain(l).cloned().collect()),
        _ => local.clone(),
    }
}

/// Applies the Globals `section` to a resource's `properties`, honouring the resource's
/// `IgnoreGlobals` attribute (`"*"` or a list of property names).
pub fn apply(section: Option<&Value>, properties: &Value, ignore: Option<&Value>) -> Value {
    let Some(Value::Map(section)) = section else {
        return properties.clone();
    };
    let ignored = |key: &str| match ignore {
        Some(Value::String(s)) => s == "*",
        Some(Value::Seq(items)) => items.iter().any(|i| i.as_str() == Some(key)),
        _ => false,
    };
    let empty = IndexMap::new();
    let local = properties.as_map().unwrap_or(&empty);
    let mut out = IndexMap::new();
    for (k, gv) in section {
        if ignored(k) {
            continue;
        }
        let merged = match local.get(k) {
            Some(lv) => merge(gv, lv),
            None => gv.clone(),
        };
        out.insert(k.clone(), merged);
    }
    for (k, lv) in local {
        if !out.contains_key(k) {
            out.insert(k.clone(), lv.clone());
        }
    }
    Value::Map(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_norway::from_str(s).unwrap()
    }

    #[test]
    fn merges_like_sam() {
        let global = yaml(
            "Runtime: python3.12\nTimeout: 10\nLayers: [!Ref Common]\nEnvironment:\n  Variables:\n    A: g\n    B: g\n",
        );
        let local = yaml(
            "Timeout: 30\nLayers: [arn:aws:lambda:x]\nEnvironment:\n  Variables:\n    B: l\n    C: l\nHandler: app.h\n",
        );
        let merged = apply(Some(&global), &local, None);
        assert_eq!(merged.get("Runtime"), Some(&yaml("python3.12")));
        assert_eq!(merged.get("Timeout"), Some(&yaml("30")));
        assert_eq!(merged.get("Layers"), Some(&yaml("[!Ref Common, 'arn:aws:lambda:x']")));
        assert_eq!(merged.get("Environment"), Some(&yaml("Variables: {A: g, B: l, C: l}")));
        assert_eq!(merged.get("Handler"), Some(&yaml("app.h")));
    }

    #[test]
    fn intrinsics_are_scalars_and_local_wins() {
        let global = yaml("CodeUri: {Bucket: b, Key: k}\nMemorySize: !Ref Mem\n");
        let local = yaml("CodeUri: !Ref Dir\nMemorySize: {Fn::If: [C, 1, 2]}\n");
        let merged = apply(Some(&global), &local, None);
        assert_eq!(merged.get("CodeUri"), Some(&yaml("!Ref Dir")));
        assert_eq!(merged.get("MemorySize"), Some(&yaml("!If [C, 1, 2]")));
        let novalue = apply(Some(&global), &yaml("CodeUri: !Ref AWS::NoValue"), None);
        assert_eq!(novalue.get("CodeUri"), Some(&yaml("!Ref AWS::NoValue")));
    }

    #[test]
    fn ignore_globals() {
        let global = yaml("Runtime: python3.12\nTimeout: 10\n");
        let all = apply(Some(&global), &yaml("Handler: h"), Some(&yaml("'*'")));
        assert_eq!(all, yaml("Handler: h"));
        let some = apply(Some(&global), &yaml("Handler: h"), Some(&yaml("[Timeout]")));
        assert_eq!(some, yaml("Runtime: python3.12\nHandler: h"));
    }
}
