//! The SQL of every operation, as async functions on one connection (a transaction where the
//! operation writes several statements, see `backend.rs`). Inputs are already validated;
//! every value is a bound parameter, and the only dynamic SQL fragments are column names and
//! conditions from fixed lists in this file.
//!
//! Upserts bind every value once: `INSERT INTO t (...) SELECT * FROM (SELECT ? AS a, ...) AS
//! new ON DUPLICATE KEY UPDATE t.a = new.a` (a derived table, accepted by MySQL 8 and MariaDB
//! alike, unlike the row alias `AS new` of `VALUES`, MySQL 8.0.19+ only, and `VALUES(col)`,
//! deprecated since MySQL 8.0.20). Binding a text twice (`col = ?`) would double the
//! statement and halve the largest text that fits the server's `max_allowed_packet`. The
//! small monitoring upserts still bind their counters twice.

use chrono::NaiveDateTime;
use sqlx::mysql::{MySqlArguments, MySqlConnection, MySqlRow};
use sqlx::{Arguments, AssertSqlSafe, Row};
use storage_core::records::{MONITORING_BUCKET_FORMAT, monitoring_bucket, todo_status};
use storage_core::*;

use crate::error::SqlxResultExt;
use crate::mapping::{self as map, json_text, now, ts_to_sql};

type Conn = MySqlConnection;

/// Adds a value to dynamic arguments.
fn add<'q, T>(args: &mut MySqlArguments, v: T) -> Result<()>
where
    T: sqlx::Encode<'q, sqlx::MySql> + sqlx::Type<sqlx::MySql>,
{
    args.add(v)
        .map_err(|e| StorageError::invalid_input("a value cannot be encoded").with_source(e))
}

async fn fetch_all<T>(
    c: &mut Conn,
    sql: String,
    args: MySqlArguments,
    f: fn(&MySqlRow) -> Result<T>,
) -> Result<Vec<T>> {
    let rows = sqlx::query_with(AssertSqlSafe(sql), args)
        .fetch_all(&mut *c)
        .await
        .db()?;
    rows.iter().map(f).collect()
}

async fn exists(c: &mut Conn, sql: &'static str, id: i64) -> Result<bool> {
    Ok(sqlx::query(sql)
        .bind(id)
        .fetch_optional(&mut *c)
        .await
        .db()?
        .is_some())
}

fn limit_offset(args: &mut MySqlArguments, limit: u32, offset: u64) -> Result<()> {
    add(args, i64::from(limit))?;
    add(args, validate::offset(offset))
}

// ----- vaults --------------------------------------------------------------------------------

