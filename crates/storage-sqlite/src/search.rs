//! `search_entities`: exact substring search over entity name, content and aliases.
//!
//! Storage (schema version 3, see `schema.rs`): `entity_search` holds one text per entity,
//! the ASCII-lowercased name, content and each alias, every one followed by `char(31)`, plus
//! one more `char(31)`; triggers on `entities` maintain it. A covering index orders it by
//! (tenant, `updated_at`, rowid) and `entity_search_fts` is a case-sensitive trigram index
//! over it (external content).
//!
//! A search picks one of these plans, all exact:
//!
//! - **trigram candidates**, when the query is selective: for 3+ characters, the rows holding
//!   the query's rarest trigram, or two rarest (`AND`, never the phrase: a phrase makes FTS5 walk the
//!   doclists of every trigram, and common ones cost milliseconds); for 1 or 2 characters, the
//!   rows holding any trigram that starts with the query (listed live from
//!   `entity_search_vocab`; every character of a search text is followed by at least two more,
//!   so a row contains a 1- or 2-character query exactly when one of its trigrams starts with
//!   it). Candidates are restricted to the tenant and re-checked with `instr` on the search
//!   text; when there are at most [`MAX_CANDIDATES`], the hits are sorted by recency and the
//!   first `limit` loaded;
//! - **recency scan** otherwise: the tenant's search texts newest first through the covering
//!   index, one `instr` per row inside SQLite, loading hits and stopping at `limit`. A
//!   non-selective query has dense hits, so the scan stops early;
//! - **entity scan** for queries containing `char(31)` (the separator) or NUL (FTS5 query
//!   strings cannot carry it): the tenant's entities newest first, compared in Rust.
//!
//! Selectivity is estimated from [`TrigramStats`]: trigram document frequencies of a random
//! sample of search texts, kept in memory and rebuilt when the table has grown by a quarter
//! (checked with one `max(rid)` lookup per search). The statistics only choose a plan; they
//! never decide a result, so stale statistics cost speed, not correctness.
//!
//! Every returned entity is loaded by rowid *and* tenant and re-checked in Rust, so a stale
//! search row (a file `VACUUM`ed by another tool, rows replaced by `INSERT OR REPLACE` without
//! recursive triggers) never yields a wrong or foreign entity: the candidate plan falls back
//! to the scan, and the scan skips it.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params};
use storage_core::{Entity, EntityQuery, Result, StorageError, TenantKey};

use crate::mapping::{self as map, SqlResultExt};

/// Above this many trigram candidates of the tenant, the candidate plan gives way to the scan.
pub(crate) const MAX_CANDIDATES: usize = 1000;

/// Measured costs (µs) of one trigram candidate (FTS5 row, join, check) and of one scanned
/// row (covering index step, check in Rust).
const CANDIDATE_COST: f64 = 0.5;
const SCAN_ROW_COST: f64 = 0.2;

/// The rarest trigram alone serves as the candidate query when estimated in at most this many
/// rows; above, the two rarest are combined (`AND`).
const PAIR_ABOVE: f64 = 64.0;

/// A 1- or 2-character query with more trigrams starting with it than this scans instead.
const MAX_PREFIX_TERMS: usize = 64;

/// Number of search texts sampled (at random rowids) for the statistics.
const SAMPLE_ROWS: i64 = 1024;

/// The field separator of the search text.
const SEP: char = '\u{1f}';

const CANDIDATES_SQL: &str = "SELECT s.rid, s.updated_at, s.text
     FROM entity_search_fts AS f CROSS JOIN entity_search AS s ON s.rid = f.rowid
     WHERE f.entity_search_fts MATCH ?4 AND s.user_id = ?1 AND s.device_id = ?2 AND s.agent_id = ?3";

const SCAN_SQL: &str = "SELECT rid, text FROM entity_search
     WHERE user_id = ?1 AND device_id = ?2 AND agent_id = ?3
     ORDER BY updated_at DESC, rid DESC";

const PREFIX_TERMS_SQL: &str =
    "SELECT term FROM entity_search_vocab WHERE term >= ?1 AND term < ?2";

