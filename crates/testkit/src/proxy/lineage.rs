//! The virtual shard tree the proxy shows in place of DynamoDB Local's single real shard.
//!
//! Generation 0 is the real shard: all records with sequence number `<= S1` (open until the
//! first split). Generation `k >= 1` has `n_k = n_{k-1} * fanout_k` shards covering
//! `S_k < seq <= S_{k+1}` (the last generation is open). A record belongs to partition
//! `stable_hash(Keys) mod n_k`, and the parent of `(k, p)` is `(k-1, p mod n_{k-1})`: since
//! `n_{k-1}` divides `n_k`, every record of one item stays in one chain of shards, so reading
//! parents before children keeps per-item order. This module is the pure model; the proxy
//! applies it to requests and responses.

use serde_json::{Value, json};

use super::seq::SeqNo;
use crate::util::fnv1a64;

/// One generation of virtual shards.
#[derive(Clone, Debug)]
pub(crate) struct Generation {
    /// Number of shards (`n_k`).
    pub(crate) count: u64,
    /// `S_k`: records with a greater sequence number belong here (`None` for generation 0).
    pub(crate) after: Option<SeqNo>,
    /// `S_{k+1}`: the last sequence number of this generation, once a later split closed it.
    pub(crate) end: Option<SeqNo>,
}

/// The shard tree of one stream.
#[derive(Clone, Debug)]
pub(crate) struct Lineage {
    pub(crate) stream_arn: String,
    pub(crate) real_shard_id: String,
    /// The real shard's StartingSequenceNumber.
    pub(crate) real_start: Option<SeqNo>,
    pub(crate) gens: Vec<Generation>,
    /// Records up to this sequence number are trimmed away (the 24 h retention).
    pub(crate) trimmed_through: Option<SeqNo>,
}

impl Lineage {
    pub(crate) fn new(stream_arn: &str, real_shard_id: &str, real_start: Option<&str>) -> Lineage {
        Lineage {
            stream_arn: stream_arn.to_string(),
            real_shard_id: real_shard_id.to_string(),
            real_start: real_start.map(SeqNo::new),
            gens: vec![Generation {
                count: 1,
                after: None,
                end: None,
            }],
            trimmed_through: None,
        }
    }

    /// Trims every record up to `last`; a trim never moves back.
    pub(crate) fn trim_through(&mut self, last: SeqNo) {
        if self.trimmed_through.as_ref().is_none_or(|t| &last > t) {
            self.trimmed_through = Some(last);
        }
    }

    /// Whether a reader that has passed every record up to `pos` would next meet trimmed
    /// records. `None` (a LATEST iterator that has read nothing yet) never does: it stands
    /// past every record that existed when it was taken.
    pub(crate) fn behind_trim(&self, pos: Option<&SeqNo>) -> bool {
        matches!((&self.trimmed_through, pos), (Some(t), Some(p)) if p < t)
    }

    fn suffix(&self) -> &str {
        self.real_shard_id
            .strip_prefix("shardId-")
            .unwrap_or(&self.real_shard_id)
    }

    /// The id of shard `(generation, partition)`.
    pub(crate) fn shard_id(&self, generation: usize, partition: u64) -> String {
        if generation == 0 {
            self.real_shard_id.clone()
        } else {
            format!("shardId-v{generation}-{partition}-{}", self.suffix())
        }
    }

    /// `(generation, partition)` of an existing shard of this lineage.
    pub(crate) fn parse_shard_id(&self, id: &str) -> Option<(usize, u64)> {
        if id == self.real_shard_id {
            return Some((0, 0));
        }
        let rest = id.strip_prefix("shardId-v")?;
        let mut it = rest.splitn(3, '-');
        let generation: usize = it.next()?.parse().ok()?;
        let partition: u64 = it.next()?.parse().ok()?;
        let suffix = it.next()?;
        let valid = generation >= 1
            && generation < self.gens.len()
            && partition < self.gens[generation].count
            && suffix == self.suffix();
        valid.then_some((generation, partition))
    }

    /// Whether `id` has the form of a virtual shard id (of any lineage).
    pub(crate) fn looks_virtual(id: &str) -> bool {
        id.starts_with("shardId-v")
    }

    /// The parent of `(generation, partition)`.
    pub(crate) fn parent(&self, generation: usize, partition: u64) -> Option<(usize, u64)> {
        (generation > 0).then(|| (generation - 1, partition % self.gens[generation - 1].count))
    }

    /// Whether `seq` falls in `generation`'s sequence range.
    pub(crate) fn in_range(&self, generation: usize, seq: &SeqNo) -> bool {
        let g = &self.gens[generation];
        g.after.as_ref().is_none_or(|a| seq > a) && g.end.as_ref().is_none_or(|e| seq <= e)
    }