pub(crate) async fn insert_vaults(c: &mut Conn, v: &NewVault) -> Result<i64> {
    if let Some(parent) = v.parent_id
        && !exists(
            c,
            "SELECT 1 FROM vaults WHERE id = ? LOCK IN SHARE MODE",
            parent,
        )
        .await?
    {
        return Err(StorageError::not_found(format!(
            "parent_id {parent} names no vault"
        )));
    }
    let now = ts_to_sql(&now());
    let r = sqlx::query(
        "INSERT INTO vaults (title, summary, content, tags, parent_id, is_folder, document_type, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&v.title)
    .bind(&v.summary)
    .bind(&v.content)
    .bind(&v.tags)
    .bind(v.parent_id)
    .bind(v.is_folder)
    .bind(&v.document_type)
    .bind(now)
    .bind(now)
    .execute(&mut *c)
    .await
    .db()?;
    Ok(r.last_insert_id() as i64)
}

pub(crate) async fn get_vaults(c: &mut Conn, q: &VaultQuery) -> Result<Vec<Vault>> {
    let mut where_ = vec!["is_deleted = ?"];
    let mut args = MySqlArguments::default();
    add(&mut args, q.is_deleted)?;
    if let Some(t) = &q.document_type {
        where_.push("document_type = ?");
        add(&mut args, t.clone())?;
    }
    for (cond, bound) in [
        ("created_at >= ?", &q.created_after),
        ("created_at <= ?", &q.created_before),
        ("updated_at >= ?", &q.updated_after),
        ("updated_at <= ?", &q.updated_before),
    ] {
        if let Some(t) = bound {
            where_.push(cond);
            add(&mut args, ts_to_sql(t))?;
        }
    }
    limit_offset(&mut args, q.limit, q.offset)?;
    let sql = format!(
        "SELECT {} FROM vaults WHERE {} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
        map::VAULT_COLS,
        where_.join(" AND ")
    );
    fetch_all(c, sql, args, map::vault).await
}

pub(crate) async fn get_vault(c: &mut Conn, id: i64) -> Result<Option<Vault>> {
    const SQL: &str = "SELECT id, title, summary, content, tags, parent_id, is_folder, is_deleted, \
         created_at, updated_at, document_type, sort_order FROM vaults WHERE id = ?";
    sqlx::query(SQL)
        .bind(id)
        .fetch_optional(&mut *c)
        .await
        .db()?
        .as_ref()
        .map(map::vault)
        .transpose()
}

pub(crate) async fn update_vault(c: &mut Conn, id: i64, u: &VaultUpdate) -> Result<bool> {
    if let Some(Some(parent)) = u.parent_id {
        if parent == id {
            return Err(StorageError::invalid_input(format!(
                "vault {id} cannot be its own parent"
            )));
        }
        if !exists(
            c,
            "SELECT 1 FROM vaults WHERE id = ? LOCK IN SHARE MODE",
            parent,
        )
        .await?
        {
            return Err(StorageError::not_found(format!(
                "parent_id {parent} names no vault"
            )));
        }
    }
    let mut sets: Vec<&str> = Vec::new();
    let mut args = MySqlArguments::default();
    for (col, v) in [
        ("title = ?", &u.title),
        ("summary = ?", &u.summary),
        ("content = ?", &u.content),
    ] {
        if let Some(v) = v {
            sets.push(col);
            add(&mut args, v.clone())?;
        }
    }
    if let Some(v) = &u.tags {
        sets.push("tags = ?");
        add(&mut args, v.clone())?;
    }
    if let Some(v) = u.parent_id {
        sets.push("parent_id = ?");
        add(&mut args, v)?;
    }
    if let Some(v) = u.is_folder {
        sets.push("is_folder = ?");
        add(&mut args, v)?;
    }
    if let Some(v) = u.is_deleted {
        sets.push("is_deleted = ?");
        add(&mut args, v)?;
    }
    sets.push("updated_at = ?");
    add(&mut args, ts_to_sql(&now()))?;
    add(&mut args, id)?;
    let sql = format!("UPDATE vaults SET {} WHERE id = ?", sets.join(", "));
    let r = sqlx::query_with(AssertSqlSafe(sql), args)
        .execute(&mut *c)
        .await
        .db()?;
    Ok(r.rows_affected() > 0)
}

/// The original's MySQL rule (`mysql_backend.py`: `get_vaults(document_type="report")`): only
/// reports, compared in the original's column collation (`utf8mb4_unicode_ci`, so `Report`
/// matches too). The SQLite backend (and the original's SQLite one) returns every type but
/// `Note` instead.
pub(crate) async fn get_reports(
    c: &mut Conn,
    limit: u32,
    offset: u64,
    is_deleted: bool,
) -> Result<Vec<Vault>> {
    let mut args = MySqlArguments::default();
    add(&mut args, is_deleted)?;
    limit_offset(&mut args, limit, offset)?;
    let sql = format!(
        "SELECT {} FROM vaults WHERE is_deleted = ?
           AND CONVERT(document_type USING utf8mb4) COLLATE utf8mb4_unicode_ci = 'report'
         ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
        map::VAULT_COLS
    );
    fetch_all(c, sql, args, map::vault).await
}

// ----- todos and tips ------------------------------------------------------------------------

/// The statement of `insert_todo`.
pub const INSERT_TODO_SQL: &str = "INSERT INTO todo (content, start_time, end_time, status, urgency, assignee, reason, created_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)";

pub(crate) async fn insert_todo(c: &mut Conn, t: &NewTodo) -> Result<i64> {
    let now = now();
    let r = sqlx::query(INSERT_TODO_SQL)
        .bind(&t.content)
        .bind(ts_to_sql(t.start_time.as_ref().unwrap_or(&now)))
        .bind(t.end_time.as_ref().map(ts_to_sql))
        .bind(t.status)
        .bind(t.urgency)
        .bind(&t.assignee)
        .bind(&t.reason)
        .bind(ts_to_sql(&now))
        .execute(&mut *c)
        .await
        .db()?;
    Ok(r.last_insert_id() as i64)
}

pub(crate) async fn get_todos(c: &mut Conn, q: &TodoQuery) -> Result<Vec<Todo>> {
    let mut where_ = vec!["1 = 1"];
    let mut args = MySqlArguments::default();
    if let Some(t) = &q.start_time {
        where_.push("start_time >= ?");
        add(&mut args, ts_to_sql(t))?;
    }
    if let Some(t) = &q.end_time {
        where_.push("end_time <= ?");
        add(&mut args, ts_to_sql(t))?;
    }
    if let Some(s) = q.status {
        where_.push("status = ?");
        add(&mut args, s)?;
    }
    limit_offset(&mut args, q.limit, q.offset)?;
    let sql = format!(
        "SELECT {} FROM todo WHERE {} ORDER BY urgency DESC, created_at DESC, id DESC LIMIT ? OFFSET ?",
        map::TODO_COLS,
        where_.join(" AND ")
    );
    fetch_all(c, sql, args, map::todo).await
}

pub(crate) async fn update_todo_status(
    c: &mut Conn,
    id: i64,
    status: i64,
    end_time: Option<Timestamp>,
) -> Result<bool> {
    let end_time = match end_time {
        Some(t) => Some(t),
        None if status == todo_status::COMPLETED => Some(now()),
        None => None,
    };
    let r = sqlx::query("UPDATE todo SET status = ?, end_time = ? WHERE id = ?")
        .bind(status)
        .bind(end_time.as_ref().map(ts_to_sql))
        .bind(id)
        .execute(&mut *c)
        .await
        .db()?;
    Ok(r.rows_affected() > 0)
}

pub(crate) async fn insert_tip(c: &mut Conn, content: &str) -> Result<i64> {
    let r = sqlx::query("INSERT INTO tips (content, created_at) VALUES (?, ?)")
        .bind(content)
        .bind(ts_to_sql(&now()))
        .execute(&mut *c)
        .await
        .db()?;
    Ok(r.last_insert_id() as i64)
}

pub(crate) async fn get_tips(c: &mut Conn, q: &TipQuery) -> Result<Vec<Tip>> {
    let mut where_ = vec!["1 = 1"];
    let mut args = MySqlArguments::default();
    if let Some(t) = &q.start_time {
        where_.push("created_at >= ?");
        add(&mut args, ts_to_sql(t))?;
    }
    if let Some(t) = &q.end_time {
        where_.push("created_at <= ?");
        add(&mut args, ts_to_sql(t))?;
    }
    limit_offset(&mut args, q.limit, q.offset)?;
    let sql = format!(
        "SELECT {} FROM tips WHERE {} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
        map::TIP_COLS,
        where_.join(" AND ")
    );
    fetch_all(c, sql, args, map::tip).await
}

// ----- profiles ------------------------------------------------------------------------------

/// The statement of `upsert_profile`: 11 insert values (the tenant triple, content, summary,
/// keywords, entities, importance, metadata, created_at, updated_at), then the 7 replaced
/// values again (content, summary, keywords, entities, importance, metadata, updated_at).
pub const UPSERT_PROFILE_SQL: &str =
    "INSERT INTO profiles (user_id, device_id, agent_id, content, summary, keywords,
                           entities, importance, metadata, created_at, updated_at)
     SELECT * FROM (SELECT ? AS user_id, ? AS device_id, ? AS agent_id, ? AS content,
                           ? AS summary, ? AS keywords, ? AS entities, ? AS importance,
                           ? AS metadata, ? AS created_at, ? AS updated_at) AS new
     ON DUPLICATE KEY UPDATE
        profiles.content = new.content, profiles.summary = new.summary,
        profiles.keywords = new.keywords, profiles.entities = new.entities,
        profiles.importance = new.importance, profiles.metadata = new.metadata,
        profiles.updated_at = new.updated_at";