/// Loads a hit (the columns are `map::ENTITY_COLS`, checked by a test).
const LOAD_SQL: &str = "SELECT id, user_id, device_id, agent_id, entity_name, entity_type, content, \
     summary, keywords, aliases, metadata, created_at, updated_at FROM entities \
     WHERE rowid = ?1 AND user_id = ?2 AND device_id = ?3 AND agent_id = ?4";

/// Trigram document frequencies over a random sample of search texts.
#[derive(Debug, Default)]
pub(crate) struct TrigramStats {
    /// `max(rid)` of `entity_search` when sampled.
    max_rid: i64,
    /// Rows of `entity_search` when sampled.
    rows: i64,
    /// Rows sampled.
    sampled: i64,
    /// Sampled rows containing each trigram.
    docs: BTreeMap<Box<str>, u32>,
}

impl TrigramStats {
    /// Samples up to [`SAMPLE_ROWS`] rows at random rowids (one index seek each).
    fn build(conn: &Connection, max_rid: i64) -> Result<Self> {
        let (rows, min_rid): (i64, i64) = conn
            .prepare_cached("SELECT count(*), coalesce(min(rid), 0) FROM entity_search")
            .sql()?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .sql()?;
        let mut stmt = conn
            .prepare_cached("SELECT text FROM entity_search WHERE rid >= ?1 ORDER BY rid LIMIT 1")
            .sql()?;
        let mut counts: HashMap<Box<str>, u32> = HashMap::new();
        let mut sampled = 0;
        let span = (max_rid - min_rid + 1).max(1) as u64;
        // xorshift64*, seeded from the clock: the sample only has to be spread out.
        let mut x = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9E37_79B9_7F4A_7C15, |d| d.as_nanos() as u64)
            | 1;
        for _ in 0..SAMPLE_ROWS.min(rows) {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let rid = min_rid + (x.wrapping_mul(0x2545_F491_4F6C_DD1D) % span) as i64;
            let mut it = stmt.query([rid]).sql()?;
            let Some(row) = it.next().sql()? else {
                continue;
            };
            let Ok(text) = row.get_ref(0).sql()?.as_str() else {
                continue;
            };
            sampled += 1;
            let seen: HashSet<&str> = trigrams(text).collect();
            for t in seen {
                match counts.get_mut(t) {
                    Some(n) => *n += 1,
                    None => {
                        counts.insert(t.into(), 1);
                    }
                }
            }
        }
        Ok(TrigramStats {
            max_rid,
            rows,
            sampled,
            docs: counts.into_iter().collect(),
        })
    }

    /// Whether the table changed enough since sampling to sample again.
    fn is_stale(&self, max_rid: i64) -> bool {
        max_rid < self.max_rid || max_rid - self.max_rid > (self.rows / 4).max(256)
    }

    fn scale(&self) -> f64 {
        if self.sampled == 0 {
            0.0
        } else {
            self.rows as f64 / self.sampled as f64
        }
    }

    /// The largest estimated candidate count for which the candidate plan is expected to be
    /// cheaper than the scan. With `c` candidates (all tenants) and hits about as frequent,
    /// the scan reads about `limit * rows / c` rows before it has `limit` hits: the plans
    /// cost the same at `c * c = limit * rows * SCAN_ROW_COST / CANDIDATE_COST`.
    fn max_estimate(&self, limit: u32) -> f64 {
        (f64::from(limit) * self.rows as f64 * SCAN_ROW_COST / CANDIDATE_COST)
            .sqrt()
            .clamp(64.0, MAX_CANDIDATES as f64)
    }

    /// Estimated rows holding `trigram` (0 when it was not sampled).
    fn estimate(&self, trigram: &str) -> f64 {
        f64::from(self.docs.get(trigram).copied().unwrap_or(0)) * self.scale()
    }

    /// Estimated rows holding a trigram that starts with `prefix` (an upper bound: the sum).
    fn estimate_prefix(&self, prefix: &str) -> f64 {
        let sum: u64 = self
            .docs
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, &n)| u64::from(n))
            .sum();
        sum as f64 * self.scale()
    }
}

/// The search state shared by the connections of one backend: the current statistics.
#[derive(Debug, Default)]
pub(crate) struct SearchState {
    stats: Mutex<Option<Arc<TrigramStats>>>,
    rebuilding: Mutex<()>,
}