    /// Whether a record (`seq`, hash of its Keys) belongs to shard `(generation, partition)`.
    pub(crate) fn owns(
        &self,
        generation: usize,
        partition: u64,
        seq: &SeqNo,
        keys_hash: u64,
    ) -> bool {
        self.in_range(generation, seq) && keys_hash % self.gens[generation].count == partition
    }

    /// Closes the last generation at `boundary` and opens one with `fanout` times as many shards.
    pub(crate) fn split(&mut self, boundary: SeqNo, fanout: u64) {
        let last = self.gens.last_mut().expect("generation 0 always exists");
        last.end = Some(boundary.clone());
        let count = last.count * fanout;
        self.gens.push(Generation {
            count,
            after: Some(boundary),
            end: None,
        });
    }

    /// All shard ids of `generation`.
    pub(crate) fn generation_ids(&self, generation: usize) -> Vec<String> {
        (0..self.gens[generation].count)
            .map(|p| self.shard_id(generation, p))
            .collect()
    }

    /// The DescribeStream shard list that replaces `real` (the real shard's JSON from upstream),
    /// parents before children.
    pub(crate) fn virtual_shards(&self, real: &Value) -> Vec<Value> {
        let real_range = real.get("SequenceNumberRange");
        let real_start = real_range
            .and_then(|r| r.get("StartingSequenceNumber"))
            .and_then(Value::as_str);
        let real_end = real_range
            .and_then(|r| r.get("EndingSequenceNumber"))
            .and_then(Value::as_str);
        let mut shards = Vec::new();
        let last = self.gens.len() - 1;
        for (k, g) in self.gens.iter().enumerate() {
            // The last generation ends where the real shard ends, if it does.
            let end = match (&g.end, k == last) {
                (Some(e), _) => Some(e.padded()),
                (None, true) => real_end.map(str::to_string),
                (None, false) => None,
            };
            if k == 0 {
                let mut shard = real.clone();
                if let Some(end) = end
                    && let Some(obj) = shard.as_object_mut()
                {
                    let mut range = obj
                        .get("SequenceNumberRange")
                        .cloned()
                        .unwrap_or_else(|| json!({}));
                    range["EndingSequenceNumber"] = Value::String(end);
                    if range.get("StartingSequenceNumber").is_none()
                        && let Some(start) = real_start
                    {
                        range["StartingSequenceNumber"] = Value::String(start.to_string());
                    }
                    obj.insert("SequenceNumberRange".into(), range);
                }
                shards.push(shard);
                continue;
            }
            let start = g
                .after
                .as_ref()
                .expect("k >= 1 has a start")
                .succ()
                .padded();
            for p in 0..g.count {
                let mut range = json!({ "StartingSequenceNumber": start });
                if let Some(end) = &end {
                    range["EndingSequenceNumber"] = Value::String(end.clone());
                }
                let (pk, pp) = self.parent(k, p).expect("k >= 1 has a parent");
                shards.push(json!({
                    "ShardId": self.shard_id(k, p),
                    "ParentShardId": self.shard_id(pk, pp),
                    "SequenceNumberRange": range,
                }));
            }
        }
        shards
    }
}

/// A stable hash of a record's `Keys` (`{"pk":{"S":"a"},...}`), independent of attribute
/// order and of how numbers are written.
pub(crate) fn keys_hash(keys: &Value) -> u64 {
    let mut parts: Vec<String> = match keys.as_object() {
        Some(map) => map
            .iter()
            .map(|(name, av)| {
                let typed = av.as_object().and_then(|o| o.iter().next());
                let (ty, value) = match typed {
                    Some((ty, Value::String(s))) if ty == "N" => (ty.as_str(), normalize_number(s)),
                    Some((ty, Value::String(s))) => (ty.as_str(), s.clone()),
                    Some((ty, other)) => (ty.as_str(), other.to_string()),
                    None => ("?", av.to_string()),
                };
                format!("{name}\u{0}{ty}\u{0}{value}")
            })
            .collect(),
        None => vec![keys.to_string()],
    };
    parts.sort();
    fnv1a64(parts.join("\u{1}").as_bytes())
}

