//! The SQL of every operation, as blocking functions on a connection. Inputs are already
//! validated; every value is a bound parameter, and the only dynamic SQL fragments are column
//! names and conditions from fixed lists in this file.

use chrono::NaiveDateTime;
use rusqlite::{Connection, OptionalExtension, ToSql, params};
use storage_core::records::{MONITORING_BUCKET_FORMAT, monitoring_bucket, todo_status};
use storage_core::*;

use crate::mapping::{self as map, SqlResultExt, json_text, now, ts_to_sql};

type Params = Vec<Box<dyn ToSql>>;

fn refs(params: &Params) -> Vec<&dyn ToSql> {
    params.iter().map(|p| p.as_ref()).collect()
}

fn collect<T>(
    conn: &Connection,
    sql: &str,
    params: &[&dyn ToSql],
    f: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql).sql()?;
    let rows = stmt.query_map(params, f).sql()?;
    rows.collect::<rusqlite::Result<Vec<_>>>().sql()
}

// ----- vaults --------------------------------------------------------------------------------

pub(crate) fn insert_vaults(conn: &Connection, v: &NewVault) -> Result<i64> {
    if let Some(parent) = v.parent_id
        && !exists(conn, "SELECT 1 FROM vaults WHERE id = ?1", parent)?
    {
        return Err(StorageError::not_found(format!(
            "parent_id {parent} names no vault"
        )));
    }
    let now = ts_to_sql(&now());
    conn.prepare_cached(
        "INSERT INTO vaults (title, summary, content, tags, parent_id, is_folder, document_type, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
    )
    .sql()?
    .execute(params![v.title, v.summary, v.content, v.tags, v.parent_id, v.is_folder, v.document_type, now])
    .sql()?;
    Ok(conn.last_insert_rowid())
}

fn exists(conn: &Connection, sql: &str, id: i64) -> Result<bool> {
    conn.prepare_cached(sql)
        .sql()?
        .query_row([id], |_| Ok(()))
        .optional()
        .sql()
        .map(|o| o.is_some())
}

pub(crate) fn get_vaults(conn: &Connection, q: &VaultQuery) -> Result<Vec<Vault>> {
    let mut where_ = vec!["is_deleted = ?"];
    let mut p: Params = vec![Box::new(q.is_deleted)];
    if let Some(t) = &q.document_type {
        where_.push("document_type = ?");
        p.push(Box::new(t.clone()));
    }
    for (cond, bound) in [
        ("created_at >= ?", &q.created_after),
        ("created_at <= ?", &q.created_before),
        ("updated_at >= ?", &q.updated_after),
        ("updated_at <= ?", &q.updated_before),
    ] {
        if let Some(t) = bound {
            where_.push(cond);
            p.push(Box::new(ts_to_sql(t)));
        }
    }
    p.push(Box::new(q.limit));
    p.push(Box::new(validate::offset(q.offset)));
    let sql = format!(
        "SELECT {} FROM vaults WHERE {} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
        map::VAULT_COLS,
        where_.join(" AND ")
    );
    collect(conn, &sql, &refs(&p), map::vault)
}

pub(crate) fn get_vault(conn: &Connection, id: i64) -> Result<Option<Vault>> {
    let sql = format!("SELECT {} FROM vaults WHERE id = ?1", map::VAULT_COLS);
    conn.prepare_cached(&sql)
        .sql()?
        .query_row([id], map::vault)
        .optional()
        .sql()
}

pub(crate) fn update_vault(conn: &Connection, id: i64, u: &VaultUpdate) -> Result<bool> {
    if let Some(Some(parent)) = u.parent_id {
        if parent == id {
            return Err(StorageError::invalid_input(format!(
                "vault {id} cannot be its own parent"
            )));
        }
        if !exists(conn, "SELECT 1 FROM vaults WHERE id = ?1", parent)? {
            return Err(StorageError::not_found(format!(
                "parent_id {parent} names no vault"
            )));
        }
    }
    let mut sets: Vec<&str> = Vec::new();
    let mut p: Params = Vec::new();
    if let Some(v) = &u.title {
        sets.push("title = ?");
        p.push(Box::new(v.clone()));
    }
    if let Some(v) = &u.summary {
        sets.push("summary = ?");
        p.push(Box::new(v.clone()));
    }
    if let Some(v) = &u.content {
        sets.push("content = ?");
        p.push(Box::new(v.clone()));
    }
    if let Some(v) = &u.tags {
        sets.push("tags = ?");
        p.push(Box::new(v.clone()));
    }
    if let Some(v) = u.parent_id {
        sets.push("parent_id = ?");
        p.push(Box::new(v));
    }
    if let Some(v) = u.is_folder {
        sets.push("is_folder = ?");
        p.push(Box::new(v));
    }
    if let Some(v) = u.is_deleted {
        sets.push("is_deleted = ?");
        p.push(Box::new(v));
    }
    sets.push("updated_at = ?");
    p.push(Box::new(ts_to_sql(&now())));
    p.push(Box::new(id));
    let sql = format!("UPDATE vaults SET {} WHERE id = ?", sets.join(", "));
    Ok(conn.prepare_cached(&sql).sql()?.execute(&*refs(&p)).sql()? > 0)
}

