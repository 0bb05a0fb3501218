//! Redis Cluster routing as the store sees it: a key's slot, the key a command routes by, and the slot map that names the node of a failed call.

use std::time::Instant;

/// Slot ranges and their masters, from `CLUSTER SLOTS`.
#[derive(Default)]
pub(super) struct SlotMap {
    pub(super) ranges: Vec<(u16, u16, String)>,
    pub(super) read_at: Option<Instant>,
}

impl SlotMap {
    pub(super) fn node_of(&self, slot: u16) -> Option<&str> {
        self.ranges
            .iter()
            .find(|(lo, hi, _)| (*lo..=*hi).contains(&slot))
            .map(|(_, _, node)| node.as_str())
    }
}

/// `CLUSTER SLOTS` as (first slot, last slot, master `host:port`).
pub(super) fn parse_slots(v: &redis::Value) -> Vec<(u16, u16, String)> {
    use redis::Value;
    let Value::Array(ranges) = v else {
        return Vec::new();
    };
    let int = |v: &Value| match v {
        Value::Int(i) => u16::try_from(*i).ok(),
        _ => None,
    };
    ranges
        .iter()
        .filter_map(|r| {
            let Value::Array(r) = r else { return None };
            let Some(Value::Array(master)) = r.get(2) else {
                return None;
            };
            let host = match master.first()? {
                Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                Value::SimpleString(s) => s.clone(),
                _ => return None,
            };
            let port = master.get(1).and_then(int)?;
            Some((int(r.first()?)?, int(r.get(1)?)?, format!("{host}:{port}")))
        })
        .collect()
}

/// A key's cluster slot: CRC16 of its `{hash tag}` if it has a non-empty one, else of the key.
pub(super) fn key_slot(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    crc16::State::<crc16::XMODEM>::calculate(tagged) % 16384
}

/// The key a command routes by: the first key of EVAL/EVALSHA, else its first argument.
pub(super) fn routing_key(cmd: &redis::Cmd) -> Option<&[u8]> {
    let mut args = cmd.args_iter().map(|a| match a {
        redis::Arg::Simple(b) => b,
        _ => &[][..],
    });
    let name = args.next()?;
    if name.eq_ignore_ascii_case(b"EVAL") || name.eq_ignore_ascii_case(b"EVALSHA") {
        let _script = args.next()?;
        let numkeys = args.next()?;
        if numkeys == b"0" {
            return None;
        }
    }
    args.next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value;

    #[test]
    fn key_slots_are_redis_cluster_slots() {
        // `CLUSTER KEYSLOT` answers from the Redis documentation.
        assert_eq!(key_slot(b"somekey"), 11058);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"authgate:user:{7}:sessions"), key_slot(b"7"));
        // An empty tag is no tag.
        assert_eq!(
            key_slot(b"a{}b"),
            crc16::State::<crc16::XMODEM>::calculate(b"a{}b") % 16384
        );
    }

    #[test]
    fn commands_route_by_their_first_key() {
        assert_eq!(routing_key(redis::cmd("GET").arg("k")), Some(&b"k"[..]));
        let mut eval = redis::cmd("EVAL");
        eval.arg("return 1").arg(2).arg("a").arg("b");
        assert_eq!(routing_key(&eval), Some(&b"a"[..]));
        let mut keyless = redis::cmd("EVAL");
        keyless.arg("return 1").arg(0);
        assert_eq!(routing_key(&keyless), None);
    }

    #[test]
    fn cluster_slots_name_each_range_master() {
        let node =
            |host: &str, port| Value::Array(vec![Value::BulkString(host.into()), Value::Int(port)]);
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("10.0.0.1", 6379),
                node("10.0.0.4", 6379),
            ]),
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(16383),
                node("10.0.0.2", 6380),
            ]),
            Value::Int(7),
        ]);
        let map = SlotMap {
            ranges: parse_slots(&reply),
            read_at: None,
        };
        assert_eq!(map.node_of(0), Some("10.0.0.1:6379"));
        assert_eq!(map.node_of(5461), Some("10.0.0.2:6380"));
        assert_eq!(map.ranges.len(), 2);
    }
}
