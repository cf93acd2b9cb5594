//! Duplicate keys in a template's maps. SAM's YAML loader keeps the last value of a key written
//! twice, so lamb does too (see [`super::value`]) and says where both are. serde_norway gives
//! no positions to a visitor, so this is a pass over the event stream of libyaml, the parser
//! serde_norway itself runs, which carries a line with every event.

use std::collections::HashMap;
use std::mem::MaybeUninit;

use unsafe_libyaml_norway as unsafe_yaml;

/// A key written twice in one map: the 1-based lines of the earlier and the later one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    pub key: String,
    pub first: usize,
    pub second: usize,
}

enum Frame {
    /// The keys seen so far with their lines, and whether the next node is a key.
    Map {
        keys: HashMap<String, usize>,
        want_key: bool,
    },
    Seq,
}

/// A node ended in the innermost collection: a key (with its text and line) or a value.
fn node(stack: &mut [Frame], key: Option<(String, usize)>, out: &mut Vec<Duplicate>) {
    let Some(Frame::Map { keys, want_key }) = stack.last_mut() else { return };
    if *want_key && let Some((key, line)) = key {
        if let Some(&first) = keys.get(&key) {
            out.push(Duplicate { key: key.clone(), first, second: line });
        }
        keys.insert(key, line);
    }
    *want_key = !*want_key;
}

/// Every key written twice in a map of `text` (YAML, or JSON, which libyaml reads too), in
/// document order. Text libyaml cannot parse yields what was found before the error: the real
/// parse reports the error itself.
pub fn find(text: &str) -> Vec<Duplicate> {
    let mut out = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    // Boxed: libyaml's parser must not move once initialised.
    let mut boxed: Box<MaybeUninit<unsafe_yaml::yaml_parser_t>> = Box::new(MaybeUninit::uninit());
    let parser = boxed.as_mut_ptr();
    // SAFETY: the parser is initialised before use and deleted once; it reads `text`, which
    // outlives it; each event is read only between a successful parse and its deletion.
    unsafe {
        if unsafe_yaml::yaml_parser_initialize(parser).fail {
            return out;
        }
        unsafe_yaml::yaml_parser_set_input_string(parser, text.as_ptr(), text.len() as u64);
        loop {
            let mut event = MaybeUninit::<unsafe_yaml::yaml_event_t>::uninit();
            let event = event.as_mut_ptr();
            if unsafe_yaml::yaml_parser_parse(parser, event).fail {
                break;
            }
            let line = (*event).start_mark.line as usize + 1;
            let kind = (*event).type_;
            match kind {
                unsafe_yaml::YAML_SCALAR_EVENT => {
                    let s = (*event).data.scalar;
                    let bytes = std::slice::from_raw_parts(s.value, s.length as usize);
                    node(&mut stack, Some((String::from_utf8_lossy(bytes).into_owned(), line)), &mut out);
                }
                unsafe_yaml::YAML_ALIAS_EVENT => node(&mut stack, None, &mut out),
                unsafe_yaml::YAML_MAPPING_START_EVENT => {
                    stack.push(Frame::Map { keys: HashMap::new(), want_key: true })
                }
                unsafe_yaml::YAML_SEQUENCE_START_EVENT => stack.push(Frame::Seq),
                unsafe_yaml::YAML_MAPPING_END_EVENT | unsafe_yaml::YAML_SEQUENCE_END_EVENT => {
                    stack.pop();
                    node(&mut stack, None, &mut out);
                }
                _ => {}
            }
            unsafe_yaml::yaml_event_delete(event);
            if kind == unsafe_yaml::YAML_STREAM_END_EVENT {
                break;
            }
        }
        unsafe_yaml::yaml_parser_delete(parser);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dup(key: &str, first: usize, second: usize) -> Duplicate {
        Duplicate { key: key.into(), first, second }
    }

    #[test]
    fn finds_keys_written_twice_with_both_lines() {
        let text = "Resources:\n  Fn:\n    Properties:\n      Handler: a.b\n      Runtime: x\n      Handler: c.d\n  Other: {A: 1, B: [{A: 2}], A: 3}\nResources: again\n";
        assert_eq!(find(text), [dup("Handler", 4, 6), dup("A", 7, 7), dup("Resources", 1, 8)]);
    }

    #[test]
    fn same_keys_in_different_maps_and_block_scalars_are_not_duplicates() {
        let text = "A:\n  K: 1\nB:\n  K: 2\nC: |\n  K: 1\n  K: 2\nD: [K, K]\nE: !Ref K\nF: !Sub\n  - x\n  - {K: 1}\n";
        assert!(find(text).is_empty(), "{:?}", find(text));
    }

    #[test]
    fn json_is_read_too_and_broken_text_is_left_to_the_parser() {
        assert_eq!(find("{\"R\": {\"A\": 1,\n \"A\": 2}}"), [dup("A", 1, 2)]);
        assert!(find("A: [1, 2\nB: 1\n").is_empty());
    }
}