pub(crate) fn get_reports(
    conn: &Connection,
    limit: u32,
    offset: u64,
    is_deleted: bool,
) -> Result<Vec<Vault>> {
    let sql = format!(
        "SELECT {} FROM vaults WHERE is_deleted = ?1 AND document_type != 'Note'
         ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3",
        map::VAULT_COLS
    );
    collect(
        conn,
        &sql,
        params![is_deleted, limit, validate::offset(offset)],
        map::vault,
    )
}

// ----- todos and tips ------------------------------------------------------------------------

/// The statement of `insert_todo`.
pub const INSERT_TODO_SQL: &str = "INSERT INTO todo (content, start_time, end_time, status, urgency, assignee, reason, created_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

pub(crate) fn insert_todo(conn: &Connection, t: &NewTodo) -> Result<i64> {
    let now = now();
    let start = ts_to_sql(t.start_time.as_ref().unwrap_or(&now));
    conn.prepare_cached(INSERT_TODO_SQL)
        .sql()?
        .execute(params![
            t.content,
            start,
            t.end_time.as_ref().map(ts_to_sql),
            t.status,
            t.urgency,
            t.assignee,
            t.reason,
            ts_to_sql(&now)
        ])
        .sql()?;
    Ok(conn.last_insert_rowid())
}

pub(crate) fn get_todos(conn: &Connection, q: &TodoQuery) -> Result<Vec<Todo>> {
    let mut where_ = vec!["1 = 1"];
    let mut p: Params = Vec::new();
    if let Some(t) = &q.start_time {
        where_.push("start_time >= ?");
        p.push(Box::new(ts_to_sql(t)));
    }
    if let Some(t) = &q.end_time {
        where_.push("end_time <= ?");
        p.push(Box::new(ts_to_sql(t)));
    }
    if let Some(s) = q.status {
        where_.push("status = ?");
        p.push(Box::new(s));
    }
    p.push(Box::new(q.limit));
    p.push(Box::new(validate::offset(q.offset)));
    let sql = format!(
        "SELECT {} FROM todo WHERE {} ORDER BY urgency DESC, created_at DESC, id DESC LIMIT ? OFFSET ?",
        map::TODO_COLS,
        where_.join(" AND ")
    );
    collect(conn, &sql, &refs(&p), map::todo)
}

pub(crate) fn update_todo_status(
    conn: &Connection,
    id: i64,
    status: i64,
    end_time: Option<Timestamp>,
) -> Result<bool> {
    let end_time = match end_time {
        Some(t) => Some(t),
        None if status == todo_status::COMPLETED => Some(now()),
        None => None,
    };
    let n = conn
        .prepare_cached("UPDATE todo SET status = ?1, end_time = ?2 WHERE id = ?3")
        .sql()?
        .execute(params![status, end_time.as_ref().map(ts_to_sql), id])
        .sql()?;
    Ok(n > 0)
}

pub(crate) fn insert_tip(conn: &Connection, content: &str) -> Result<i64> {
    conn.prepare_cached("INSERT INTO tips (content, created_at) VALUES (?1, ?2)")
        .sql()?
        .execute(params![content, ts_to_sql(&now())])
        .sql()?;
    Ok(conn.last_insert_rowid())
}

pub(crate) fn get_tips(conn: &Connection, q: &TipQuery) -> Result<Vec<Tip>> {
    let mut where_ = vec!["1 = 1"];
    let mut p: Params = Vec::new();
    if let Some(t) = &q.start_time {
        where_.push("created_at >= ?");
        p.push(Box::new(ts_to_sql(t)));
    }
    if let Some(t) = &q.end_time {
        where_.push("created_at <= ?");
        p.push(Box::new(ts_to_sql(t)));
    }
    p.push(Box::new(q.limit));
    p.push(Box::new(validate::offset(q.offset)));
    let sql = format!(
        "SELECT {} FROM tips WHERE {} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
        map::TIP_COLS,
        where_.join(" AND ")
    );
    collect(conn, &sql, &refs(&p), map::tip)
}