/// A canonical text for a DynamoDB number: `1`, `1.0`, `01` and `10E-1` all give `1e0`.
pub(crate) fn normalize_number(s: &str) -> String {
    let s = s.trim();
    let (negative, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], body[i + 1..].parse::<i64>().unwrap_or(0)),
        None => (body, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit()) {
        return s.to_string();
    }
    let digits = format!("{int}{frac}");
    // value = digits * 10^(exponent - frac.len())
    let mut exp = exponent - frac.len() as i64;
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return "0".into();
    }
    let trimmed = digits.trim_end_matches('0');
    exp += (digits.len() - trimmed.len()) as i64;
    format!("{}{}e{}", if negative { "-" } else { "" }, trimmed, exp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lineage() -> Lineage {
        Lineage::new(
            "arn:aws:dynamodb:ddblocal:000000000000:table/t/stream/x",
            "shardId-00000001795482245910-e30694c3",
            Some("000000000000000000012"),
        )
    }

    #[test]
    fn numbers_normalize() {
        for same in ["1", "1.0", "01", "10E-1", "0.1e1", "+1"] {
            assert_eq!(normalize_number(same), "1e0", "{same}");
        }
        assert_eq!(normalize_number("-120"), "-12e1");
        assert_eq!(normalize_number("0.000"), "0");
        assert_ne!(normalize_number("1"), normalize_number("-1"));
    }

    #[test]
    fn key_hash_ignores_order_and_number_spelling() {
        let a = json!({"pk": {"S": "a"}, "sk": {"N": "1"}});
        let b = json!({"sk": {"N": "1.00"}, "pk": {"S": "a"}});
        assert_eq!(keys_hash(&a), keys_hash(&b));
        assert_ne!(
            keys_hash(&a),
            keys_hash(&json!({"pk": {"S": "a"}, "sk": {"N": "2"}}))
        );
    }

    #[test]
    fn shard_ids_round_trip_and_parents_chain() {
        let mut l = lineage();
        l.split(SeqNo::new("000000000000000000020"), 2);
        l.split(SeqNo::new("000000000000000000030"), 3);
        assert_eq!(l.gens[2].count, 6);
        for k in 0..3 {
            for p in 0..l.gens[k].count {
                let id = l.shard_id(k, p);
                assert_eq!(l.parse_shard_id(&id), Some((k, p)), "{id}");
            }
        }
        assert_eq!(
            l.shard_id(1, 1),
            "shardId-v1-1-00000001795482245910-e30694c3"
        );
        assert_eq!(
            l.parse_shard_id("shardId-v3-0-00000001795482245910-e30694c3"),
            None
        );
        assert_eq!(
            l.parse_shard_id("shardId-v2-6-00000001795482245910-e30694c3"),
            None
        );
        assert_eq!(l.parse_shard_id("shardId-v1-0-other"), None);
        assert_eq!(l.parent(2, 5), Some((1, 1)));
        assert_eq!(l.parent(1, 1), Some((0, 0)));
        // Every hash follows one chain: its partition in k-1 is the parent's.
        for h in 0..100u64 {
            let p2 = h % 6;
            assert_eq!(l.parent(2, p2), Some((1, h % 2)));
        }
    }

    #[test]
    fn ranges_and_ownership() {
        let mut l = lineage();
        let s1 = SeqNo::new("000000000000000000020");
        l.split(s1.clone(), 2);
        assert!(l.in_range(0, &s1));
        assert!(!l.in_range(1, &s1));
        assert!(l.in_range(1, &s1.succ()));
        assert!(!l.in_range(0, &s1.succ()));
        assert!(l.owns(1, 1, &SeqNo::new("100"), 7));
        assert!(!l.owns(1, 0, &SeqNo::new("100"), 7));
    }

    #[test]
    fn virtual_list_replaces_the_real_shard() {
        let mut l = lineage();
        l.split(SeqNo::new("000000000000000000020"), 2);
        let real = json!({
            "ShardId": "shardId-00000001795482245910-e30694c3",
            "SequenceNumberRange": {"StartingSequenceNumber": "000000000000000000012"}
        });
        let list = l.virtual_shards(&real);
        assert_eq!(list.len(), 3);
        assert_eq!(
            list[0]["SequenceNumberRange"]["EndingSequenceNumber"],
            "000000000000000000020"
        );
        assert_eq!(
            list[0]["SequenceNumberRange"]["StartingSequenceNumber"],
            "000000000000000000012"
        );
        assert_eq!(
            list[1]["ParentShardId"],
            "shardId-00000001795482245910-e30694c3"
        );
        assert_eq!(
            list[1]["SequenceNumberRange"]["StartingSequenceNumber"],
            "000000000000000000021"
        );
        assert!(
            list[2]["SequenceNumberRange"]
                .get("EndingSequenceNumber")
                .is_none()
        );
        // A closed real shard closes the last generation too.
        let mut closed = real.clone();
        closed["SequenceNumberRange"]["EndingSequenceNumber"] = json!("000000000000000000050");
        let list = l.virtual_shards(&closed);
        assert_eq!(
            list[2]["SequenceNumberRange"]["EndingSequenceNumber"],
            "000000000000000000050"
        );
        assert_eq!(
            list[0]["SequenceNumberRange"]["EndingSequenceNumber"],
            "000000000000000000020"
        );
    }
}
