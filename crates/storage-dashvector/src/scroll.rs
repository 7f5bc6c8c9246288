//! The scroll cursor: DashVector's query API has no cursor, no offset and no sort, and its
//! filters compare only numbers with `<`/`>`. So every context doc carries `dv_scroll_key`,
//! a 31-bit hash of its id (declared `INT`), and a collection is walked as a sequence of
//! disjoint half-open key ranges `[lo, hi)`, each fetched with a filter-only ("match")
//! query `<filter> and dv_scroll_key >= lo and dv_scroll_key < hi` and `topk = page + 1`:
//!
//! * at most `page` docs back: the range is complete; its docs are yielded sorted by
//!   (key, id) and the cursor moves to the next range;
//! * `page + 1` back: the range may be truncated; it is split in two halves, processed in
//!   order (the partial answer is dropped).
//!
//! Without a filter, the key space starts split into `ceil(4 * count / (3 * page))` equal
//! ranges (`count` from the collection's stats), so almost every range completes at the
//! first query; with a filter (possibly selective) it starts as one range.
//!
//! Every matching doc lies in exactly one leaf range, so each is yielded exactly once, in
//! ascending (key, id) order (stable while nothing is written), with no offset paging. The
//! price: a range holding more than `page` docs costs one extra query per split (a filtered
//! full scroll makes up to about twice as many requests as pages). A single key value shared by more
//! than 1023 docs (hash collisions: practically impossible) cannot be split and fails with a
//! `Backend` error. Docs written without `dv_scroll_key` (by the original) are not reached:
//! re-upsert them once to add it.

use std::collections::VecDeque;

use serde_json::{Value as Json, json};
use storage_core::{Result, StorageError};

use crate::backend::DashVectorBackend;
use crate::config::MAX_DOCS_PER_CALL;
use crate::filter::Compiled;
use crate::mapping::{doc_id, fields_of};
use crate::schema::FIELD_SCROLL_KEY;

/// One past the largest scroll key.
const KEY_END: i64 = 1 << 31;

/// Most initial ranges of a cursor.
const PRESPLIT_MAX: u64 = 1 << 16;

/// The cursor over one collection.
#[derive(Debug)]
pub(crate) struct Cursor {
    collection: String,
    filter: Compiled,
    /// Docs per complete range at most; queries ask for one more.
    page: usize,
    need_vector: bool,
    output_fields: Option<Vec<&'static str>>,
    /// Ranges still to fetch, the next one last.
    ranges: Vec<(i64, i64)>,
    /// Whether the key space was split by the collection's size yet.
    presplit: bool,
}

impl Cursor {
    pub(crate) fn new(
        collection: String,
        filter: Compiled,
        batch_size: usize,
        need_vector: bool,
        output_fields: Option<Vec<&'static str>>,
    ) -> Self {
        let ranges = if filter == Compiled::Nothing {
            Vec::new()
        } else {
            vec![(0, KEY_END)]
        };
        Cursor {
            collection,
            filter,
            page: batch_size.clamp(1, MAX_DOCS_PER_CALL - 1),
            need_vector,
            output_fields,
            ranges,
            presplit: false,
        }
    }

    /// The filter of one range; `None` when the cursor's filter matches nothing.
    fn range_filter(&self, lo: i64, hi: i64) -> Option<String> {
        let range = Compiled::Expr(format!(
            "({FIELD_SCROLL_KEY} >= {lo} and {FIELD_SCROLL_KEY} < {hi})"
        ));
        match self.filter.clone().and(range) {
            Compiled::Expr(e) => Some(e),
            Compiled::All | Compiled::Nothing => None,
        }
    }
}

impl DashVectorBackend {
    /// The next non-empty page of the cursor, `None` when done.
    pub(crate) async fn next_page(&self, cur: &mut Cursor) -> Result<Option<Vec<Json>>> {
        if !cur.presplit && cur.filter == Compiled::All {
            // Unfiltered: start with ranges expected to hold 3/4 of a page each, by the
            // collection's size (which may lag behind writes: it only shapes the ranges,
            // never the result). A filtered scroll starts with one range, as the filter may
            // be selective.
            let total = self.doc_count(&cur.collection).await?;
            let parts = total
                .saturating_mul(4)
                .div_ceil(3 * cur.page as u64)
                .clamp(1, PRESPLIT_MAX) as i64;
            let width = KEY_END / parts;
            cur.ranges = (0..parts)
                .rev()
                .map(|i| {
                    (
                        i * width,
                        if i + 1 == parts {
                            KEY_END
                        } else {
                            (i + 1) * width
                        },
                    )
                })
                .collect();
            cur.presplit = true;
        }
        while let Some((lo, hi)) = cur.ranges.pop() {
            let single = hi - lo == 1;
            let topk = if single {
                MAX_DOCS_PER_CALL
            } else {
                cur.page + 1
            };
            let mut body = json!({
                "topk": topk,
                "filter": cur.range_filter(lo, hi),
                "include_vector": cur.need_vector,
            });
            if let Some(fields) = &cur.output_fields {
                body["output_fields"] = json!(fields);
            }
            let docs = self.query(&cur.collection, &body).await?;
            let complete = if single {
                docs.len() < topk
            } else {
                docs.len() <= cur.page
            };
            if complete {
                if docs.is_empty() {
                    continue;
                }
                return Ok(Some(sort_by_key(docs)?));
            }
            if single {
                return Err(StorageError::backend(format!(
                    "collection '{}': more than {} docs share scroll key {lo}; cannot page them",
                    cur.collection,
                    MAX_DOCS_PER_CALL - 1
                )));
            }
            let mid = lo + (hi - lo) / 2;
            cur.ranges.push((mid, hi));
            cur.ranges.push((lo, mid));
        }
        Ok(None)
    }

    /// Every doc the cursor reaches, up to `limit`.
    pub(crate) async fn drain(&self, mut cur: Cursor, limit: usize) -> Result<Vec<Json>> {
        let mut out = Vec::new();
        while out.len() < limit {
            match self.next_page(&mut cur).await? {
                Some(page) => out.extend(page),
                None => break,
            }
        }
        out.truncate(limit);
        Ok(out)
    }
}

fn sort_by_key(docs: Vec<Json>) -> Result<Vec<Json>> {
    let mut keyed = docs
        .into_iter()
        .map(|d| {
            let key = fields_of(&d)
                .get(FIELD_SCROLL_KEY)
                .and_then(Json::as_i64)
                .unwrap_or(-1);
            let id = doc_id(&d)?.to_owned();
            Ok((key, id, d))
        })
        .collect::<Result<Vec<_>>>()?;
    keyed.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    Ok(keyed.into_iter().map(|(_, _, d)| d).collect())
}

/// Pages of several cursors, one after the other.
pub(crate) struct MultiCursor {
    pub(crate) cursors: VecDeque<Cursor>,
    pub(crate) buffer: VecDeque<Json>,
}