// ----- profiles ------------------------------------------------------------------------------

/// The statement of `upsert_profile`.
pub const UPSERT_PROFILE_SQL: &str =
    "INSERT INTO profiles (user_id, device_id, agent_id, content, summary, keywords,
                          entities, importance, metadata, created_at, updated_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)
     ON CONFLICT(user_id, device_id, agent_id) DO UPDATE SET
        content = excluded.content, summary = excluded.summary, keywords = excluded.keywords,
        entities = excluded.entities, importance = excluded.importance,
        metadata = excluded.metadata, updated_at = excluded.updated_at";

pub(crate) fn upsert_profile(conn: &Connection, p: &ProfileUpsert) -> Result<()> {
    conn.prepare_cached(UPSERT_PROFILE_SQL)
        .sql()?
        .execute(params![
            p.key.user_id,
            p.key.device_id,
            p.key.agent_id,
            p.content,
            p.summary,
            json_text(&p.keywords)?,
            json_text(&p.entities)?,
            p.importance,
            json_text(&p.metadata)?,
            ts_to_sql(&now()),
        ])
        .sql()?;
    Ok(())
}

/// The statement of `get_profile`.
pub const GET_PROFILE_SQL: &str = "SELECT user_id, device_id, agent_id, content, summary, keywords, entities, \
     importance, metadata, created_at, updated_at FROM profiles WHERE user_id = ?1 AND device_id = ?2 AND agent_id = ?3";

pub(crate) fn get_profile(conn: &Connection, k: &TenantKey) -> Result<Option<Profile>> {
    conn.prepare_cached(GET_PROFILE_SQL)
        .sql()?
        .query_row(params![k.user_id, k.device_id, k.agent_id], map::profile)
        .optional()
        .sql()
}

pub(crate) fn delete_profile(conn: &Connection, k: &TenantKey) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "DELETE FROM profiles WHERE user_id = ?1 AND device_id = ?2 AND agent_id = ?3",
        )
        .sql()?
        .execute(params![k.user_id, k.device_id, k.agent_id])
        .sql()?;
    Ok(n > 0)
}

// ----- entities ------------------------------------------------------------------------------

pub(crate) fn upsert_entity(conn: &Connection, e: &EntityUpsert) -> Result<String> {
    let new_id = uuid::Uuid::new_v4().to_string();
    conn.prepare_cached(
        "INSERT INTO entities (id, user_id, device_id, agent_id, entity_name, entity_type, content, summary,
                               keywords, aliases, metadata, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)
         ON CONFLICT(user_id, device_id, agent_id, entity_name) DO UPDATE SET
            entity_type = excluded.entity_type, content = excluded.content, summary = excluded.summary,
            keywords = excluded.keywords, aliases = excluded.aliases, metadata = excluded.metadata,
            updated_at = excluded.updated_at
         RETURNING id",
    )
    .sql()?
    .query_row(
        params![
            new_id,
            e.key.user_id,
            e.key.device_id,
            e.key.agent_id,
            e.entity_name,
            e.entity_type,
            e.content,
            e.summary,
            json_text(&e.keywords)?,
            json_text(&e.aliases)?,
            json_text(&e.metadata)?,
            ts_to_sql(&now()),
        ],
        |r| r.get(0),
    )
    .sql()
}

pub(crate) fn get_entity(conn: &Connection, k: &TenantKey, name: &str) -> Result<Option<Entity>> {
    let sql = format!(
        "SELECT {} FROM entities WHERE user_id = ?1 AND device_id = ?2 AND agent_id = ?3 AND entity_name = ?4",
        map::ENTITY_COLS
    );
    conn.prepare_cached(&sql)
        .sql()?
        .query_row(
            params![k.user_id, k.device_id, k.agent_id, name],
            map::entity,
        )
        .optional()
        .sql()
}

pub(crate) fn list_entities(conn: &Connection, q: &EntityQuery) -> Result<Vec<Entity>> {
    let k = &q.key;
    let type_cond = if q.entity_type.is_some() {
        "AND entity_type = ?4"
    } else {
        "AND ?4 IS NULL"
    };
    let sql = format!(
        "SELECT {} FROM entities WHERE user_id = ?1 AND device_id = ?2 AND agent_id = ?3 {type_cond}
         ORDER BY updated_at DESC, rowid DESC LIMIT ?5 OFFSET ?6",
        map::ENTITY_COLS
    );
    collect(
        conn,
        &sql,
        params![
            k.user_id,
            k.device_id,
            k.agent_id,
            q.entity_type,
            q.limit,
            validate::offset(q.offset)
        ],
        map::entity,
    )
}

