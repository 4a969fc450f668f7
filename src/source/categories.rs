//! The `categories` column: AbuseIPDB category ids and free-text tags.
//!
//! The column is `jsonb` and holds whatever the reporting tool wrote: usually an array of ids
//! (`[4, 15]`), but also digit strings, `{"id": n}` objects, free-text tags, a bare scalar, or a
//! comma-separated string. This module turns any of it into sorted ids and tags, and reports
//! every element it had to drop. It never panics, whatever the text.

use serde_json::Value;

use super::clean::Repair;

/// Highest AbuseIPDB category id.
pub const MAX_ID: u8 = 23;
/// Longest tag kept, in characters; longer tags are cut.
pub const MAX_TAG_CHARS: usize = 64;
/// Most tags kept per row; the rest (after sorting) are dropped.
pub const MAX_TAGS: usize = 20;

/// AbuseIPDB category names, indexed by id − 1.
const NAMES: [&str; MAX_ID as usize] = [
    "DNS Compromise",
    "DNS Poisoning",
    "Fraud Orders",
    "DDoS Attack",
    "FTP Brute-Force",
    "Ping of Death",
    "Phishing",
    "Fraud VoIP",
    "Open Proxy",
    "Web Spam",
    "Email Spam",
    "Blog Spam",
    "VPN IP",
    "Port Scan",
    "Hacking",
    "SQL Injection",
    "Spoofing",
    "Brute-Force",
    "Bad Web Bot",
    "Exploited Host",
    "Web App Attack",
    "SSH",
    "IoT Targeted",
];

/// The AbuseIPDB name of category `id`, or `None` outside 1–23.
pub fn name(id: u8) -> Option<&'static str> {
    NAMES.get(usize::from(id).checked_sub(1)?).copied()
}

/// Parses the column's JSON text into (ids, tags, repairs). Ids are 1–23, tags lower-case;
/// both sorted and without duplicates. A NULL column gives [`Repair::CategoriesMissing`], text
/// that is not JSON (or nests too deeply for the parser) [`Repair::CategoriesUnparsable`], and
/// each unusable element one [`Repair::CategoryDropped`].
pub fn parse(json_text: Option<&str>) -> (Vec<u8>, Vec<String>, Vec<Repair>) {
    let mut found = Found::default();
    match json_text.map(serde_json::from_str::<Value>) {
        None | Some(Ok(Value::Null)) => found.repairs.push(Repair::CategoriesMissing),
        Some(Err(_)) => found.repairs.push(Repair::CategoriesUnparsable),
        Some(Ok(Value::Array(items))) => items.iter().for_each(|item| found.element(item)),
        Some(Ok(scalar_or_object)) => found.element(&scalar_or_object),
    }
    found.finish()
}

/// What the elements seen so far amount to.
#[derive(Default)]
struct Found {
    ids: Vec<u8>,
    tags: Vec<String>,
    repairs: Vec<Repair>,
}

impl Found {
    /// One element of the top-level array (or the lone top-level value).
    fn element(&mut self, value: &Value) {
        match value {
            Value::Number(_) => self.id_value(value),
            Value::String(text) => self.text(text),
            Value::Object(fields) => match fields.get("id") {
                Some(id @ (Value::Number(_) | Value::String(_))) => self.id_value(id),
                _ => self.drop_one(),
            },
            Value::Null | Value::Bool(_) | Value::Array(_) => self.drop_one(),
        }
    }

    /// A number, or a string that must be a digit id (inside `{"id": …}`).
    fn id_value(&mut self, value: &Value) {
        let id = match value {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        match id.and_then(valid_id) {
            Some(id) => self.ids.push(id),
            None => self.drop_one(),
        }
    }

    /// A string: comma-separated parts, each a digit id or a free-text tag.
    fn text(&mut self, text: &str) {
        for part in text.split(',') {
            let part = part.trim();
            if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
                match part.parse().ok().and_then(valid_id) {
                    Some(id) => self.ids.push(id),
                    None => self.drop_one(),
                }
                continue;
            }
            match clean_tag(part) {
                Some(tag) => self.tags.push(tag),
                None => self.drop_one(),
            }
        }
    }

    fn drop_one(&mut self) {
        self.repairs.push(Repair::CategoryDropped);
    }

    fn finish(mut self) -> (Vec<u8>, Vec<String>, Vec<Repair>) {
        self.ids.sort_unstable();
        self.ids.dedup();
        self.tags.sort_unstable();
        self.tags.dedup();
        if self.tags.len() > MAX_TAGS {
            let extra = self.tags.len() - MAX_TAGS;
            self.tags.truncate(MAX_TAGS);
            self.repairs
                .extend(std::iter::repeat_n(Repair::CategoryDropped, extra));
        }
        (self.ids, self.tags, self.repairs)
    }
}