impl SearchState {
    /// The statistics, sampled again first when missing or stale. One caller samples; the
    /// others meanwhile use the previous statistics (or none).
    fn stats(&self, conn: &Connection) -> Result<Option<Arc<TrigramStats>>> {
        let max_rid: i64 = conn
            .prepare_cached("SELECT coalesce(max(rid), 0) FROM entity_search")
            .sql()?
            .query_row([], |r| r.get(0))
            .sql()?;
        let current = lock(&self.stats).clone();
        if let Some(s) = &current
            && !s.is_stale(max_rid)
        {
            return Ok(current);
        }
        let Ok(_guard) = self.rebuilding.try_lock() else {
            return Ok(current);
        };
        let fresh = Arc::new(TrigramStats::build(conn, max_rid)?);
        *lock(&self.stats) = Some(Arc::clone(&fresh));
        Ok(Some(fresh))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The distinct-or-not trigrams (3 characters) of `text`, as slices.
fn trigrams(text: &str) -> impl Iterator<Item = &str> {
    let bounds: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()))
        .collect();
    (0..bounds.len().saturating_sub(3)).map(move |i| &text[bounds[i]..bounds[i + 3]])
}

/// Whether `haystack` contains `needle` (bytes), with the standard library's vectorised
/// substring search.
fn memmem(haystack: &[u8], needle: &[u8]) -> bool {
    match (std::str::from_utf8(haystack), std::str::from_utf8(needle)) {
        (Ok(h), Ok(n)) => h.contains(n),
        _ => haystack.windows(needle.len().max(1)).any(|w| w == needle),
    }
}

/// Whether `haystack` contains `needle_lower` (already ASCII-lowercased), ASCII
/// case-insensitively. Matches can only start on character boundaries: a UTF-8 needle starts
/// with a lead byte, and ASCII folding maps ASCII bytes to ASCII bytes.
pub(crate) fn contains_ascii_ci(haystack: &str, needle_lower: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle_lower.as_bytes());
    let Some(&first) = n.first() else {
        return true;
    };
    if h.len() < n.len() {
        return false;
    }
    let upper = first.to_ascii_uppercase();
    (0..=h.len() - n.len())
        .any(|i| (h[i] == first || h[i] == upper) && h[i..i + n.len()].eq_ignore_ascii_case(n))
}

/// The search predicate itself: the name, the content or one alias contains the query.
pub(crate) fn entity_matches(e: &Entity, needle_lower: &str) -> bool {
    contains_ascii_ci(&e.entity_name, needle_lower)
        || contains_ascii_ci(&e.content, needle_lower)
        || e.aliases.iter().any(|a| contains_ascii_ci(a, needle_lower))
}

/// SQLite's ordering of values (NULL < numbers < text < blob; text and blobs bytewise), for
/// sorting candidates by `updated_at` exactly as `ORDER BY` would.
fn cmp_sql(a: &Value, b: &Value) -> Ordering {
    fn class(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Integer(_) | Value::Real(_) => 1,
            Value::Text(_) => 2,
            Value::Blob(_) => 3,
        }
    }
    match (a, b) {
        (Value::Integer(x), Value::Integer(y)) => x.cmp(y),
        (Value::Integer(x), Value::Real(y)) => (*x as f64).total_cmp(y),
        (Value::Real(x), Value::Integer(y)) => x.total_cmp(&(*y as f64)),
        (Value::Real(x), Value::Real(y)) => x.total_cmp(y),
        (Value::Text(x), Value::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Blob(x), Value::Blob(y)) => x.cmp(y),
        _ => class(a).cmp(&class(b)),
    }
}

/// `search_entities` (inputs validated).
pub(crate) fn search_entities(
    conn: &Connection,
    state: &SearchState,
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
        return crate::queries::list_entities(conn, &q);
    }
    if limit == 0 {
        return Ok(Vec::new());
    }
    let needle = text.to_ascii_lowercase();
    // Several statements: one read transaction, one snapshot.
    let tx = conn.unchecked_transaction().sql()?;
    let found = search_in_snapshot(&tx, state, k, &needle, limit)?;
    tx.finish().sql()?;
    Ok(found)
}