pub(crate) fn delete_entity(conn: &Connection, k: &TenantKey, name: &str) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "DELETE FROM entities WHERE user_id = ?1 AND device_id = ?2 AND agent_id = ?3 AND entity_name = ?4",
        )
        .sql()?
        .execute(params![k.user_id, k.device_id, k.agent_id, name])
        .sql()?;
    Ok(n > 0)
}

// ----- monitoring ----------------------------------------------------------------------------

pub(crate) fn save_token_usage(conn: &Connection, s: &TokenUsageSample) -> Result<()> {
    let at = s.at.unwrap_or_else(now);
    conn.prepare_cached(
        "INSERT INTO monitoring_token_usage (time_bucket, model, prompt_tokens, completion_tokens, total_tokens, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(time_bucket, model) DO UPDATE SET
            prompt_tokens = CASE WHEN prompt_tokens > 9223372036854775807 - excluded.prompt_tokens THEN 9223372036854775807 ELSE prompt_tokens + excluded.prompt_tokens END,
            completion_tokens = CASE WHEN completion_tokens > 9223372036854775807 - excluded.completion_tokens THEN 9223372036854775807 ELSE completion_tokens + excluded.completion_tokens END,
            total_tokens = CASE WHEN total_tokens > 9223372036854775807 - excluded.total_tokens THEN 9223372036854775807 ELSE total_tokens + excluded.total_tokens END",
    )
    .sql()?
    .execute(params![
        monitoring_bucket(&at),
        s.model,
        validate::counter("prompt_tokens", s.prompt_tokens)?,
        validate::counter("completion_tokens", s.completion_tokens)?,
        validate::counter("total_tokens", s.total_tokens)?,
        ts_to_sql(&now())
    ])
    .sql()?;
    Ok(())
}