pub(crate) async fn upsert_profile(c: &mut Conn, p: &ProfileUpsert) -> Result<()> {
    let now = ts_to_sql(&now());
    let keywords = json_text(&p.keywords)?;
    let entities = json_text(&p.entities)?;
    let metadata = json_text(&p.metadata)?;
    sqlx::query(UPSERT_PROFILE_SQL)
        .bind(&p.key.user_id)
        .bind(&p.key.device_id)
        .bind(&p.key.agent_id)
        .bind(&p.content)
        .bind(&p.summary)
        .bind(&keywords)
        .bind(&entities)
        .bind(p.importance)
        .bind(&metadata)
        .bind(now)
        .bind(now)
        .execute(&mut *c)
        .await
        .db()?;
    Ok(())
}

/// The statement of `get_profile` (the column order of `mapping::profile`).
pub const GET_PROFILE_SQL: &str = "SELECT user_id, device_id, agent_id, content, summary, keywords, \
     entities, importance, metadata, created_at, updated_at FROM profiles \
     WHERE user_id = ? AND device_id = ? AND agent_id = ?";

pub(crate) async fn get_profile(c: &mut Conn, k: &TenantKey) -> Result<Option<Profile>> {
    sqlx::query(GET_PROFILE_SQL)
        .bind(&k.user_id)
        .bind(&k.device_id)
        .bind(&k.agent_id)
        .fetch_optional(&mut *c)
        .await
        .db()?
        .as_ref()
        .map(map::profile)
        .transpose()
}

pub(crate) async fn delete_profile(c: &mut Conn, k: &TenantKey) -> Result<bool> {
    let r =
        sqlx::query("DELETE FROM profiles WHERE user_id = ? AND device_id = ? AND agent_id = ?")
            .bind(&k.user_id)
            .bind(&k.device_id)
            .bind(&k.agent_id)
            .execute(&mut *c)
            .await
            .db()?;
    Ok(r.rows_affected() > 0)
}

// ----- entities ------------------------------------------------------------------------------

/// Inserts or replaces an entity and reads its id back in the same transaction: the id is
/// generated here (UUID v4) and survives a replace, since the update never touches it.
pub(crate) async fn upsert_entity(c: &mut Conn, e: &EntityUpsert) -> Result<String> {
    let new_id = uuid::Uuid::new_v4().to_string();
    let now = ts_to_sql(&now());
    let keywords = json_text(&e.keywords)?;
    let aliases = json_text(&e.aliases)?;
    let metadata = json_text(&e.metadata)?;
    sqlx::query(
        "INSERT INTO entities (id, user_id, device_id, agent_id, entity_name, entity_type, content, summary,
                               keywords, aliases, metadata, created_at, updated_at)
         SELECT * FROM (SELECT ? AS id, ? AS user_id, ? AS device_id, ? AS agent_id,
                               ? AS entity_name, ? AS entity_type, ? AS content, ? AS summary,
                               ? AS keywords, ? AS aliases, ? AS metadata, ? AS created_at,
                               ? AS updated_at) AS new
         ON DUPLICATE KEY UPDATE
            entities.entity_type = new.entity_type, entities.content = new.content,
            entities.summary = new.summary, entities.keywords = new.keywords,
            entities.aliases = new.aliases, entities.metadata = new.metadata,
            entities.updated_at = new.updated_at",
    )
    .bind(&new_id)
    .bind(&e.key.user_id)
    .bind(&e.key.device_id)
    .bind(&e.key.agent_id)
    .bind(&e.entity_name)
    .bind(&e.entity_type)
    .bind(&e.content)
    .bind(&e.summary)
    .bind(&keywords)
    .bind(&aliases)
    .bind(&metadata)
    .bind(now)
    .bind(now)
    .execute(&mut *c)
    .await
    .db()?;
    let row = sqlx::query(
        "SELECT id FROM entities WHERE user_id = ? AND device_id = ? AND agent_id = ? AND entity_name = ?",
    )
    .bind(&e.key.user_id)
    .bind(&e.key.device_id)
    .bind(&e.key.agent_id)
    .bind(&e.entity_name)
    .fetch_optional(&mut *c)
    .await
    .db()?
    .ok_or_else(|| {
        StorageError::backend(format!(
            "entity {:?} of {} vanished inside its upsert transaction",
            e.entity_name, e.key
        ))
    })?;
    map::text(&row, 0)
}