fn search_in_snapshot(
    conn: &Connection,
    state: &SearchState,
    k: &TenantKey,
    needle: &str,
    limit: u32,
) -> Result<Vec<Entity>> {
    if needle.contains(SEP) || needle.contains('\0') {
        return entity_scan(conn, k, needle, limit);
    }
    if let Some(query) = candidate_query(conn, state, needle, limit)? {
        if query.is_empty() {
            // No trigram starts with the query, so no row contains it.
            return Ok(Vec::new());
        }
        if let Some(rids) = candidates(conn, k, &query, needle, limit)?
            && let Some(found) = load_all(conn, k, needle, &rids)?
        {
            return Ok(found);
        }
    }
    recency_scan(conn, k, needle, limit)
}

/// The FTS5 query of the candidate plan, `None` when the query is not selective enough (scan
/// instead), `Some("")` when no row can contain it.
fn candidate_query(
    conn: &Connection,
    state: &SearchState,
    needle: &str,
    limit: u32,
) -> Result<Option<String>> {
    let stats = state.stats(conn)?;
    let stats = stats.as_deref();
    let chars = needle.chars().count();
    if chars >= 3 {
        let mut grams: Vec<(f64, &str)> = trigrams(needle)
            .map(|t| (stats.map_or(0.0, |s| s.estimate(t)), t))
            .collect();
        grams.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(b.1)));
        grams.dedup_by(|a, b| a.1 == b.1);
        let rarest = grams[0];
        if stats.is_some_and(|s| rarest.0 > s.max_estimate(limit)) {
            return Ok(None);
        }
        // A second trigram costs a doclist walk for every candidate of the first: worth it
        // only when it is nearly as rare and the first is not rare already.
        let mut query = map::fts_phrase(rarest.1);
        if let Some(second) = grams.get(1)
            && rarest.0 > PAIR_ABOVE
            && second.0 <= 4.0 * rarest.0
        {
            query.push_str(" AND ");
            query.push_str(&map::fts_phrase(second.1));
        }
        return Ok(Some(query));
    }
    if stats.is_some_and(|s| s.estimate_prefix(needle) > s.max_estimate(limit)) {
        return Ok(None);
    }
    prefix_terms_query(conn, needle)
}

/// For a 1- or 2-character query: an FTS5 query OR-ing the indexed trigrams that start with
/// it (`Some("")` when there is none), or `None` when there are too many.
fn prefix_terms_query(conn: &Connection, needle: &str) -> Result<Option<String>> {
    let upper = format!("{needle}\u{10FFFF}");
    let mut stmt = conn.prepare_cached(PREFIX_TERMS_SQL).sql()?;
    let mut rows = stmt.query(params![needle, upper]).sql()?;
    let mut query = String::new();
    let mut n = 0;
    while let Some(row) = rows.next().sql()? {
        let term = row.get_ref(0).sql()?.as_str().map_err(|e| {
            StorageError::data_corrupted("entity_search_vocab.term is not text").with_source(e)
        })?;
        n += 1;
        if n > MAX_PREFIX_TERMS || term.contains('\0') {
            return Ok(None);
        }
        if !query.is_empty() {
            query.push_str(" OR ");
        }
        query.push_str(&map::fts_phrase(term));
    }
    Ok(Some(query))
}

/// The rowids of the tenant's `limit` most recent hits among the trigram candidates, or
/// `None` when the tenant has more than [`MAX_CANDIDATES`] candidates.
fn candidates(
    conn: &Connection,
    k: &TenantKey,
    query: &str,
    needle: &str,
    limit: u32,
) -> Result<Option<Vec<i64>>> {
    let mut stmt = conn.prepare_cached(CANDIDATES_SQL).sql()?;
    let mut rows = stmt
        .query(params![k.user_id, k.device_id, k.agent_id, query])
        .sql()?;
    let mut hits: Vec<(Value, i64)> = Vec::new();
    let mut n = 0;
    while let Some(row) = rows.next().sql()? {
        n += 1;
        if n > MAX_CANDIDATES {
            return Ok(None);
        }
        let hit = match row.get_ref(2).sql()? {
            rusqlite::types::ValueRef::Text(t) => memmem(t, needle.as_bytes()),
            _ => false,
        };
        if hit {
            hits.push((row.get(1).sql()?, row.get(0).sql()?));
        }
    }
    hits.sort_by(|a, b| cmp_sql(&b.0, &a.0).then(b.1.cmp(&a.1)));
    Ok(Some(
        hits.into_iter()
            .take(limit as usize)
            .map(|(_, rid)| rid)
            .collect(),
    ))
}