fn valid_id(id: u64) -> Option<u8> {
    u8::try_from(id).ok().filter(|id| (1..=MAX_ID).contains(id))
}

/// Lower-case, without control characters, trimmed, at most [`MAX_TAG_CHARS`]; `None` when
/// nothing is left.
fn clean_tag(text: &str) -> Option<String> {
    let cleaned: String = text.chars().filter(|c| !c.is_control()).collect();
    let tag: String = cleaned
        .trim()
        .to_lowercase()
        .chars()
        .take(MAX_TAG_CHARS)
        .collect();
    let tag = tag.trim_end().to_string();
    (!tag.is_empty()).then_some(tag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Repair::{CategoriesMissing, CategoriesUnparsable, CategoryDropped};

    fn ids(text: &str) -> Vec<u8> {
        parse(Some(text)).0
    }

    #[test]
    fn plain_id_arrays_are_kept_sorted_and_unique() {
        assert_eq!(parse(Some("[22, 18, 18]")), (vec![18, 22], vec![], vec![]));
        assert_eq!(ids("[1, 23]"), vec![1, 23]);
    }

    #[test]
    fn the_odd_shapes_are_understood() {
        assert_eq!(ids(r#"["18", "4"]"#), vec![4, 18]);
        assert_eq!(
            ids(r#"[{"id": 18}, {"id": "22", "name": "SSH"}]"#),
            vec![18, 22]
        );
        assert_eq!(ids("18"), vec![18]);
        assert_eq!(ids(r#""18,22""#), vec![18, 22]);
        assert_eq!(ids(r#"{"id": 7}"#), vec![7]);
    }

    #[test]
    fn free_text_becomes_tags() {
        let (ids, tags, repairs) =
            parse(Some(r#"["SSH-Scanner ", "18", "honeypot, ssh-scanner"]"#));
        assert_eq!(ids, vec![18]);
        assert_eq!(tags, vec!["honeypot", "ssh-scanner"]);
        assert!(repairs.is_empty());
    }

    #[test]
    fn tags_are_cleaned_and_bounded() {
        let long = "x".repeat(100);
        let (_, tags, _) = parse(Some(&serde_json::json!([long, "a\u{1}b"]).to_string()));
        assert_eq!(tags, vec!["ab".to_string(), "x".repeat(MAX_TAG_CHARS)]);

        let many: Vec<String> = (0..25).map(|i| format!("tag{i:02}")).collect();
        let (_, tags, repairs) = parse(Some(&serde_json::json!(many).to_string()));
        assert_eq!(tags.len(), MAX_TAGS);
        assert_eq!(tags[0], "tag00");
        assert_eq!(repairs, vec![CategoryDropped; 5]);
    }

    #[test]
    fn unusable_elements_are_dropped_and_counted() {
        let text = r#"[0, 24, -1, 1.5, null, true, [1], {"id": [2]}, {"name": "x"}, "99", "", 4]"#;
        let (ids, tags, repairs) = parse(Some(text));
        assert_eq!(ids, vec![4]);
        assert!(tags.is_empty());
        assert_eq!(repairs, vec![CategoryDropped; 11]);
    }

    #[test]
    fn missing_and_unparsable_columns() {
        assert_eq!(parse(None), (vec![], vec![], vec![CategoriesMissing]));
        assert_eq!(
            parse(Some("null")),
            (vec![], vec![], vec![CategoriesMissing])
        );
        assert_eq!(
            parse(Some("[18,")),
            (vec![], vec![], vec![CategoriesUnparsable])
        );
        assert_eq!(
            parse(Some("")),
            (vec![], vec![], vec![CategoriesUnparsable])
        );
        assert_eq!(parse(Some("[]")), (vec![], vec![], vec![]));
    }

    #[test]
    fn deep_nesting_does_not_panic() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(parse(Some(&deep)).2, vec![CategoriesUnparsable]);
        let nested = format!("[{}1{}]", "[".repeat(50), "]".repeat(50));
        assert_eq!(parse(Some(&nested)).2, vec![CategoryDropped]);
    }

    #[test]
    fn names_cover_every_id() {
        assert_eq!(name(1), Some("DNS Compromise"));
        assert_eq!(name(18), Some("Brute-Force"));
        assert_eq!(name(23), Some("IoT Targeted"));
        assert_eq!(name(0), None);
        assert_eq!(name(24), None);
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_handled(text in ".*") {
            let (ids, tags, _) = parse(Some(&text));
            proptest::prop_assert!(ids.iter().all(|id| name(*id).is_some()));
            proptest::prop_assert!(tags.len() <= MAX_TAGS);
        }
    }
}