pub(crate) async fn get_entity(c: &mut Conn, k: &TenantKey, name: &str) -> Result<Option<Entity>> {
    const SQL: &str = "SELECT id, user_id, device_id, agent_id, entity_name, entity_type, content, \
         summary, keywords, aliases, metadata, created_at, updated_at FROM entities \
         WHERE user_id = ? AND device_id = ? AND agent_id = ? AND entity_name = ?";
    sqlx::query(SQL)
        .bind(&k.user_id)
        .bind(&k.device_id)
        .bind(&k.agent_id)
        .bind(name)
        .fetch_optional(&mut *c)
        .await
        .db()?
        .as_ref()
        .map(map::entity)
        .transpose()
}

pub(crate) async fn list_entities(c: &mut Conn, q: &EntityQuery) -> Result<Vec<Entity>> {
    let k = &q.key;
    let mut args = MySqlArguments::default();
    add(&mut args, k.user_id.clone())?;
    add(&mut args, k.device_id.clone())?;
    add(&mut args, k.agent_id.clone())?;
    let type_cond = match &q.entity_type {
        Some(t) => {
            add(&mut args, t.clone())?;
            "AND entity_type = ?"
        }
        None => "",
    };
    limit_offset(&mut args, q.limit, q.offset)?;
    let sql = format!(
        "SELECT {} FROM entities WHERE user_id = ? AND device_id = ? AND agent_id = ? {type_cond}
         ORDER BY updated_at DESC, id DESC LIMIT ? OFFSET ?",
        map::ENTITY_COLS
    );
    fetch_all(c, sql, args, map::entity).await
}

pub(crate) async fn delete_entity(c: &mut Conn, k: &TenantKey, name: &str) -> Result<bool> {
    let r = sqlx::query(
        "DELETE FROM entities WHERE user_id = ? AND device_id = ? AND agent_id = ? AND entity_name = ?",
    )
    .bind(&k.user_id)
    .bind(&k.device_id)
    .bind(&k.agent_id)
    .bind(name)
    .execute(&mut *c)
    .await
    .db()?;
    Ok(r.rows_affected() > 0)
}

// ----- monitoring ----------------------------------------------------------------------------

pub(crate) async fn save_token_usage(c: &mut Conn, s: &TokenUsageSample) -> Result<()> {
    let at = s.at.unwrap_or_else(now);
    let (p, cpl, t) = (
        validate::counter("prompt_tokens", s.prompt_tokens)?,
        validate::counter("completion_tokens", s.completion_tokens)?,
        validate::counter("total_tokens", s.total_tokens)?,
    );
    sqlx::query(
        "INSERT INTO monitoring_token_usage (time_bucket, model, prompt_tokens, completion_tokens, total_tokens, created_at)
         VALUES (?, ?, ?, ?, ?, ?)
         ON DUPLICATE KEY UPDATE
            prompt_tokens = CASE WHEN prompt_tokens > 9223372036854775807 - ? THEN 9223372036854775807 ELSE prompt_tokens + ? END,
            completion_tokens = CASE WHEN completion_tokens > 9223372036854775807 - ? THEN 9223372036854775807 ELSE completion_tokens + ? END,
            total_tokens = CASE WHEN total_tokens > 9223372036854775807 - ? THEN 9223372036854775807 ELSE total_tokens + ? END",
    )
    .bind(monitoring_bucket(&at))
    .bind(&s.model)
    .bind(p)
    .bind(cpl)
    .bind(t)
    .bind(ts_to_sql(&now()))
    .bind(p)
    .bind(p)
    .bind(cpl)
    .bind(cpl)
    .bind(t)
    .bind(t)
    .execute(&mut *c)
    .await
    .db()?;
    Ok(())
}

pub(crate) async fn save_stage_timing(c: &mut Conn, s: &StageTimingSample) -> Result<()> {
    let at = s.at.unwrap_or_else(now);
    let (ok, err) = if s.success { (1i64, 0i64) } else { (0, 1) };
    let d = validate::counter("duration_ms", s.duration_ms)?;
    // ON DUPLICATE KEY UPDATE assigns left to right and later assignments see earlier ones:
    // the average is computed first, from the old total and count.
    sqlx::query(
        "INSERT INTO monitoring_stage_timing (time_bucket, stage_name, `count`, total_duration_ms, min_duration_ms,
             max_duration_ms, avg_duration_ms, success_count, error_count, metadata, created_at)
         VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?)
         ON DUPLICATE KEY UPDATE
            avg_duration_ms = (CASE WHEN total_duration_ms > 9223372036854775807 - ? THEN 9223372036854775807 ELSE total_duration_ms + ? END) DIV (`count` + 1),
            `count` = `count` + 1,
            total_duration_ms = CASE WHEN total_duration_ms > 9223372036854775807 - ? THEN 9223372036854775807 ELSE total_duration_ms + ? END,
            min_duration_ms = LEAST(min_duration_ms, ?),
            max_duration_ms = GREATEST(max_duration_ms, ?),
            success_count = success_count + ?,
            error_count = error_count + ?",
    )
    .bind(monitoring_bucket(&at))
    .bind(&s.stage_name)
    .bind(d)
    .bind(d)
    .bind(d)
    .bind(d)
    .bind(ok)
    .bind(err)
    .bind(&s.metadata)
    .bind(ts_to_sql(&now()))
    .bind(d)
    .bind(d)
    .bind(d)
    .bind(d)
    .bind(d)
    .bind(d)
    .bind(ok)
    .bind(err)
    .execute(&mut *c)
    .await
    .db()?;
    Ok(())
}