/// Loads one entity by rowid, only if it belongs to the tenant and matches the query.
fn load_hit(conn: &Connection, k: &TenantKey, needle: &str, rid: i64) -> Result<Option<Entity>> {
    let e = conn
        .prepare_cached(LOAD_SQL)
        .sql()?
        .query_row(
            params![rid, k.user_id, k.device_id, k.agent_id],
            map::entity,
        )
        .optional()
        .sql()?;
    Ok(e.filter(|e| entity_matches(e, needle)))
}

/// Loads every candidate; `None` if one is stale (then the caller scans, which skips it).
fn load_all(
    conn: &Connection,
    k: &TenantKey,
    needle: &str,
    rids: &[i64],
) -> Result<Option<Vec<Entity>>> {
    let mut out = Vec::with_capacity(rids.len());
    for &rid in rids {
        match load_hit(conn, k, needle, rid)? {
            Some(e) => out.push(e),
            None => return Ok(None),
        }
    }
    Ok(Some(out))
}

/// The tenant's search texts newest first, one `instr` each; loads hits until `limit`.
fn recency_scan(conn: &Connection, k: &TenantKey, needle: &str, limit: u32) -> Result<Vec<Entity>> {
    let mut stmt = conn.prepare_cached(SCAN_SQL).sql()?;
    let mut rows = stmt
        .query(params![k.user_id, k.device_id, k.agent_id])
        .sql()?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().sql()? {
        let hit = match row.get_ref(1).sql()? {
            rusqlite::types::ValueRef::Text(t) => memmem(t, needle.as_bytes()),
            _ => false,
        };
        if hit && let Some(e) = load_hit(conn, k, needle, row.get(0).sql()?)? {
            out.push(e);
            if out.len() >= limit as usize {
                break;
            }
        }
    }
    Ok(out)
}

/// Queries the search text cannot serve: every entity of the tenant, newest first, compared
/// in Rust.
fn entity_scan(conn: &Connection, k: &TenantKey, needle: &str, limit: u32) -> Result<Vec<Entity>> {
    let sql = format!(
        "SELECT {} FROM entities WHERE user_id = ?1 AND device_id = ?2 AND agent_id = ?3
         ORDER BY updated_at DESC, rowid DESC",
        map::ENTITY_COLS
    );
    let mut stmt = conn.prepare_cached(&sql).sql()?;
    let mut rows = stmt
        .query(params![k.user_id, k.device_id, k.agent_id])
        .sql()?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().sql()? {
        let e = map::entity(row).sql()?;
        if entity_matches(&e, needle) {
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
    fn load_sql_selects_the_entity_columns() {
        assert!(LOAD_SQL.contains(map::ENTITY_COLS));
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
        assert!(contains_ascii_ci("100% OF", "0% o"));
    }

    #[test]
    fn trigrams_are_character_based() {
        assert_eq!(trigrams("abcd").collect::<Vec<_>>(), ["abc", "bcd"]);
        assert_eq!(trigrams("北京人x").collect::<Vec<_>>(), ["北京人", "京人x"]);
        assert_eq!(trigrams("ab").count(), 0);
    }

    #[test]
    fn sql_value_order() {
        let t = |s: &str| Value::Text(s.into());
        let mut v = vec![
            t("2025-01-02 00:00:00"),
            Value::Null,
            Value::Integer(5),
            Value::Real(4.5),
            t("2025-01-01 10:00:00.5"),
        ];
        v.sort_by(cmp_sql);
        assert_eq!(
            v,
            [
                Value::Null,
                Value::Real(4.5),
                Value::Integer(5),
                t("2025-01-01 10:00:00.5"),
                t("2025-01-02 00:00:00")
            ]
        );
    }
}
