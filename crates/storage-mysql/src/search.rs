//! `search_entities`: literal substring search over entity name, content and aliases, ASCII
//! case-insensitive, exactly as the SQLite backend.
//!
//! Design (correctness first): MySQL's `FULLTEXT` indexes match words, not substrings, and its
//! `_ci` collations also fold accents and non-ASCII case (`é` = `E`), which the contract
//! forbids. So the server runs a *pre-filter* that can only over-match, and every candidate is
//! re-checked in Rust with the exact predicate:
//!
//! ```sql
//! LOWER(CONVERT(col USING utf8mb4) COLLATE utf8mb4_unicode_ci) COLLATE utf8mb4_bin
//!     LIKE (CONCAT('%', LOWER(CONVERT(? USING utf8mb4) COLLATE utf8mb4_unicode_ci), '%')
//!           COLLATE utf8mb4_bin) ESCAPE '!'
//! ```
//!
//! `LOWER` maps code point by code point with the same table on both sides, so a text that
//! contains the query up to ASCII case contains it after lowering both; the binary comparison
//! then adds no folding of its own. `!`, `%` and `_` in the query are escaped, so they match
//! literally. Aliases are matched on their JSON text: when the query contains a character JSON
//! escapes (`"`, `\`, control characters), the alias text differs from the JSON text, and the
//! alias condition is dropped from the pre-filter (every entity with aliases is a candidate).
//!
//! Candidates stream in recency order (`updated_at DESC, id DESC`, served by
//! `idx_entities_tenant_updated`) and the scan stops at `limit` hits. The cost is a scan of the
//! tenant's entities with a `LIKE` per row inside the server; there is no index for substring
//! search in MySQL, and tenants rarely hold more than thousands of entities.

use futures::TryStreamExt;
use sqlx::mysql::MySqlConnection;
use storage_core::{Entity, EntityQuery, Result, TenantKey};

use crate::error::SqlxResultExt;
use crate::mapping as map;

/// `col` lowered with the fixed collation, compared bytewise.
macro_rules! folded {
    ($col:literal) => {
        concat!(
            "LOWER(CONVERT(",
            $col,
            " USING utf8mb4) COLLATE utf8mb4_unicode_ci) COLLATE utf8mb4_bin LIKE @pattern ESCAPE '!'"
        )
    };
}

/// The `LIKE` pattern of one condition (the query is bound once per condition).
const PATTERN: &str = "(CONCAT('%', LOWER(CONVERT(? USING utf8mb4) COLLATE utf8mb4_unicode_ci), '%') COLLATE utf8mb4_bin)";

fn search_sql(with_aliases: bool) -> String {
    let aliases = if with_aliases {
        folded!("e.aliases")
    } else {
        "e.aliases IS NOT NULL"
    };
    format!(
        "SELECT {cols} FROM entities AS e
         WHERE e.user_id = ? AND e.device_id = ? AND e.agent_id = ?
           AND ({name} OR {content} OR {aliases})
         ORDER BY e.updated_at DESC, e.id DESC",
        cols = map::ENTITY_COLS
            .split(", ")
            .map(|c| format!("e.{c}"))
            .collect::<Vec<_>>()
            .join(", "),
        name = folded!("e.entity_name"),
        content = folded!("e.content"),
    )
    .replace("@pattern", PATTERN)
}

/// The query with `!`, `%` and `_` escaped for `LIKE ... ESCAPE '!'`.
pub(crate) fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for ch in text.chars() {
        if matches!(ch, '!' | '%' | '_') {
            out.push('!');
        }
        out.push(ch);
    }
    out
}

/// Whether JSON text encodes `ch` differently from the character itself (serde_json and
/// MySQL's JSON both escape exactly these; DEL is included to be safe).
fn json_escapes(ch: char) -> bool {
    matches!(ch, '"' | '\\' | '\u{0}'..='\u{1f}' | '\u{7f}')
}

/// Whether `haystack` contains `needle_lower` (already ASCII-lowercased), ASCII
/// case-insensitively.
pub(crate) fn contains_ascii_ci(haystack: &str, needle_lower: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle_lower.as_bytes());
    if n.is_empty() {
        return true;
    }
    h.len() >= n.len() && h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// The search predicate itself: the name, the content or one alias contains the query.
pub(crate) fn entity_matches(e: &Entity, needle_lower: &str) -> bool {
    contains_ascii_ci(&e.entity_name, needle_lower)
        || contains_ascii_ci(&e.content, needle_lower)
        || e.aliases.iter().any(|a| contains_ascii_ci(a, needle_lower))
}

/// `search_entities` (inputs validated).
pub(crate) async fn search_entities(
    c: &mut MySqlConnection,
    k: &TenantKey,
    text: &str,
    limit: u32,
) -> Result<Vec<Entity>> {
    if text.is_empty() {
        let q = EntityQuery {
            key: k.clone(),
            entity_type: None,
            limit,
            offset: 0,
        };
        return crate::queries::list_entities(c, &q).await;
    }
    if limit == 0 {
        return Ok(Vec::new());
    }
    let needle = text.to_ascii_lowercase();
    let pattern = escape_like(text);
    let with_aliases = !text.chars().any(json_escapes);
    let sql = search_sql(with_aliases);
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&k.user_id)
        .bind(&k.device_id)
        .bind(&k.agent_id)
        .bind(&pattern)
        .bind(&pattern);
    if with_aliases {
        query = query.bind(&pattern);
    }
    let mut rows = query.fetch(&mut *c);
    let mut out = Vec::new();
    while let Some(row) = rows.try_next().await.db()? {
        let e = map::entity(&row)?;
        if entity_matches(&e, &needle) {
            out.push(e);
            if out.len() >= limit as usize {
                break;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_escaping() {
        assert_eq!(escape_like("100% a_b!"), "100!% a!_b!!");
        assert_eq!(escape_like("北京"), "北京");
    }

    #[test]
    fn ascii_case_insensitive_substring() {
        assert!(contains_ascii_ci("Alice Smith", "ce sm"));
        assert!(contains_ascii_ci("北京人", "北京"));
        assert!(contains_ascii_ci("x", ""));
        assert!(
            !contains_ascii_ci("Émile", "émile"),
            "non-ASCII letters keep their case"
        );
        assert!(!contains_ascii_ci("ab", "abc"));
    }

    #[test]
    fn sql_binds_the_pattern_per_condition() {
        let with = search_sql(true);
        assert_eq!(with.matches('?').count(), 6);
        assert!(!with.contains("@pattern"));
        assert_eq!(search_sql(false).matches('?').count(), 5);
        assert!(json_escapes('"') && json_escapes('\n') && !json_escapes('%'));
    }
}
