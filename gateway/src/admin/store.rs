//! The embedded database: one SQLite file under `data_dir`, written through sqlx. Entities are
//! kept as Kong-shaped JSON documents keyed by kind and id, so the same tables and statements
//! serve PostgreSQL when clusters come (sqlx speaks both; `$n` placeholders work in both).
//! Schema changes are numbered migrations, applied in order at open.

use super::kinds::Kind;
use super::records::{Change, Record, Records};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, Row};
use std::path::{Path, PathBuf};

/// Numbered schema migrations; a database records the ones it has.
const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    "CREATE TABLE entities (
         kind TEXT NOT NULL,
         id   TEXT NOT NULL,
         body TEXT NOT NULL,
         PRIMARY KEY (kind, id)
     )",
)];

/// An open store.
pub(crate) struct Store {
    conn: SqliteConnection,
    path: PathBuf,
}

impl Store {
    /// Opens (creating when absent) `data_dir/wasmgate.db` and migrates it. The database holds
    /// credentials: `data_dir` is made 0700 and the database 0600 (SQLite gives its WAL and
    /// shared-memory files the database's mode).
    pub(crate) async fn open(data_dir: &Path) -> Result<Store, String> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        let private = |path: &Path, mode: u32| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .map_err(|e| format!("data_dir: cannot make {} private (mode {mode:o}): {e}", path.display()))
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .map_err(|e| format!("data_dir: cannot create {}: {e}", data_dir.display()))?;
        private(data_dir, 0o700)?;
        let path = data_dir.join("wasmgate.db");
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| format!("data_dir: cannot create the database {}: {e}", path.display()))?;
        private(&path, 0o600)?;
        let opts = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
        let conn = SqliteConnection::connect_with(&opts)
            .await
            .map_err(|e| format!("data_dir: cannot open the database {}: {e}", path.display()))?;
        let mut store = Store { conn, path };
        store.migrate().await.map_err(|e| format!("{}: migration failed: {e}", store.path.display()))?;
        Ok(store)
    }

    /// Where the database file is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    async fn migrate(&mut self) -> Result<(), sqlx::Error> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .execute(&mut self.conn)
        .await?;
        let done: Option<i64> =
            sqlx::query("SELECT MAX(version) FROM schema_migrations").fetch_one(&mut self.conn).await?.try_get(0)?;
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > done.unwrap_or(0)) {
            let mut tx = self.conn.begin().await?;
            sqlx::query(sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(version)
                .bind(super::now())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            tracing::info!(version, "database migrated");
        }
        Ok(())
    }

    /// Every entity.
    pub(crate) async fn load(&mut self) -> Result<Records, String> {
        let rows = sqlx::query("SELECT kind, id, body FROM entities")
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| format!("{}: cannot read: {e}", self.path.display()))?;
        let mut records = Records::default();
        for row in rows {
            let (kind, id, body): (String, String, String) = (row.get(0), row.get(1), row.get(2));
            let kind = Kind::ALL.into_iter().find(|k| k.table() == kind).ok_or_else(|| {
                format!("{}: unknown entity kind {kind:?} (a newer version wrote it?)", self.path.display())
            })?;
            let record: Record = serde_json::from_str(&body)
                .map_err(|e| format!("{}: {kind:?} {id}: unreadable record: {e}", self.path.display()))?;
            records.put(kind, record);
        }
        Ok(records)
    }

    /// Writes `changes` in one transaction: all or nothing.
    pub(crate) async fn save(&mut self, changes: &[Change]) -> Result<(), sqlx::Error> {
        let mut tx = self.conn.begin().await?;
        for (kind, id, record) in changes {
            match record {
                Some(r) => {
                    sqlx::query(
                        "INSERT INTO entities (kind, id, body) VALUES ($1, $2, $3)
                         ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body",
                    )
                    .bind(kind.table())
                    .bind(id)
                    .bind(serde_json::Value::Object(r.clone()).to_string())
                    .execute(&mut *tx)
                    .await?;
                }
                None => {
                    sqlx::query("DELETE FROM entities WHERE kind = $1 AND id = $2")
                        .bind(kind.table())
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await
    }
}