pub(crate) async fn save_data_stats(c: &mut Conn, s: &DataStatsSample) -> Result<()> {
    let at = s.at.unwrap_or_else(now);
    let bucket = monitoring_bucket(&at);
    // The unique key never conflicts on a NULL context type, so update first (`<=>` matches
    // NULL) and insert when nothing was there. In a transaction, the update's next-key lock
    // keeps a concurrent insert of the same group out (one of them deadlocks and is retried).
    let r = sqlx::query(
        "UPDATE monitoring_data_stats SET `count` = CASE WHEN `count` > 9223372036854775807 - ? THEN 9223372036854775807 ELSE `count` + ? END
         WHERE time_bucket = ? AND data_type = ? AND context_type <=> ?",
    )
    .bind(validate::counter("count", s.count)?)
    .bind(validate::counter("count", s.count)?)
    .bind(&bucket)
    .bind(&s.data_type)
    .bind(&s.context_type)
    .execute(&mut *c)
    .await
    .db()?;
    if r.rows_affected() == 0 {
        sqlx::query(
            "INSERT INTO monitoring_data_stats (time_bucket, data_type, `count`, context_type, metadata, created_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&bucket)
        .bind(&s.data_type)
        .bind(validate::counter("count", s.count)?)
        .bind(&s.context_type)
        .bind(&s.metadata)
        .bind(ts_to_sql(&now()))
        .execute(&mut *c)
        .await
        .db()?;
    }
    Ok(())
}

fn cutoff_bucket(hours: u32) -> String {
    monitoring_bucket(&storage_core::time::hours_ago(hours))
}

pub(crate) async fn query_token_usage(c: &mut Conn, hours: u32) -> Result<Vec<TokenUsageRecord>> {
    let rows = sqlx::query(
        "SELECT model, prompt_tokens, completion_tokens, total_tokens, time_bucket FROM monitoring_token_usage
         WHERE time_bucket >= ? ORDER BY time_bucket DESC, model",
    )
    .bind(cutoff_bucket(hours))
    .fetch_all(&mut *c)
    .await
    .db()?;
    rows.iter()
        .map(|r| {
            Ok(TokenUsageRecord {
                model: map::text(r, 0)?,
                prompt_tokens: map::i64_or(r, 1, 0)?,
                completion_tokens: map::i64_or(r, 2, 0)?,
                total_tokens: map::i64_or(r, 3, 0)?,
                time_bucket: map::text(r, 4)?,
            })
        })
        .collect()
}

pub(crate) async fn query_stage_timing(c: &mut Conn, hours: u32) -> Result<Vec<StageTimingRecord>> {
    let rows = sqlx::query(
        "SELECT stage_name, `count`, total_duration_ms, min_duration_ms, max_duration_ms, avg_duration_ms,
                success_count, error_count, metadata, time_bucket
         FROM monitoring_stage_timing WHERE time_bucket >= ? ORDER BY time_bucket DESC, stage_name",
    )
    .bind(cutoff_bucket(hours))
    .fetch_all(&mut *c)
    .await
    .db()?;
    rows.iter()
        .map(|r| {
            Ok(StageTimingRecord {
                stage_name: map::text(r, 0)?,
                count: map::i64_or(r, 1, 0)?,
                total_duration_ms: map::i64_or(r, 2, 0)?,
                min_duration_ms: map::i64_or(r, 3, 0)?,
                max_duration_ms: map::i64_or(r, 4, 0)?,
                avg_duration_ms: map::i64_or(r, 5, 0)?,
                success_count: map::i64_or(r, 6, 0)?,
                error_count: map::i64_or(r, 7, 0)?,
                metadata: map::text_opt(r, 8)?,
                time_bucket: map::text(r, 9)?,
            })
        })
        .collect()
}

fn data_stats_record(r: &MySqlRow) -> Result<DataStatsRecord> {
    Ok(DataStatsRecord {
        data_type: map::text(r, 0)?,
        count: map::i64_or(r, 1, 0)?,
        context_type: map::text_opt(r, 2)?,
    })
}

pub(crate) async fn query_data_stats(c: &mut Conn, hours: u32) -> Result<Vec<DataStatsRecord>> {
    // SUM over BIGINT is DECIMAL in MySQL; cast back to a 64-bit integer.
    let rows = sqlx::query(
        "SELECT data_type, CAST(SUM(`count`) AS SIGNED), context_type FROM monitoring_data_stats
         WHERE time_bucket >= ? GROUP BY data_type, context_type ORDER BY data_type, context_type",
    )
    .bind(cutoff_bucket(hours))
    .fetch_all(&mut *c)
    .await
    .db()?;
    rows.iter().map(data_stats_record).collect()
}

pub(crate) async fn query_data_stats_by_range(
    c: &mut Conn,
    start: &Timestamp,
    end: &Timestamp,
) -> Result<Vec<DataStatsRecord>> {
    let rows = sqlx::query(
        "SELECT data_type, CAST(SUM(`count`) AS SIGNED), context_type FROM monitoring_data_stats
         WHERE time_bucket >= ? AND time_bucket <= ?
         GROUP BY data_type, context_type ORDER BY data_type, context_type",
    )
    .bind(monitoring_bucket(start))
    .bind(monitoring_bucket(end))
    .fetch_all(&mut *c)
    .await
    .db()?;
    rows.iter().map(data_stats_record).collect()
}

pub(crate) async fn query_data_stats_trend(
    c: &mut Conn,
    hours: u32,
    interval_hours: u32,
) -> Result<Vec<DataStatsTrendRecord>> {
    let rows = sqlx::query(
        "SELECT time_bucket, data_type, CAST(SUM(`count`) AS SIGNED), context_type FROM monitoring_data_stats
         WHERE time_bucket >= ? GROUP BY time_bucket, data_type, context_type
         ORDER BY time_bucket, data_type, context_type",
    )
    .bind(cutoff_bucket(hours))
    .fetch_all(&mut *c)
    .await
    .db()?;
    let rows: Vec<DataStatsTrendRecord> = rows
        .iter()
        .map(|r| {
            Ok(DataStatsTrendRecord {
                timestamp: map::text(r, 0)?,
                data_type: map::text(r, 1)?,
                count: map::i64_or(r, 2, 0)?,
                context_type: map::text_opt(r, 3)?,
            })
        })
        .collect::<Result<_>>()?;
    if interval_hours <= 1 {
        return Ok(rows);
    }
    // Re-bucket into intervals aligned to the epoch; BTreeMap keeps intervals in order.
    let step = i64::from(interval_hours) * 3600;
    let mut out: std::collections::BTreeMap<(String, String, Option<String>), i64> =
        Default::default();
    for r in rows {
        let t = NaiveDateTime::parse_from_str(&r.timestamp, "%Y-%m-%d %H:%M:%S").map_err(|_| {
            StorageError::data_corrupted(format!(
                "monitoring_data_stats.time_bucket {:?} is not YYYY-MM-DD HH:00:00",
                r.timestamp
            ))
        })?;
        let secs = t.and_utc().timestamp();
        let aligned = secs - secs.rem_euclid(step);
        let start = chrono::DateTime::from_timestamp(aligned, 0)
            .map(|d| d.format(MONITORING_BUCKET_FORMAT).to_string())
            .unwrap_or(r.timestamp);
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

pub(crate) async fn cleanup_monitoring(c: &mut Conn, days: u32) -> Result<MonitoringCleanup> {
    let cutoff = monitoring_bucket(&storage_core::time::days_ago(days));
    let mut counts = [0u64; 3];
    for (n, sql) in counts.iter_mut().zip([
        "DELETE FROM monitoring_token_usage WHERE time_bucket < ?",
        "DELETE FROM monitoring_stage_timing WHERE time_bucket < ?",
        "DELETE FROM monitoring_data_stats WHERE time_bucket < ?",
    ]) {
        *n = sqlx::query(sql)
            .bind(&cutoff)
            .execute(&mut *c)
            .await
            .db()?
            .rows_affected();
    }
    Ok(MonitoringCleanup {
        token_usage: counts[0],
        stage_timing: counts[1],
        data_stats: counts[2],
    })
}

// ----- conversations -------------------------------------------------------------------------

pub(crate) async fn create_conversation(
    c: &mut Conn,
    nc: &NewConversation,
) -> Result<Conversation> {
    let now = ts_to_sql(&now());
    let r = sqlx::query(
        "INSERT INTO conversations (page_name, user_id, title, metadata, status, created_at, updated_at)
         VALUES (?, ?, ?, ?, 'active', ?, ?)",
    )
    .bind(&nc.page_name)
    .bind(&nc.user_id)
    .bind(&nc.title)
    .bind(json_text(&nc.metadata)?)
    .bind(now)
    .bind(now)
    .execute(&mut *c)
    .await
    .db()?;
    let id = r.last_insert_id() as i64;
    get_conversation(c, id)
        .await?
        .ok_or_else(|| StorageError::backend(format!("conversation {id} vanished after insert")))
}

pub(crate) async fn get_conversation(c: &mut Conn, id: i64) -> Result<Option<Conversation>> {
    const SQL: &str = "SELECT id, title, user_id, page_name, status, metadata, created_at, updated_at \
         FROM conversations WHERE id = ?";
    sqlx::query(SQL)
        .bind(id)
        .fetch_optional(&mut *c)
        .await
        .db()?
        .as_ref()
        .map(map::conversation)
        .transpose()
}

/// Runs inside a transaction, so the total and the page come from one snapshot.
pub(crate) async fn get_conversation_list(
    c: &mut Conn,
    q: &ConversationQuery,
) -> Result<ConversationPage> {
    let mut where_ = vec!["1 = 1"];
    let mut filters: Vec<String> = Vec::new();
    if let Some(s) = q.status {
        where_.push("status = ?");
        filters.push(s.as_str().to_owned());
    }
    if let Some(v) = &q.page_name {
        where_.push("page_name = ?");
        filters.push(v.clone());
    }
    if let Some(v) = &q.user_id {
        where_.push("user_id = ?");
        filters.push(v.clone());
    }
    let where_sql = where_.join(" AND ");
    let mut args = MySqlArguments::default();
    for f in &filters {
        add(&mut args, f.clone())?;
    }
    let total: i64 = sqlx::query_with(
        AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM conversations WHERE {where_sql}"
        )),
        args,
    )
    .fetch_one(&mut *c)
    .await
    .db()?
    .try_get(0)
    .db()?;
    let mut args = MySqlArguments::default();
    for f in filters {
        add(&mut args, f)?;
    }
    limit_offset(&mut args, q.limit, q.offset)?;
    let items = fetch_all(
        c,
        format!(
            "SELECT {} FROM conversations WHERE {where_sql} ORDER BY updated_at DESC, id DESC LIMIT ? OFFSET ?",
            map::CONVERSATION_COLS
        ),
        args,
        map::conversation,
    )
    .await?;
    Ok(ConversationPage {
        items,
        total: total as u64,
    })
}

pub(crate) async fn update_conversation(
    c: &mut Conn,
    id: i64,
    u: &ConversationUpdate,
) -> Result<Option<Conversation>> {
    if u.title.is_some() || u.status.is_some() {
        let r = sqlx::query(
            "UPDATE conversations SET title = COALESCE(?, title), status = COALESCE(?, status), updated_at = ?
             WHERE id = ?",
        )
        .bind(&u.title)
        .bind(u.status.map(|s| s.as_str()))
        .bind(ts_to_sql(&now()))
        .bind(id)
        .execute(&mut *c)
        .await
        .db()?;
        if r.rows_affected() == 0 {
            return Ok(None);
        }
    }
    get_conversation(c, id).await
}

// ----- messages ------------------------------------------------------------------------------

async fn touch_conversation_of(c: &mut Conn, message_id: i64, now: NaiveDateTime) -> Result<()> {
    sqlx::query(
        "UPDATE conversations SET updated_at = ?
         WHERE id = (SELECT conversation_id FROM messages WHERE id = ?)",
    )
    .bind(now)
    .bind(message_id)
    .execute(&mut *c)
    .await
    .db()?;
    Ok(())
}

pub(crate) async fn get_message(
    c: &mut Conn,
    id: i64,
    include_thinking: bool,
) -> Result<Option<Message>> {
    let sql = format!("SELECT {} FROM messages WHERE id = ?", map::MESSAGE_COLS);
    let msg = sqlx::query(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *c)
        .await
        .db()?
        .as_ref()
        .map(map::message)
        .transpose()?;
    match msg {
        Some(mut m) if include_thinking => {
            m.thinking = get_message_thinking(c, id).await?;
            Ok(Some(m))
        }
        other => Ok(other),
    }
}

pub(crate) async fn create_message(c: &mut Conn, m: &NewMessage) -> Result<Message> {
    // Locks the conversation row: it must exist until commit, and its `updated_at` is
    // written below anyway.
    if !exists(
        c,
        "SELECT 1 FROM conversations WHERE id = ? FOR UPDATE",
        m.conversation_id,
    )
    .await?
    {
        return Err(StorageError::not_found(format!(
            "conversation {} does not exist",
            m.conversation_id
        )));
    }
    let now = ts_to_sql(&now());
    let (status, completed_at) = if m.is_complete {
        (message_status::COMPLETED, Some(now))
    } else {
        (message_status::STREAMING, None)
    };
    let r = sqlx::query(
        "INSERT INTO messages (conversation_id, role, content, status, token_count, parent_message_id, metadata,
                               completed_at, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(m.conversation_id)
    .bind(&m.role)
    .bind(&m.content)
    .bind(status)
    .bind(validate::counter("token_count", m.token_count)?)
    .bind(&m.parent_message_id)
    .bind(json_text(&m.metadata)?)
    .bind(completed_at)
    .bind(now)
    .bind(now)
    .execute(&mut *c)
    .await
    .db()?;
    let id = r.last_insert_id() as i64;
    sqlx::query("UPDATE conversations SET updated_at = ? WHERE id = ?")
        .bind(now)
        .bind(m.conversation_id)
        .execute(&mut *c)
        .await
        .db()?;
    get_message(c, id, true)
        .await?
        .ok_or_else(|| StorageError::backend(format!("message {id} vanished after insert")))
}

pub(crate) async fn update_message(
    c: &mut Conn,
    id: i64,
    u: &MessageUpdate,
) -> Result<Option<Message>> {
    let now = ts_to_sql(&now());
    let complete: Option<i64> = u.is_complete.map(i64::from);
    // Status columns follow `is_complete`: true -> completed now, false -> streaming, None -> kept.
    let r = sqlx::query(
        "UPDATE messages SET content = ?, updated_at = ?,
            token_count = COALESCE(?, token_count),
            status = CASE ? WHEN 1 THEN 'completed' WHEN 0 THEN 'streaming' ELSE status END,
            completed_at = CASE ? WHEN 1 THEN ? WHEN 0 THEN NULL ELSE completed_at END
         WHERE id = ?",
    )
    .bind(&u.new_content)
    .bind(now)
    .bind(
        u.token_count
            .map(|t| validate::counter("token_count", t))
            .transpose()?,
    )
    .bind(complete)
    .bind(complete)
    .bind(now)
    .bind(id)
    .execute(&mut *c)
    .await
    .db()?;
    if r.rows_affected() == 0 {
        return Ok(None);
    }
    touch_conversation_of(c, id, now).await?;
    get_message(c, id, true).await
}

pub(crate) async fn append_message_content(
    c: &mut Conn,
    id: i64,
    chunk: &str,
    tokens: u64,
) -> Result<bool> {
    // Each chunk is within the text bound; the whole content must stay within it too (and a
    // CONCAT result above max_allowed_packet would be NULL, or an error in strict mode).
    let Some(row) = sqlx::query("SELECT LENGTH(content) FROM messages WHERE id = ? FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *c)
        .await
        .db()?
    else {
        return Ok(false);
    };
    let stored = map::i64_or(&row, 0, 0)?.max(0) as usize;
    if stored.saturating_add(chunk.len()) > records::MAX_TEXT_BYTES {
        return Err(StorageError::invalid_input(format!(
            "content_chunk of {} bytes would make message {id}'s content {} bytes long, the limit is {}",
            chunk.len(),
            stored + chunk.len(),
            records::MAX_TEXT_BYTES
        )));
    }
    let now = ts_to_sql(&now());
    let r = sqlx::query(
        "UPDATE messages SET content = CONCAT(COALESCE(content, ''), ?),
            token_count = CASE WHEN COALESCE(token_count, 0) > 9223372036854775807 - ? THEN 9223372036854775807 ELSE COALESCE(token_count, 0) + ? END,
            status = CASE WHEN status = 'pending' THEN 'streaming' ELSE status END, updated_at = ?
         WHERE id = ?",
    )
    .bind(chunk)
    .bind(validate::counter("tokens", tokens)?)
    .bind(validate::counter("tokens", tokens)?)
    .bind(now)
    .bind(id)
    .execute(&mut *c)
    .await
    .db()?;
    if r.rows_affected() == 0 {
        return Ok(false);
    }
    touch_conversation_of(c, id, now).await?;
    Ok(true)
}

pub(crate) async fn update_message_metadata(
    c: &mut Conn,
    id: i64,
    metadata: &JsonMap,
) -> Result<bool> {
    let r = sqlx::query("UPDATE messages SET metadata = ?, updated_at = ? WHERE id = ?")
        .bind(json_text(metadata)?)
        .bind(ts_to_sql(&now()))
        .bind(id)
        .execute(&mut *c)
        .await
        .db()?;
    Ok(r.rows_affected() > 0)
}

pub(crate) async fn mark_message_finished(
    c: &mut Conn,
    id: i64,
    status: FinishStatus,
    error: Option<&str>,
) -> Result<bool> {
    let current = sqlx::query("SELECT status FROM messages WHERE id = ? FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *c)
        .await
        .db()?;
    let Some(current) = current else {
        return Ok(false);
    };
    if map::text_opt(&current, 0)?.as_deref() == Some(status.as_str()) {
        return Ok(true);
    }
    let now = ts_to_sql(&now());
    sqlx::query(
        "UPDATE messages SET status = ?, completed_at = ?, updated_at = ?,
            error_message = COALESCE(?, error_message) WHERE id = ?",
    )
    .bind(status.as_str())
    .bind(now)
    .bind(now)
    .bind(error.filter(|e| !e.is_empty()))
    .bind(id)
    .execute(&mut *c)
    .await
    .db()?;
    touch_conversation_of(c, id, now).await?;
    Ok(true)
}

/// Runs inside a transaction, so messages and their thinking come from one snapshot.
pub(crate) async fn get_conversation_messages(
    c: &mut Conn,
    conversation_id: i64,
) -> Result<Vec<Message>> {
    let mut args = MySqlArguments::default();
    add(&mut args, conversation_id)?;
    let mut messages = fetch_all(
        c,
        format!(
            "SELECT {} FROM messages WHERE conversation_id = ? ORDER BY created_at ASC, id ASC",
            map::MESSAGE_COLS
        ),
        args,
        map::message,
    )
    .await?;
    if messages.is_empty() {
        return Ok(messages);
    }
    // One query for the thinking of every message, grouped in memory.
    let mut args = MySqlArguments::default();
    add(&mut args, conversation_id)?;
    let thinking = fetch_all(
        c,
        format!(
            "SELECT {} FROM message_thinking WHERE message_id IN
                (SELECT id FROM messages WHERE conversation_id = ?)
             ORDER BY message_id, sequence ASC, created_at ASC, id ASC",
            map::THINKING_COLS
        ),
        args,
        map::thinking,
    )
    .await?;
    let mut by_message: std::collections::HashMap<i64, Vec<MessageThinking>> =
        std::collections::HashMap::new();
    for t in thinking {
        by_message.entry(t.message_id).or_default().push(t);
    }
    for m in &mut messages {
        m.thinking = by_message.remove(&m.id).unwrap_or_default();
    }
    Ok(messages)
}

pub(crate) async fn delete_message(c: &mut Conn, id: i64) -> Result<bool> {
    // Thinking rows go with it (ON DELETE CASCADE).
    let r = sqlx::query("DELETE FROM messages WHERE id = ?")
        .bind(id)
        .execute(&mut *c)
        .await
        .db()?;
    Ok(r.rows_affected() > 0)
}

// ----- thinking ------------------------------------------------------------------------------

pub(crate) async fn add_message_thinking(c: &mut Conn, t: &NewThinking) -> Result<i64> {
    // Locking the message serialises sequence numbering per message.
    if !exists(
        c,
        "SELECT 1 FROM messages WHERE id = ? FOR UPDATE",
        t.message_id,
    )
    .await?
    {
        return Err(StorageError::not_found(format!(
            "message {} does not exist",
            t.message_id
        )));
    }
    let sequence = match t.sequence {
        Some(s) => s,
        None => sqlx::query(
            "SELECT COALESCE(MAX(sequence), -1) + 1 FROM message_thinking WHERE message_id = ?",
        )
        .bind(t.message_id)
        .fetch_one(&mut *c)
        .await
        .db()?
        .try_get::<i64, _>(0)
        .db()?,
    };
    let r = sqlx::query(
        "INSERT INTO message_thinking (message_id, content, stage, progress, sequence, metadata, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(t.message_id)
    .bind(&t.content)
    .bind(&t.stage)
    .bind(t.progress)
    .bind(sequence)
    .bind(json_text(&t.metadata)?)
    .bind(ts_to_sql(&now()))
    .execute(&mut *c)
    .await
    .db()?;
    Ok(r.last_insert_id() as i64)
}

pub(crate) async fn get_message_thinking(
    c: &mut Conn,
    message_id: i64,
) -> Result<Vec<MessageThinking>> {
    let mut args = MySqlArguments::default();
    add(&mut args, message_id)?;
    fetch_all(
        c,
        format!(
            "SELECT {} FROM message_thinking WHERE message_id = ? ORDER BY sequence ASC, created_at ASC, id ASC",
            map::THINKING_COLS
        ),
        args,
        map::thinking,
    )
    .await
}

pub(crate) async fn clear_message_thinking(c: &mut Conn, message_id: i64) -> Result<u64> {
    Ok(
        sqlx::query("DELETE FROM message_thinking WHERE message_id = ?")
            .bind(message_id)
            .execute(&mut *c)
            .await
            .db()?
            .rows_affected(),
    )
}