pub(crate) fn save_stage_timing(conn: &Connection, s: &StageTimingSample) -> Result<()> {
    let at = s.at.unwrap_or_else(now);
    let (ok, err) = if s.success { (1, 0) } else { (0, 1) };
    conn.prepare_cached(
        "INSERT INTO monitoring_stage_timing (time_bucket, stage_name, \"count\", total_duration_ms, min_duration_ms,
             max_duration_ms, avg_duration_ms, success_count, error_count, metadata, created_at)
         VALUES (?1, ?2, 1, ?3, ?3, ?3, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(time_bucket, stage_name) DO UPDATE SET
            \"count\" = \"count\" + 1,
            total_duration_ms = CASE WHEN total_duration_ms > 9223372036854775807 - excluded.total_duration_ms THEN 9223372036854775807 ELSE total_duration_ms + excluded.total_duration_ms END,
            min_duration_ms = MIN(min_duration_ms, excluded.min_duration_ms),
            max_duration_ms = MAX(max_duration_ms, excluded.max_duration_ms),
            avg_duration_ms = (CASE WHEN total_duration_ms > 9223372036854775807 - excluded.total_duration_ms THEN 9223372036854775807 ELSE total_duration_ms + excluded.total_duration_ms END) / (\"count\" + 1),
            success_count = success_count + excluded.success_count,
            error_count = error_count + excluded.error_count",
    )
    .sql()?
    .execute(params![
        monitoring_bucket(&at),
        s.stage_name,
        validate::counter("duration_ms", s.duration_ms)?,
        ok,
        err,
        s.metadata,
        ts_to_sql(&now())
    ])
    .sql()?;
    Ok(())
}

pub(crate) fn save_data_stats(conn: &Connection, s: &DataStatsSample) -> Result<()> {
    let at = s.at.unwrap_or_else(now);
    let bucket = monitoring_bucket(&at);
    // `UNIQUE(time_bucket, data_type, context_type)` never conflicts on a NULL context type,
    // so update first (`IS` matches NULL) and insert when nothing was there.
    let n = conn
        .prepare_cached(
            "UPDATE monitoring_data_stats SET \"count\" = CASE WHEN \"count\" > 9223372036854775807 - ?4 THEN 9223372036854775807 ELSE \"count\" + ?4 END
             WHERE time_bucket = ?1 AND data_type = ?2 AND context_type IS ?3",
        )
        .sql()?
        .execute(params![bucket, s.data_type, s.context_type, validate::counter("count", s.count)?])
        .sql()?;
    if n == 0 {
        conn.prepare_cached(
            "INSERT INTO monitoring_data_stats (time_bucket, data_type, \"count\", context_type, metadata, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .sql()?
        .execute(params![bucket, s.data_type, validate::counter("count", s.count)?, s.context_type, s.metadata, ts_to_sql(&now())])
        .sql()?;
    }
    Ok(())
}

fn cutoff_bucket(hours: u32) -> String {
    monitoring_bucket(&storage_core::time::hours_ago(hours))
}

pub(crate) fn query_token_usage(conn: &Connection, hours: u32) -> Result<Vec<TokenUsageRecord>> {
    collect(
        conn,
        "SELECT model, prompt_tokens, completion_tokens, total_tokens, time_bucket FROM monitoring_token_usage
         WHERE time_bucket >= ?1 ORDER BY time_bucket DESC, model",
        params![cutoff_bucket(hours)],
        |r| {
            Ok(TokenUsageRecord {
                model: r.get(0)?,
                prompt_tokens: r.get::<_, Option<i64>>(1)?.unwrap_or(0),
                completion_tokens: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
                total_tokens: r.get::<_, Option<i64>>(3)?.unwrap_or(0),
                time_bucket: r.get(4)?,
            })
        },
    )
}

pub(crate) fn query_stage_timing(conn: &Connection, hours: u32) -> Result<Vec<StageTimingRecord>> {
    collect(
        conn,
        "SELECT stage_name, \"count\", total_duration_ms, min_duration_ms, max_duration_ms, avg_duration_ms,
                success_count, error_count, metadata, time_bucket
         FROM monitoring_stage_timing WHERE time_bucket >= ?1 ORDER BY time_bucket DESC, stage_name",
        params![cutoff_bucket(hours)],
        |r| {
            Ok(StageTimingRecord {
                stage_name: r.get(0)?,
                count: r.get::<_, Option<i64>>(1)?.unwrap_or(0),
                total_duration_ms: r.get(2)?,
                min_duration_ms: r.get(3)?,
                max_duration_ms: r.get(4)?,
                avg_duration_ms: r.get(5)?,
                success_count: r.get::<_, Option<i64>>(6)?.unwrap_or(0),
                error_count: r.get::<_, Option<i64>>(7)?.unwrap_or(0),
                metadata: r.get(8)?,
                time_bucket: r.get(9)?,
            })
        },
    )
}

fn data_stats_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<DataStatsRecord> {
    Ok(DataStatsRecord {
        data_type: r.get(0)?,
        count: r.get::<_, Option<i64>>(1)?.unwrap_or(0),
        context_type: r.get(2)?,
    })
}

pub(crate) fn query_data_stats(conn: &Connection, hours: u32) -> Result<Vec<DataStatsRecord>> {
    collect(
        conn,
        "SELECT data_type, SUM(\"count\"), context_type FROM monitoring_data_stats WHERE time_bucket >= ?1
         GROUP BY data_type, context_type ORDER BY data_type, context_type",
        params![cutoff_bucket(hours)],
        data_stats_record,
    )
}

pub(crate) fn query_data_stats_by_range(
    conn: &Connection,
    start: &Timestamp,
    end: &Timestamp,
) -> Result<Vec<DataStatsRecord>> {
    collect(
        conn,
        "SELECT data_type, SUM(\"count\"), context_type FROM monitoring_data_stats
         WHERE time_bucket >= ?1 AND time_bucket <= ?2
         GROUP BY data_type, context_type ORDER BY data_type, context_type",
        params![monitoring_bucket(start), monitoring_bucket(end)],
        data_stats_record,
    )
}

pub(crate) fn query_data_stats_trend(
    conn: &Connection,
    hours: u32,
    interval_hours: u32,
) -> Result<Vec<DataStatsTrendRecord>> {
    let rows = collect(
        conn,
        "SELECT time_bucket, data_type, SUM(\"count\"), context_type FROM monitoring_data_stats
         WHERE time_bucket >= ?1 GROUP BY time_bucket, data_type, context_type ORDER BY time_bucket",
        params![cutoff_bucket(hours)],
        |r| {
            Ok(DataStatsTrendRecord {
                timestamp: r.get(0)?,
                data_type: r.get(1)?,
                count: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
                context_type: r.get(3)?,
            })
        },
    )?;
    if interval_hours <= 1 {
        return Ok(rows);
    }
    // Re-bucket into intervals aligned to the epoch; BTreeMap keeps intervals in order.
    let step = i64::from(interval_hours) * 3600;
    let mut out: std::collections::BTreeMap<(String, String, Option<String>), i64> =
        Default::default();
    for r in rows {
        let start = match NaiveDateTime::parse_from_str(&r.timestamp, "%Y-%m-%d %H:%M:%S") {
            Ok(t) => {
                let secs = t.and_utc().timestamp();
                let aligned = secs - secs.rem_euclid(step);
                chrono::DateTime::from_timestamp(aligned, 0)
                    .map(|d| d.format(MONITORING_BUCKET_FORMAT).to_string())
                    .unwrap_or(r.timestamp)
            }
            Err(_) => {
                return Err(StorageError::data_corrupted(format!(
                    "monitoring_data_stats.time_bucket {:?} is not YYYY-MM-DD HH:00:00",
                    r.timestamp
                )));
            }
        };
        *out.entry((start, r.data_type, r.context_type)).or_default() += r.count;
    }
    Ok(out
        .into_iter()
        .map(
            |((timestamp, data_type, context_type), count)| DataStatsTrendRecord {
                timestamp,
                data_type,
                count,
                context_type,
            },
        )
        .collect())
}

pub(crate) fn cleanup_monitoring(conn: &Connection, days: u32) -> Result<MonitoringCleanup> {
    let cutoff = monitoring_bucket(&storage_core::time::days_ago(days));
    let del = |table: &str| -> Result<u64> {
        // `table` is one of the three literals below.
        let sql = format!("DELETE FROM {table} WHERE time_bucket < ?1");
        Ok(conn.prepare_cached(&sql).sql()?.execute([&cutoff]).sql()? as u64)
    };
    Ok(MonitoringCleanup {
        token_usage: del("monitoring_token_usage")?,
        stage_timing: del("monitoring_stage_timing")?,
        data_stats: del("monitoring_data_stats")?,
    })
}

// ----- conversations -------------------------------------------------------------------------

pub(crate) fn create_conversation(conn: &Connection, c: &NewConversation) -> Result<Conversation> {
    let now = ts_to_sql(&now());
    conn.prepare_cached(
        "INSERT INTO conversations (page_name, user_id, title, metadata, status, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, 'active', ?5, ?5)",
    )
    .sql()?
    .execute(params![c.page_name, c.user_id, c.title, json_text(&c.metadata)?, now])
    .sql()?;
    let id = conn.last_insert_rowid();
    get_conversation(conn, id)?
        .ok_or_else(|| StorageError::backend(format!("conversation {id} vanished after insert")))
}

pub(crate) fn get_conversation(conn: &Connection, id: i64) -> Result<Option<Conversation>> {
    let sql = format!(
        "SELECT {} FROM conversations WHERE id = ?1",
        map::CONVERSATION_COLS
    );
    conn.prepare_cached(&sql)
        .sql()?
        .query_row([id], map::conversation)
        .optional()
        .sql()
}

pub(crate) fn get_conversation_list(
    conn: &Connection,
    q: &ConversationQuery,
) -> Result<ConversationPage> {
    let mut where_ = vec!["1 = 1"];
    let mut p: Params = Vec::new();
    if let Some(s) = q.status {
        where_.push("status = ?");
        p.push(Box::new(s.as_str()));
    }
    if let Some(v) = &q.page_name {
        where_.push("page_name = ?");
        p.push(Box::new(v.clone()));
    }
    if let Some(v) = &q.user_id {
        where_.push("user_id = ?");
        p.push(Box::new(v.clone()));
    }
    let where_sql = where_.join(" AND ");
    let tx = conn.unchecked_transaction().sql()?;
    let total: i64 = tx
        .prepare_cached(&format!(
            "SELECT COUNT(*) FROM conversations WHERE {where_sql}"
        ))
        .sql()?
        .query_row(&*refs(&p), |r| r.get(0))
        .sql()?;
    p.push(Box::new(q.limit));
    p.push(Box::new(validate::offset(q.offset)));
    let items = collect(
        &tx,
        &format!(
            "SELECT {} FROM conversations WHERE {where_sql} ORDER BY updated_at DESC, id DESC LIMIT ? OFFSET ?",
            map::CONVERSATION_COLS
        ),
        &refs(&p),
        map::conversation,
    )?;
    tx.finish().sql()?;
    Ok(ConversationPage {
        items,
        total: total as u64,
    })
}

pub(crate) fn update_conversation(
    conn: &Connection,
    id: i64,
    u: &ConversationUpdate,
) -> Result<Option<Conversation>> {
    if u.title.is_some() || u.status.is_some() {
        let n = conn
            .prepare_cached(
                "UPDATE conversations SET title = COALESCE(?1, title), status = COALESCE(?2, status), updated_at = ?3
                 WHERE id = ?4",
            )
            .sql()?
            .execute(params![u.title, u.status.map(|s| s.as_str()), ts_to_sql(&now()), id])
            .sql()?;
        if n == 0 {
            return Ok(None);
        }
    }
    get_conversation(conn, id)
}

// ----- messages ------------------------------------------------------------------------------

fn touch_conversation_of(conn: &Connection, message_id: i64, now: &str) -> Result<()> {
    conn.prepare_cached(
        "UPDATE conversations SET updated_at = ?1 WHERE id = (SELECT conversation_id FROM messages WHERE id = ?2)",
    )
    .sql()?
    .execute(params![now, message_id])
    .sql()?;
    Ok(())
}

pub(crate) fn get_message(
    conn: &Connection,
    id: i64,
    include_thinking: bool,
) -> Result<Option<Message>> {
    let sql = format!("SELECT {} FROM messages WHERE id = ?1", map::MESSAGE_COLS);
    let msg = conn
        .prepare_cached(&sql)
        .sql()?
        .query_row([id], map::message)
        .optional()
        .sql()?;
    match msg {
        Some(mut m) if include_thinking => {
            m.thinking = get_message_thinking(conn, id)?;
            Ok(Some(m))
        }
        other => Ok(other),
    }
}

pub(crate) fn create_message(conn: &Connection, m: &NewMessage) -> Result<Message> {
    if !exists(
        conn,
        "SELECT 1 FROM conversations WHERE id = ?1",
        m.conversation_id,
    )? {
        return Err(StorageError::not_found(format!(
            "conversation {} does not exist",
            m.conversation_id
        )));
    }
    let now = ts_to_sql(&now());
    let (status, completed_at) = if m.is_complete {
        (message_status::COMPLETED, Some(now.as_str()))
    } else {
        (message_status::STREAMING, None)
    };
    conn.prepare_cached(
        "INSERT INTO messages (conversation_id, role, content, status, token_count, parent_message_id, metadata,
                               completed_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
    )
    .sql()?
    .execute(params![
        m.conversation_id,
        m.role,
        m.content,
        status,
        validate::counter("token_count", m.token_count)?,
        m.parent_message_id,
        json_text(&m.metadata)?,
        completed_at,
        now
    ])
    .sql()?;
    let id = conn.last_insert_rowid();
    conn.prepare_cached("UPDATE conversations SET updated_at = ?1 WHERE id = ?2")
        .sql()?
        .execute(params![now, m.conversation_id])
        .sql()?;
    get_message(conn, id, true)?
        .ok_or_else(|| StorageError::backend(format!("message {id} vanished after insert")))
}

pub(crate) fn update_message(
    conn: &Connection,
    id: i64,
    u: &MessageUpdate,
) -> Result<Option<Message>> {
    let now = ts_to_sql(&now());
    // Status columns follow `is_complete`: true -> completed now, false -> streaming, None -> kept.
    let n = conn
        .prepare_cached(
            "UPDATE messages SET content = ?1, updated_at = ?2,
                token_count = COALESCE(?3, token_count),
                status = CASE ?4 WHEN 1 THEN 'completed' WHEN 0 THEN 'streaming' ELSE status END,
                completed_at = CASE ?4 WHEN 1 THEN ?2 WHEN 0 THEN NULL ELSE completed_at END
             WHERE id = ?5",
        )
        .sql()?
        .execute(params![
            u.new_content,
            now,
            u.token_count
                .map(|t| validate::counter("token_count", t))
                .transpose()?,
            u.is_complete,
            id
        ])
        .sql()?;
    if n == 0 {
        return Ok(None);
    }
    touch_conversation_of(conn, id, &now)?;
    get_message(conn, id, true)
}

pub(crate) fn append_message_content(
    conn: &Connection,
    id: i64,
    chunk: &str,
    tokens: u64,
) -> Result<bool> {
    let now = ts_to_sql(&now());
    let n = conn
        .prepare_cached(
            "UPDATE messages SET content = COALESCE(content, '') || ?1, token_count = CASE WHEN COALESCE(token_count, 0) > 9223372036854775807 - ?2 THEN 9223372036854775807 ELSE COALESCE(token_count, 0) + ?2 END,
                status = CASE WHEN status = 'pending' THEN 'streaming' ELSE status END, updated_at = ?3
             WHERE id = ?4",
        )
        .sql()?
        .execute(params![chunk, validate::counter("tokens", tokens)?, now, id])
        .sql()?;
    if n == 0 {
        return Ok(false);
    }
    touch_conversation_of(conn, id, &now)?;
    Ok(true)
}

pub(crate) fn update_message_metadata(
    conn: &Connection,
    id: i64,
    metadata: &JsonMap,
) -> Result<bool> {
    let n = conn
        .prepare_cached("UPDATE messages SET metadata = ?1, updated_at = ?2 WHERE id = ?3")
        .sql()?
        .execute(params![json_text(metadata)?, ts_to_sql(&now()), id])
        .sql()?;
    Ok(n > 0)
}

pub(crate) fn mark_message_finished(
    conn: &Connection,
    id: i64,
    status: FinishStatus,
    error: Option<&str>,
) -> Result<bool> {
    let current: Option<String> = conn
        .prepare_cached("SELECT status FROM messages WHERE id = ?1")
        .sql()?
        .query_row([id], |r| r.get(0))
        .optional()
        .sql()?;
    let Some(current) = current else {
        return Ok(false);
    };
    if current == status.as_str() {
        return Ok(true);
    }
    let now = ts_to_sql(&now());
    conn.prepare_cached(
        "UPDATE messages SET status = ?1, completed_at = ?2, updated_at = ?2,
            error_message = COALESCE(?3, error_message) WHERE id = ?4",
    )
    .sql()?
    .execute(params![
        status.as_str(),
        now,
        error.filter(|e| !e.is_empty()),
        id
    ])
    .sql()?;
    touch_conversation_of(conn, id, &now)?;
    Ok(true)
}

pub(crate) fn get_conversation_messages(
    conn: &Connection,
    conversation_id: i64,
) -> Result<Vec<Message>> {
    let tx = conn.unchecked_transaction().sql()?;
    let mut messages = collect(
        &tx,
        &format!(
            "SELECT {} FROM messages WHERE conversation_id = ?1 ORDER BY created_at ASC, id ASC",
            map::MESSAGE_COLS
        ),
        params![conversation_id],
        map::message,
    )?;
    for m in &mut messages {
        m.thinking = get_message_thinking(&tx, m.id)?;
    }
    tx.finish().sql()?;
    Ok(messages)
}

pub(crate) fn delete_message(conn: &Connection, id: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM messages WHERE id = ?1")
        .sql()?
        .execute([id])
        .sql()?
        > 0)
}

// ----- thinking ------------------------------------------------------------------------------

pub(crate) fn add_message_thinking(conn: &Connection, t: &NewThinking) -> Result<i64> {
    if !exists(conn, "SELECT 1 FROM messages WHERE id = ?1", t.message_id)? {
        return Err(StorageError::not_found(format!(
            "message {} does not exist",
            t.message_id
        )));
    }
    let sequence = match t.sequence {
        Some(s) => s,
        None => conn
            .prepare_cached("SELECT COALESCE(MAX(sequence), -1) + 1 FROM message_thinking WHERE message_id = ?1")
            .sql()?
            .query_row([t.message_id], |r| r.get(0))
            .sql()?,
    };
    conn.prepare_cached(
        "INSERT INTO message_thinking (message_id, content, stage, progress, sequence, metadata, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .sql()?
    .execute(params![
        t.message_id,
        t.content,
        t.stage,
        t.progress,
        sequence,
        json_text(&t.metadata)?,
        ts_to_sql(&now())
    ])
    .sql()?;
    Ok(conn.last_insert_rowid())
}

pub(crate) fn get_message_thinking(
    conn: &Connection,
    message_id: i64,
) -> Result<Vec<MessageThinking>> {
    collect(
        conn,
        &format!(
            "SELECT {} FROM message_thinking WHERE message_id = ?1 ORDER BY sequence ASC, created_at ASC, id ASC",
            map::THINKING_COLS
        ),
        params![message_id],
        map::thinking,
    )
}

pub(crate) fn clear_message_thinking(conn: &Connection, message_id: i64) -> Result<u64> {
    Ok(conn
        .prepare_cached("DELETE FROM message_thinking WHERE message_id = ?1")
        .sql()?
        .execute([message_id])
        .sql()? as u64)
}
